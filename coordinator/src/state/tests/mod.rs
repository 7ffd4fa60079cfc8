//! Tests of the state machine without Raft: lease lifecycles, fencing, dedup, cancel, and
//! a proptest for determinism and invariants. No I/O, no clock.

use crate::warehouse::file::Table;
use std::collections::BTreeMap;

use proptest::prelude::*;
use shared::cell::{self, CellKey};
use shared::result::Status;
use shared::spec::{self, Limits, SweepSpec};

use super::command::{Command, Completion, TraceContext};
use super::*;

const SPEC: &str = r#"
    name = "unit"
    [matrix]
    models = ["bert-tiny"]
    hardware = ["cpu"]
    fan_out = "any"
    batch_sizes = [1, 2]
    [policy]
    max_attempts = 2
    lease_seconds = 10
"#;

fn spec() -> SweepSpec {
    spec::parse_toml(SPEC, &Limits::default()).expect("a valid spec")
}

fn sweep_id(n: u128) -> SweepId {
    SweepId::from_u128(n)
}

fn submit_command(id: SweepId, spec: SweepSpec) -> Command {
    let cells = cell::expand(&spec, &[]).into_iter().map(|c| (c.key(&spec.name), c)).collect();
    Command::SubmitSweep { sweep_id: id, submitted_at_ms: 1_000, spec, cells, trace: None, submitted_by: None }
}

fn cpu(slots: u32) -> Vec<DeviceGroup> {
    vec![DeviceGroup::new("cpu/AMD EPYC 7B13".into(), Some(64 << 30), slots)]
}

fn register_command(agent: &str, slots: u32) -> Command {
    Command::RegisterAgent {
        agent_id: agent.parse().unwrap(),
        devices: cpu(slots),
        labels: BTreeMap::new(),
        at_ms: 1_000,
    }
}

/// A state with one sweep (two cells) and agents `a1` and `a2` (one CPU slot each).
fn setup() -> (State, Vec<CellKey>) {
    let mut state = State::default();
    let outcome = apply(&mut state, submit_command(sweep_id(1), spec()));
    assert_eq!(outcome, Outcome::Submitted { sweep_id: sweep_id(1), n_cells: 2 });
    for agent in ["a1", "a2"] {
        let outcome = apply(&mut state, register_command(agent, 1));
        assert_eq!(outcome, Outcome::AgentRegistered { agent_id: agent.parse().unwrap(), known_before: false });
    }
    let keys = state.sweep(&sweep_id(1)).expect("submitted").cells.keys().cloned().collect();
    (state, keys)
}

fn grant(state: &mut State, agent: &str, key: &CellKey, at_ms: i64) -> Lease {
    let command = Command::GrantLeases {
        agent_id: agent.parse().unwrap(),
        leases: vec![(sweep_id(1), key.clone())],
        at_ms,
        lease_seconds: 10,
    };
    match apply(state, command) {
        Outcome::LeasesGranted { mut granted, refused } if refused.is_empty() && granted.len() == 1 => {
            granted.remove(0)
        }
        other => panic!("expected one lease, got {other:?}"),
    }
}

fn completion(lease: &Lease, agent: &str, status: Status) -> Command {
    Command::CompleteCell(Completion {
        sweep_id: lease.sweep_id,
        cell_key: lease.cell_key.clone(),
        agent_id: agent.parse().unwrap(),
        attempt: lease.attempt,
        epoch: lease.epoch,
        status,
        error: (status != Status::Ok).then(|| format!("{status} in test")),
        files: vec![FileEntry {
            path: format!("results/{}-{}.parquet", lease.cell_key, lease.attempt),
            table: Table::Results,
            rows: 1,
            bytes: 100,
        }],
        at_ms: 5_000,
    })
}

fn expire(lease: &Lease, at_ms: i64) -> Command {
    Command::ExpireLeases { expired: vec![(lease.sweep_id, lease.cell_key.clone(), lease.epoch)], at_ms }
}

fn cell_state(state: &State, key: &CellKey) -> CellState {
    state.cell(&sweep_id(1), key).expect("known cell").state.clone()
}

#[test]
fn submit_lease_complete() {
    let (mut state, keys) = setup();
    let lease = grant(&mut state, "a1", &keys[0], 2_000);
    assert_eq!((lease.attempt, lease.epoch, lease.lease_seconds), (1, 1, 10));
    assert_eq!(state.leases_of("a1"), vec![lease.clone()]);
    assert_eq!(
        apply(&mut state, completion(&lease, "a1", Status::Ok)),
        Outcome::Completed { state: CellStateKind::Done }
    );
    assert_eq!(cell_state(&state, &keys[0]), CellState::Done { status: Status::Ok, attempt: 1 });
    assert!(state.leases_of("a1").is_empty());
    assert_eq!(state.manifest().count(), 1);
    let status = state.sweep_status(&sweep_id(1)).expect("known sweep");
    assert_eq!((status.counts.ok, status.counts.pending, status.counts.total()), (1, 1, 2));
    assert_eq!(status.by_class["cpu"].ok, 1);
}

#[test]
fn expiry_retries_until_max_attempts_then_fails_with_every_reason() {
    let (mut state, keys) = setup();
    let first = grant(&mut state, "a1", &keys[0], 2_000);
    let outcome = apply(&mut state, expire(&first, 20_000));
    assert_eq!(outcome, Outcome::LeasesExpired { n_retried: 1, n_failed: 0, skipped: vec![] });
    assert_eq!(cell_state(&state, &keys[0]), CellState::Pending);
    // A first attempt whose agent went silent runs again at once: the lease time was the wait.
    assert_eq!(state.cell(&sweep_id(1), &keys[0]).expect("known").retry_after_ms, Some(20_000));
    assert_eq!([1, 2, 3, 7, 50].map(apply::retry_backoff_ms), [5_000, 10_000, 20_000, 300_000, 300_000]);
    assert_eq!([0, 1, 2, 3, 8].map(apply::lost_lease_backoff_ms), [0, 0, 5_000, 10_000, 300_000]);
    let second = grant(&mut state, "a2", &keys[0], 21_000);
    assert_eq!((second.attempt, second.epoch), (2, 2));
    let outcome = apply(&mut state, completion(&second, "a2", Status::Oom));
    assert_eq!(outcome, Outcome::Completed { state: CellStateKind::Failed });
    let record = state.cell(&sweep_id(1), &keys[0]).expect("known cell");
    assert_eq!(record.attempts, 2);
    assert_eq!(record.reasons, ["attempt 1 on `a1`: lease expired at 20000 ms", "attempt 2 on `a2`: oom: oom in test"]);
    let refused = apply(
        &mut state,
        Command::GrantLeases {
            agent_id: "a1".parse().unwrap(),
            leases: vec![(sweep_id(1), keys[0].clone())],
            at_ms: 0,
            lease_seconds: 1,
        },
    );
    assert!(matches!(refused, Outcome::LeasesGranted { granted, refused } if granted.is_empty() && refused.len() == 1));
}

#[test]
fn leases_an_agent_does_not_list_end_at_once_and_listed_ones_stay() {
    let (mut state, keys) = setup();
    apply(&mut state, register_command("a1", 2));
    let kept = grant(&mut state, "a1", &keys[0], 2_000);
    let lost = grant(&mut state, "a1", &keys[1], 2_000);
    let release = |keep: Vec<(SweepId, CellKey, u64)>| Command::ReleaseLeases {
        agent_id: "a1".parse().unwrap(),
        keep,
        reason: "restarted".into(),
        at_ms: 3_000,
    };
    // A stale epoch in the list does not keep the current lease.
    let keep = vec![(sweep_id(1), keys[0].clone(), kept.epoch), (sweep_id(1), keys[1].clone(), lost.epoch + 7)];
    let outcome = apply(&mut state, release(keep.clone()));
    assert_eq!(outcome, Outcome::LeasesReleased { released: vec![(sweep_id(1), keys[1].clone())] });
    assert_eq!(state.leases_of("a1"), vec![kept.clone()]);
    assert_eq!(cell_state(&state, &keys[1]), CellState::Pending);
    let record = state.cell(&sweep_id(1), &keys[1]).expect("known");
    assert_eq!(record.reasons, ["attempt 1 on `a1`: restarted"]);
    // Its late result is refused; the kept lease still commits.
    let late = apply(&mut state, completion(&lost, "a1", Status::Ok));
    assert!(matches!(late, Outcome::Rejected(Rejection::NotLeased { .. })), "{late:?}");
    assert_eq!(apply(&mut state, release(keep)), Outcome::LeasesReleased { released: vec![] });
    assert_eq!(
        apply(&mut state, completion(&kept, "a1", Status::Ok)),
        Outcome::Completed { state: CellStateKind::Done }
    );
    let unknown = Command::ReleaseLeases {
        agent_id: "nobody".parse().unwrap(),
        keep: vec![],
        reason: "x".parse().unwrap(),
        at_ms: 0,
    };
    assert_eq!(apply(&mut state, unknown), Outcome::Rejected(Rejection::UnknownAgent("nobody".parse().unwrap())));
}

#[test]
fn a_zombie_result_with_a_stale_epoch_is_refused() {
    let (mut state, keys) = setup();
    let zombie = grant(&mut state, "a1", &keys[0], 2_000);
    apply(&mut state, expire(&zombie, 20_000));
    let fresh = grant(&mut state, "a2", &keys[0], 21_000);
    let late = apply(&mut state, completion(&zombie, "a1", Status::Ok));
    assert_eq!(
        late,
        Outcome::Rejected(Rejection::WrongAgent {
            cell_key: keys[0].clone(),
            holder: "a2".parse().unwrap(),
            got: "a1".parse().unwrap()
        })
    );
    let mut forged = completion(&fresh, "a2", Status::Ok);
    if let Command::CompleteCell(c) = &mut forged {
        c.epoch = zombie.epoch;
    }
    let outcome = apply(&mut state, forged);
    assert_eq!(outcome, Outcome::Rejected(Rejection::StaleEpoch { cell_key: keys[0].clone(), current: 2, got: 1 }));
    // A second expiry of the old epoch does not touch the new lease.
    let outcome = apply(&mut state, expire(&zombie, 30_000));
    assert!(matches!(outcome, Outcome::LeasesExpired { n_retried: 0, n_failed: 0, ref skipped } if skipped.len() == 1));
    assert_eq!(
        apply(&mut state, completion(&fresh, "a2", Status::Ok)),
        Outcome::Completed { state: CellStateKind::Done }
    );
}

#[test]
fn a_resent_result_is_a_duplicate_and_changes_nothing() {
    let (mut state, keys) = setup();
    let lease = grant(&mut state, "a1", &keys[0], 2_000);
    apply(&mut state, completion(&lease, "a1", Status::Ok));
    let before = state.clone();
    assert_eq!(apply(&mut state, completion(&lease, "a1", Status::Ok)), Outcome::Duplicate { status: Status::Ok });
    assert_eq!(state, before);
}

#[test]
fn cancel_stops_leased_cells_and_refuses_their_late_results() {
    let (mut state, keys) = setup();
    let lease = grant(&mut state, "a1", &keys[0], 2_000);
    let outcome = apply(&mut state, Command::CancelSweep { sweep_id: sweep_id(1), at_ms: 3_000 });
    let stopped = vec![("a1".parse().unwrap(), sweep_id(1), keys[0].clone())];
    assert_eq!(outcome, Outcome::Cancelled { sweep_id: sweep_id(1), n_cells: 2, stopped });
    assert_eq!(cell_state(&state, &keys[0]), CellState::Cancelled);
    assert!(state.leases_of("a1").is_empty());
    let late = apply(&mut state, completion(&lease, "a1", Status::Ok));
    let expected = Rejection::NotLeased { cell_key: keys[0].clone(), state: CellStateKind::Cancelled };
    assert_eq!(late, Outcome::Rejected(expected));
    let again = apply(&mut state, Command::CancelSweep { sweep_id: sweep_id(1), at_ms: 4_000 });
    assert_eq!(again, Outcome::Rejected(Rejection::SweepCancelled(sweep_id(1))));
    assert_eq!(state.sweep_status(&sweep_id(1)).expect("known").counts.cancelled, 2);
}

#[test]
fn unsupported_is_final_and_failures_retry() {
    let (mut state, keys) = setup();
    let lease = grant(&mut state, "a1", &keys[0], 2_000);
    let outcome = apply(&mut state, completion(&lease, "a1", Status::Unsupported));
    assert_eq!(outcome, Outcome::Completed { state: CellStateKind::Done });
    assert_eq!(cell_state(&state, &keys[0]), CellState::Done { status: Status::Unsupported, attempt: 1 });
    let lease = grant(&mut state, "a2", &keys[1], 2_000);
    let outcome = apply(&mut state, completion(&lease, "a2", Status::Crashed));
    assert_eq!(outcome, Outcome::Completed { state: CellStateKind::Pending });
    assert_eq!(state.cell(&sweep_id(1), &keys[1]).expect("known").attempts, 1);
}

#[test]
fn grants_respect_free_slots_and_hardware() {
    let (mut state, keys) = setup();
    let both: Vec<(SweepId, CellKey)> = keys.iter().map(|k| (sweep_id(1), k.clone())).collect();
    let outcome = apply(
        &mut state,
        Command::GrantLeases { agent_id: "a1".parse().unwrap(), leases: both, at_ms: 0, lease_seconds: 1 },
    );
    let Outcome::LeasesGranted { granted, refused } = outcome else { panic!("expected grants, got {outcome:?}") };
    assert_eq!(granted.len(), 1);
    assert_eq!(
        refused,
        vec![(
            sweep_id(1),
            keys[1].clone(),
            Rejection::NoFreeDevice { agent_id: "a1".parse().unwrap(), cell_key: keys[1].clone() }
        )]
    );
    let gpu_only = vec![DeviceGroup::new("cuda/NVIDIA H100 80GB HBM3".into(), None, 8)];
    apply(
        &mut state,
        Command::RegisterAgent { agent_id: "g".parse().unwrap(), devices: gpu_only, labels: BTreeMap::new(), at_ms: 0 },
    );
    let outcome = apply(
        &mut state,
        Command::GrantLeases {
            agent_id: "g".parse().unwrap(),
            leases: vec![(sweep_id(1), keys[1].clone())],
            at_ms: 0,
            lease_seconds: 1,
        },
    );
    assert!(matches!(outcome, Outcome::LeasesGranted { granted, .. } if granted.is_empty()));
    let unknown =
        Command::GrantLeases { agent_id: "nobody".parse().unwrap(), leases: vec![], at_ms: 0, lease_seconds: 1 };
    assert_eq!(apply(&mut state, unknown), Outcome::Rejected(Rejection::UnknownAgent("nobody".parse().unwrap())));
}

#[test]
fn bad_submissions_store_nothing() {
    let (mut state, _) = setup();
    let before = state.clone();
    let again = apply(&mut state, submit_command(sweep_id(1), spec()));
    assert_eq!(again, Outcome::Rejected(Rejection::SweepExists(sweep_id(1))));
    let Command::SubmitSweep { spec, mut cells, .. } = submit_command(sweep_id(2), spec()) else { unreachable!() };
    cells[1].0 = cells[0].0.clone();
    let outcome = apply(
        &mut state,
        Command::SubmitSweep {
            sweep_id: sweep_id(2),
            submitted_at_ms: 0,
            spec,
            cells,
            trace: None,
            submitted_by: None,
        },
    );
    assert!(matches!(outcome, Outcome::Rejected(Rejection::CellKeyMismatch(_))));
    let empty = Command::SubmitSweep {
        sweep_id: sweep_id(3),
        submitted_at_ms: 0,
        spec: super::tests::spec(),
        cells: vec![],
        trace: None,
        submitted_by: None,
    };
    assert_eq!(apply(&mut state, empty), Outcome::Rejected(Rejection::NoCells(sweep_id(3))));
    let no_devices =
        Command::RegisterAgent { agent_id: "x".parse().unwrap(), devices: vec![], labels: BTreeMap::new(), at_ms: 0 };
    assert_eq!(
        apply(&mut state, no_devices),
        Outcome::Rejected(Rejection::InvalidAgent {
            agent_id: "x".parse().unwrap(),
            problem: "no devices".parse().unwrap()
        })
    );
    assert_eq!(state, before);
}

/// The completion inside a [`completion`] command, without its own files.
fn bare(command: Command) -> Completion {
    let Command::CompleteCell(mut c) = command else { unreachable!("completion() builds CompleteCell") };
    c.files.clear();
    c
}

#[test]
fn a_group_commit_records_every_result_or_none() {
    let (mut state, keys) = setup();
    let first = grant(&mut state, "a1", &keys[0], 2_000);
    let second = grant(&mut state, "a2", &keys[1], 2_000);
    let shared_file = FileEntry { path: "results/group.parquet".into(), table: Table::Results, rows: 2, bytes: 200 };
    let ok = bare(completion(&first, "a1", Status::Ok));
    let wrong_agent = bare(completion(&second, "a1", Status::Ok));
    let before = state.clone();
    let command =
        Command::CompleteCells { completions: vec![ok.clone(), wrong_agent], files: vec![shared_file.clone()] };
    let Outcome::CompletionsRefused { refused } = apply(&mut state, command) else { panic!("expected a refusal") };
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 1, "the second completion is the refused one");
    assert!(matches!(refused[0].1, Outcome::Rejected(Rejection::WrongAgent { .. })), "{refused:?}");
    assert_eq!(state, before, "a refused group changes nothing");

    let twice = Command::CompleteCells { completions: vec![ok.clone(), ok.clone()], files: vec![] };
    let Outcome::CompletionsRefused { refused } = apply(&mut state, twice) else { panic!("expected a refusal") };
    assert!(matches!(refused[..], [(1, Outcome::Rejected(Rejection::CompletedTwice(_)))]), "{refused:?}");
    assert_eq!(state, before);

    let good = bare(completion(&second, "a2", Status::Failed));
    let command = Command::CompleteCells { completions: vec![ok.clone(), good], files: vec![shared_file] };
    let outcome = apply(&mut state, command.clone());
    assert_eq!(outcome, Outcome::CellsCompleted { states: vec![CellStateKind::Done, CellStateKind::Pending] });
    assert_eq!(state.manifest().count(), 1);
    assert!(state.leases_of("a1").is_empty() && state.leases_of("a2").is_empty());
    let Outcome::CompletionsRefused { refused } = apply(&mut state, command) else { panic!("a re-send is refused") };
    assert!(refused.iter().all(|(_, o)| matches!(o, Outcome::Duplicate { .. })), "{refused:?}");
}

#[test]
fn a_batch_applies_its_commands_in_order_and_does_not_nest() {
    let (mut state, keys) = setup();
    let grant = |agent: &str, key: &CellKey| Command::GrantLeases {
        agent_id: agent.parse().unwrap(),
        leases: vec![(sweep_id(1), key.clone())],
        at_ms: 2_000,
        lease_seconds: 10,
    };
    let batch = Command::Batch {
        commands: vec![
            grant("a1", &keys[0]),
            grant("a2", &keys[0]),
            Command::Batch { commands: vec![grant("a2", &keys[1])] },
        ],
    };
    let bytes = batch.encode().expect("encodes");
    assert_eq!(Command::decode(&bytes).expect("decodes"), batch);
    let Outcome::Batch(outcomes) = apply(&mut state, batch) else { panic!("expected a batch outcome") };
    assert!(matches!(&outcomes[0], Outcome::LeasesGranted { granted, .. } if granted.len() == 1), "{outcomes:?}");
    assert!(
        matches!(&outcomes[1], Outcome::LeasesGranted { granted, refused } if granted.is_empty() && refused.len() == 1),
        "the second grant sees the first: {outcomes:?}"
    );
    assert_eq!(outcomes[2], Outcome::Rejected(Rejection::NestedBatch));
    assert_eq!(cell_state(&state, &keys[1]), CellState::Pending);
}

#[test]
fn manifest_commits_are_all_or_nothing() {
    let mut state = State::default();
    let file = |path: &str, rows| FileEntry { path: path.into(), table: Table::Agents, rows, bytes: 10 };
    let outcome = apply(&mut state, Command::CommitFiles { files: vec![file("a", 1), file("b", 2)], at_ms: 0 });
    assert_eq!(outcome, Outcome::FilesCommitted { n_new: 2, n_already: 0 });
    let outcome = apply(&mut state, Command::CommitFiles { files: vec![file("a", 1), file("c", 3)], at_ms: 0 });
    assert_eq!(outcome, Outcome::FilesCommitted { n_new: 1, n_already: 1 });
    let outcome = apply(&mut state, Command::CommitFiles { files: vec![file("d", 1), file("b", 9)], at_ms: 0 });
    assert_eq!(outcome, Outcome::Rejected(Rejection::ConflictingFile { path: "b".into() }));
    assert_eq!(state.manifest().count(), 3);
}

#[test]
fn commands_and_states_round_trip_as_json() {
    let (mut state, keys) = setup();
    let lease = grant(&mut state, "a1", &keys[0], 2_000);
    let command = completion(&lease, "a1", Status::Failed);
    let bytes = command.encode().expect("encodes");
    assert_eq!(Command::decode(&bytes).expect("decodes"), command);
    let json = serde_json::to_string(&state).expect("encodes");
    assert_eq!(serde_json::from_str::<State>(&json).expect("decodes"), state);
    let error = Command::decode(br#"{"command":"launch_missiles"}"#).expect_err("unknown command");
    assert!(error.to_string().starts_with("undecodable command payload of 29 bytes"), "{error}");
}

#[test]
fn a_submit_keeps_its_trace_and_entries_without_one_still_decode() {
    let trace = Some(TraceContext {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        tracestate: String::new(),
    });
    let mut traced = submit_command(sweep_id(1), spec());
    if let Command::SubmitSweep { trace: t, .. } = &mut traced {
        *t = trace.clone();
    }
    let json = String::from_utf8(traced.encode().expect("encodes")).expect("utf-8");
    assert!(json.contains(r#""trace":{"traceparent":"00-4bf9"#), "{json}");
    assert!(!json.contains("tracestate"), "empty tracestate is left out: {json}");
    assert_eq!(Command::decode(json.as_bytes()).expect("decodes"), traced);
    let mut state = State::default();
    apply(&mut state, traced);
    assert_eq!(state.sweep(&sweep_id(1)).expect("stored").trace, trace);

    // A log written before traces were stored has no `trace` field, and must replay.
    let untraced = submit_command(sweep_id(2), spec());
    let old = String::from_utf8(untraced.encode().expect("encodes")).expect("utf-8");
    assert!(!old.contains("trace") && !old.contains("submitted_by"), "{old}");
    assert_eq!(Command::decode(old.as_bytes()).expect("decodes"), untraced);
}

#[test]
fn a_submit_records_its_submitter_through_the_log_and_a_snapshot() {
    let mut named = submit_command(sweep_id(1), spec());
    if let Command::SubmitSweep { submitted_by, .. } = &mut named {
        *submitted_by = Some("alice".into());
    }
    let bytes = named.encode().expect("encodes");
    let mut state = State::default();
    apply(&mut state, Command::decode(&bytes).expect("decodes"));
    let snapshot: State = serde_json::from_str(&serde_json::to_string(&state).expect("encodes")).expect("decodes");
    assert_eq!(snapshot.sweep(&sweep_id(1)).expect("stored").submitted_by.as_deref(), Some("alice"));
}

#[test]
fn device_groups_come_from_the_fingerprint() {
    use shared::fingerprint::{CpuInfo, Fingerprint, GpuDevice, GpuVendor, MemoryInfo, OsInfo, SoftwareInfo};
    use shared::hardware::HardwareKind;
    let gpu = |index, memory_gib: u64| {
        let mut device = GpuDevice::new(index, GpuVendor::Nvidia, HardwareKind::Cuda, "NVIDIA H100 80GB HBM3");
        device.memory_bytes = Some(memory_gib << 30);
        device
    };
    let fingerprint = Fingerprint {
        schema_version: 1,
        hostname: "h".into(),
        os: OsInfo::default(),
        cpu: CpuInfo { model_name: "AMD EPYC 7B13 64-Core Processor".into(), ..CpuInfo::default() },
        memory: MemoryInfo { total_bytes: 256 << 30, available_bytes: 0 },
        numa_nodes: 1,
        gpus: vec![gpu(0, 80), gpu(1, 79)],
        soc: None,
        probes: vec![],
        software: SoftwareInfo::default(),
    };
    let groups = device_groups(&fingerprint);
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(groups[0].class.starts_with("cpu/") && groups[0].slots == 1);
    assert_eq!(groups[0].memory_bytes, Some(256 << 30));
    assert_eq!(groups[1], DeviceGroup::new("cuda/NVIDIA H100 80GB HBM3".into(), Some(79 << 30), 2));
}

#[test]
fn device_groups_match_cells_by_class_kind_and_memory() {
    let group = DeviceGroup::new("cuda/NVIDIA H100 80GB HBM3".into(), Some(80 << 30), 2);
    assert_eq!(group.kind(), "cuda");
    let mut cell = cell::expand(&spec(), &[]).remove(0);
    assert!(!group.can_run(&cell));
    cell.hardware = shared::spec::HardwareSelector::of_kind(shared::spec::HardwareKind::Cuda);
    assert!(group.can_run(&cell));
    cell.hardware.min_memory_gib = Some(96.0);
    assert!(!group.can_run(&cell));
    cell.hardware.min_memory_gib = Some(40.0);
    cell.hardware_class = Some("cuda/NVIDIA A100".into());
    assert!(!group.can_run(&cell));
}

mod model;

/// The fleet the state holds is bounded: the 10 001st agent and the 1 001st hardware
/// class are refused (a script registering fake agents once grew the state without end),
/// while a known agent may always register again.
#[test]
fn the_fleet_is_bounded_in_agents_and_classes() {
    use crate::state::apply::{MAX_AGENTS, MAX_HARDWARE_CLASSES};
    let mut state = State::default();
    let with_class = |agent: &str, class: String| Command::RegisterAgent {
        agent_id: agent.parse().unwrap(),
        devices: vec![DeviceGroup::new(class, None, 1)],
        labels: BTreeMap::new(),
        at_ms: 0,
    };
    for i in 0..MAX_HARDWARE_CLASSES {
        let outcome = apply(&mut state, with_class(&format!("c{i}"), format!("cpu/fake {i}")));
        assert!(matches!(outcome, Outcome::AgentRegistered { .. }), "{i}: {outcome:?}");
    }
    let outcome = apply(&mut state, with_class("one-more-class", "cpu/fake new".into()));
    assert!(matches!(&outcome, Outcome::Rejected(Rejection::Full(why)) if why.contains("1001 hardware classes")));
    assert!(state.agent("one-more-class").is_none());
    // An agent trading its class for a new one does not grow the count.
    let outcome = apply(&mut state, with_class("c0", "cpu/fake replacement".into()));
    assert!(matches!(outcome, Outcome::AgentRegistered { known_before: true, .. }), "{outcome:?}");
    for i in state.agents().count()..MAX_AGENTS {
        let outcome = apply(&mut state, with_class(&format!("a{i}"), "cpu/fake 1".into()));
        assert!(matches!(outcome, Outcome::AgentRegistered { .. }), "{i}: {outcome:?}");
    }
    let outcome = apply(&mut state, with_class("one-too-many", "cpu/fake 1".into()));
    assert!(matches!(&outcome, Outcome::Rejected(Rejection::Full(why)) if why.contains("10000 agents")), "{outcome:?}");
    let outcome = apply(&mut state, with_class("a5000", "cpu/fake 2".into()));
    assert!(matches!(outcome, Outcome::AgentRegistered { known_before: true, .. }), "{outcome:?}");
}

/// Removing an agent ends its leases as failed attempts (the cell is pending again for
/// another agent) and forgets it; removing an unknown agent changes nothing.
#[test]
fn a_removed_agent_loses_its_leases_and_is_forgotten() {
    let (mut state, keys) = setup();
    let lease = grant(&mut state, "a1", &keys[0], 2_000);
    assert_eq!(lease.attempt, 1);
    let remove = |id: &str| Command::RemoveAgent { agent_id: id.parse().unwrap(), at_ms: 3_000 };
    assert_eq!(
        apply(&mut state, remove("a1")),
        Outcome::AgentRemoved { released: vec![(sweep_id(1), keys[0].clone())] }
    );
    assert!(state.agent("a1").is_none());
    assert!(matches!(state.cell(&sweep_id(1), &keys[0]).map(|c| &c.state), Some(CellState::Pending)));
    assert_eq!(grant(&mut state, "a2", &keys[0], 4_000).attempt, 2, "the cell runs again elsewhere");
    let before = state.clone();
    assert_eq!(apply(&mut state, remove("a1")), Outcome::Rejected(Rejection::UnknownAgent("a1".parse().unwrap())));
    assert_eq!(state, before);
}
