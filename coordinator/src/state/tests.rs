//! Tests of the state machine without Raft: lease lifecycles, fencing, dedup, cancel, and
//! a proptest for determinism and invariants. No I/O, no clock.

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
    Command::SubmitSweep { sweep_id: id, submitted_at_ms: 1_000, spec, cells, trace: None }
}

fn cpu(slots: u32) -> Vec<DeviceGroup> {
    vec![DeviceGroup { class: "cpu/AMD EPYC 7B13".into(), memory_bytes: Some(64 << 30), slots }]
}

fn register_command(agent: &str, slots: u32) -> Command {
    Command::RegisterAgent { agent_id: agent.into(), devices: cpu(slots), labels: BTreeMap::new(), at_ms: 1_000 }
}

/// A state with one sweep (two cells) and agents `a1` and `a2` (one CPU slot each).
fn setup() -> (State, Vec<CellKey>) {
    let mut state = State::default();
    let outcome = apply(&mut state, submit_command(sweep_id(1), spec()));
    assert_eq!(outcome, Outcome::Submitted { sweep_id: sweep_id(1), n_cells: 2 });
    for agent in ["a1", "a2"] {
        let outcome = apply(&mut state, register_command(agent, 1));
        assert_eq!(outcome, Outcome::AgentRegistered { agent_id: agent.into(), known_before: false });
    }
    let keys = state.sweep(&sweep_id(1)).expect("submitted").cells.keys().cloned().collect();
    (state, keys)
}

fn grant(state: &mut State, agent: &str, key: &CellKey, at_ms: i64) -> Lease {
    let command = Command::GrantLeases {
        agent_id: agent.into(),
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
        agent_id: agent.into(),
        attempt: lease.attempt,
        epoch: lease.epoch,
        status,
        error: (status != Status::Ok).then(|| format!("{status} in test")),
        files: vec![ManifestFile {
            path: format!("results/{}-{}.parquet", lease.cell_key, lease.attempt),
            table: "results".into(),
            n_rows: 1,
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
    assert_eq!((lease.attempt, lease.epoch, lease.expires_at_ms), (1, 1, 12_000));
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
    assert_eq!(state.cell(&sweep_id(1), &keys[0]).expect("known").retry_after_ms, Some(25_000));
    assert_eq!([1, 2, 3, 7, 50].map(apply::retry_backoff_ms), [5_000, 10_000, 20_000, 300_000, 300_000]);
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
            agent_id: "a1".into(),
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
        agent_id: "a1".into(),
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
    let unknown = Command::ReleaseLeases { agent_id: "nobody".into(), keep: vec![], reason: "x".into(), at_ms: 0 };
    assert_eq!(apply(&mut state, unknown), Outcome::Rejected(Rejection::UnknownAgent("nobody".into())));
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
        Outcome::Rejected(Rejection::WrongAgent { cell_key: keys[0].clone(), holder: "a2".into(), got: "a1".into() })
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
    let stopped = vec![("a1".to_string(), sweep_id(1), keys[0].clone())];
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
    let outcome =
        apply(&mut state, Command::GrantLeases { agent_id: "a1".into(), leases: both, at_ms: 0, lease_seconds: 1 });
    let Outcome::LeasesGranted { granted, refused } = outcome else { panic!("expected grants, got {outcome:?}") };
    assert_eq!(granted.len(), 1);
    assert_eq!(
        refused,
        vec![(
            sweep_id(1),
            keys[1].clone(),
            Rejection::NoFreeDevice { agent_id: "a1".into(), cell_key: keys[1].clone() }
        )]
    );
    let gpu_only = vec![DeviceGroup { class: "cuda/NVIDIA H100 80GB HBM3".into(), memory_bytes: None, slots: 8 }];
    apply(
        &mut state,
        Command::RegisterAgent { agent_id: "g".into(), devices: gpu_only, labels: BTreeMap::new(), at_ms: 0 },
    );
    let outcome = apply(
        &mut state,
        Command::GrantLeases {
            agent_id: "g".into(),
            leases: vec![(sweep_id(1), keys[1].clone())],
            at_ms: 0,
            lease_seconds: 1,
        },
    );
    assert!(matches!(outcome, Outcome::LeasesGranted { granted, .. } if granted.is_empty()));
    let unknown = Command::GrantLeases { agent_id: "nobody".into(), leases: vec![], at_ms: 0, lease_seconds: 1 };
    assert_eq!(apply(&mut state, unknown), Outcome::Rejected(Rejection::UnknownAgent("nobody".into())));
}

#[test]
fn bad_submissions_store_nothing() {
    let (mut state, _) = setup();
    let before = state.clone();
    let again = apply(&mut state, submit_command(sweep_id(1), spec()));
    assert_eq!(again, Outcome::Rejected(Rejection::SweepExists(sweep_id(1))));
    let Command::SubmitSweep { spec, mut cells, .. } = submit_command(sweep_id(2), spec()) else { unreachable!() };
    cells[1].0 = cells[0].0.clone();
    let outcome =
        apply(&mut state, Command::SubmitSweep { sweep_id: sweep_id(2), submitted_at_ms: 0, spec, cells, trace: None });
    assert!(matches!(outcome, Outcome::Rejected(Rejection::CellKeyMismatch(_))));
    let empty = Command::SubmitSweep {
        sweep_id: sweep_id(3),
        submitted_at_ms: 0,
        spec: super::tests::spec(),
        cells: vec![],
        trace: None,
    };
    assert_eq!(apply(&mut state, empty), Outcome::Rejected(Rejection::NoCells(sweep_id(3))));
    let no_devices =
        Command::RegisterAgent { agent_id: "x".into(), devices: vec![], labels: BTreeMap::new(), at_ms: 0 };
    assert_eq!(
        apply(&mut state, no_devices),
        Outcome::Rejected(Rejection::InvalidAgent { agent_id: "x".into(), problem: "no devices".into() })
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
    let shared_file = ManifestFile { path: "results/group.parquet".into(), table: "results".into(), n_rows: 2 };
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
        agent_id: agent.into(),
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
    let file = |path: &str, n_rows| ManifestFile { path: path.into(), table: "agents".into(), n_rows };
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
    assert!(!old.contains("trace"), "{old}");
    assert_eq!(Command::decode(old.as_bytes()).expect("decodes"), untraced);
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
    assert_eq!(
        groups[1],
        DeviceGroup { class: "cuda/NVIDIA H100 80GB HBM3".into(), memory_bytes: Some(79 << 30), slots: 2 }
    );
}

#[test]
fn device_groups_match_cells_by_class_kind_and_memory() {
    let group = DeviceGroup { class: "cuda/NVIDIA H100 80GB HBM3".into(), memory_bytes: Some(80 << 30), slots: 2 };
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

// ---------------------------------------------------------------------------------
// Determinism and invariants over random command sequences.

/// A step of a random history, in terms of small indexes into a fixed universe.
#[derive(Debug, Clone)]
enum Step {
    Grant {
        agent: usize,
        cell: usize,
    },
    Complete {
        agent: usize,
        cell: usize,
        attempt: u32,
        epoch: u64,
        status: usize,
    },
    Expire {
        cell: usize,
        epoch: u64,
    },
    /// Completes the cell's current lease, if any, as its holder would.
    CompleteHeld {
        cell: usize,
        status: usize,
    },
    Cancel,
    Register {
        agent: usize,
        slots: u32,
    },
    /// The agent says it holds only the lease of `kept` (or nothing).
    Release {
        agent: usize,
        kept: Option<usize>,
    },
}

const AGENTS: [&str; 3] = ["a1", "a2", "a3"];
const STATUSES: [Status; 4] = [Status::Ok, Status::Unsupported, Status::Failed, Status::Timeout];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..2usize).prop_map(|(agent, cell)| Step::Grant { agent, cell }),
        4 => (0..3usize, 0..2usize, 0..4u32, 0..8u64, 0..4usize)
            .prop_map(|(agent, cell, attempt, epoch, status)| Step::Complete { agent, cell, attempt, epoch, status }),
        2 => (0..2usize, 0..8u64).prop_map(|(cell, epoch)| Step::Expire { cell, epoch }),
        4 => (0..2usize, 0..4usize).prop_map(|(cell, status)| Step::CompleteHeld { cell, status }),
        1 => Just(Step::Cancel),
        1 => (0..3usize, 0..3u32).prop_map(|(agent, slots)| Step::Register { agent, slots }),
        2 => (0..3usize, prop::option::of(0..2usize)).prop_map(|(agent, kept)| Step::Release { agent, kept }),
    ]
}

fn to_command(state: &State, step: &Step, keys: &[CellKey], at_ms: i64) -> Command {
    let key = |i: usize| keys[i % keys.len()].clone();
    match step {
        Step::Grant { agent, cell } => Command::GrantLeases {
            agent_id: AGENTS[*agent].into(),
            leases: vec![(sweep_id(1), key(*cell))],
            at_ms,
            lease_seconds: 10,
        },
        Step::Complete { agent, cell, attempt, epoch, status } => Command::CompleteCell(Completion {
            sweep_id: sweep_id(1),
            cell_key: key(*cell),
            agent_id: AGENTS[*agent].into(),
            attempt: *attempt,
            epoch: *epoch,
            status: STATUSES[*status],
            error: Some("boom".into()),
            files: vec![],
            at_ms,
        }),
        Step::Expire { cell, epoch } => {
            Command::ExpireLeases { expired: vec![(sweep_id(1), key(*cell), *epoch)], at_ms }
        }
        Step::CompleteHeld { cell, status } => match state.lease(&sweep_id(1), &key(*cell)) {
            Some(lease) => {
                let holder = state.active_leases().into_iter().find(|l| l.epoch == lease.epoch).map(|l| l.agent_id);
                completion(&lease, &holder.unwrap_or_default(), STATUSES[*status])
            }
            None => Command::CancelSweep { sweep_id: sweep_id(9), at_ms },
        },
        Step::Cancel => Command::CancelSweep { sweep_id: sweep_id(1), at_ms },
        Step::Register { agent, slots } => register_command(AGENTS[*agent], *slots),
        Step::Release { agent, kept } => Command::ReleaseLeases {
            agent_id: AGENTS[*agent].into(),
            keep: kept
                .and_then(|cell| state.lease(&sweep_id(1), &key(cell)))
                .map(|l| (l.sweep_id, l.cell_key, l.epoch))
                .into_iter()
                .collect(),
            reason: "released".into(),
            at_ms,
        },
    }
}

fn run(steps: &[Step]) -> (State, Vec<Outcome>) {
    let (mut state, keys) = setup();
    let mut outcomes = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let command = to_command(&state, step, &keys, i as i64);
        outcomes.push(apply(&mut state, command));
        check_invariants(&state);
    }
    (state, outcomes)
}

fn check_invariants(state: &State) {
    let mut epochs = std::collections::BTreeSet::new();
    for sweep in state.sweeps() {
        for (key, record) in &sweep.cells {
            assert!(record.attempts <= sweep.spec.policy.max_attempts, "{key}: too many attempts");
            match &record.state {
                CellState::Leased { agent_id, attempt, epoch, .. } => {
                    assert_eq!(*attempt, record.attempts, "{key}: leased attempt is the latest");
                    assert!(!record.results.contains_key(attempt), "{key}: leased and done");
                    assert!(epochs.insert(*epoch), "{key}: epoch {epoch} reused");
                    assert!(*epoch <= state.last_epoch());
                    let held = state.agent(agent_id).is_some_and(|a| a.leases.contains(&(sweep.id, key.clone())));
                    assert!(held, "{key}: leased cell missing from its agent's index");
                }
                CellState::Done { attempt, .. } => {
                    assert!(record.results.contains_key(attempt), "{key}: done without result")
                }
                CellState::Failed => {
                    assert_eq!(record.reasons.len() as u32, record.attempts, "{key}: a reason per attempt")
                }
                CellState::Pending | CellState::Cancelled => {}
            }
        }
    }
    for sweep in state.sweeps() {
        let indexed: std::collections::BTreeSet<&CellKey> = sweep.pending.groups().flatten().collect();
        let pending: std::collections::BTreeSet<&CellKey> =
            sweep.cells.iter().filter(|(_, r)| r.state == CellState::Pending).map(|(k, _)| k).collect();
        assert_eq!(indexed, pending, "the pending index is the pending cells");
    }
    for agent in state.agents() {
        for (sweep_id, key) in &agent.leases {
            assert!(state.lease(sweep_id, key).is_some(), "{key}: indexed but not leased");
        }
    }
}

proptest! {
    #[test]
    fn applying_the_same_commands_gives_the_same_state(steps in prop::collection::vec(step(), 0..60)) {
        let (first, first_outcomes) = run(&steps);
        let (second, second_outcomes) = run(&steps);
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(first_outcomes, second_outcomes);
        let json = serde_json::to_string(&first).expect("encodes");
        prop_assert_eq!(serde_json::from_str::<State>(&json).expect("decodes"), first);
    }
}

// ---------------------------------------------------------------------------------
// The lease lifecycle against a reference model: the same random histories applied to
// the real state and to a small model written from the rules alone (re-register,
// grant, complete, duplicate, stale epoch, expiry, release, cancel), compared after
// every step.

/// What the model knows of one cell.
#[derive(Debug, Clone, PartialEq)]
enum ModelCell {
    Pending,
    Leased { agent: String, attempt: u32, epoch: u64 },
    Done,
    Failed,
    Cancelled,
}

/// A cell in the model: its state, attempts started, and the committed attempts with the
/// agent and epoch that committed each.
type ModelRecord = (ModelCell, u32, BTreeMap<u32, (String, u64)>);

#[derive(Debug, Clone)]
struct Model {
    cells: Vec<ModelRecord>,
    slots: BTreeMap<String, u32>,
    last_epoch: u64,
    max_attempts: u32,
}

impl Model {
    fn new() -> Model {
        let slots = [("a1".to_string(), 1), ("a2".to_string(), 1)].into_iter().collect();
        Model { cells: vec![(ModelCell::Pending, 0, BTreeMap::new()); 2], slots, last_epoch: 0, max_attempts: 2 }
    }

    fn held_by(&self, agent: &str) -> u32 {
        self.cells.iter().filter(|(c, ..)| matches!(c, ModelCell::Leased { agent: a, .. } if a == agent)).count() as u32
    }

    fn end_attempt(&mut self, cell: usize) {
        let attempts = self.cells[cell].1;
        self.cells[cell].0 = if attempts < self.max_attempts { ModelCell::Pending } else { ModelCell::Failed };
    }

    fn step(&mut self, step: &Step, keys_len: usize) {
        let at = |i: usize| i % keys_len;
        match step {
            Step::Grant { agent, cell } => {
                let (agent, cell) = (AGENTS[*agent].to_string(), at(*cell));
                let Some(&slots) = self.slots.get(&agent) else { return };
                let (state, attempts, _) = &self.cells[cell];
                if *state == ModelCell::Pending && *attempts < self.max_attempts && self.held_by(&agent) < slots {
                    self.last_epoch += 1;
                    let attempt = attempts + 1;
                    self.cells[cell].1 = attempt;
                    self.cells[cell].0 = ModelCell::Leased { agent, attempt, epoch: self.last_epoch };
                }
            }
            Step::Complete { agent, cell, attempt, epoch, status } => {
                self.complete(AGENTS[*agent], at(*cell), *attempt, *epoch, STATUSES[*status]);
            }
            Step::CompleteHeld { cell, status } => {
                if let ModelCell::Leased { agent, attempt, epoch } = self.cells[at(*cell)].0.clone() {
                    self.complete(&agent, at(*cell), attempt, epoch, STATUSES[*status]);
                }
            }
            Step::Expire { cell, epoch } => {
                if matches!(&self.cells[at(*cell)].0, ModelCell::Leased { epoch: e, .. } if e == epoch) {
                    self.end_attempt(at(*cell));
                }
            }
            Step::Release { agent, kept } => {
                let agent = AGENTS[*agent];
                if !self.slots.contains_key(agent) {
                    return;
                }
                for cell in 0..self.cells.len() {
                    let held = matches!(&self.cells[cell].0, ModelCell::Leased { agent: a, .. } if a == agent);
                    if held && kept.map(at) != Some(cell) {
                        self.end_attempt(cell);
                    }
                }
            }
            Step::Cancel => {
                if self.cells.iter().all(|(c, ..)| *c != ModelCell::Cancelled) {
                    for (c, ..) in &mut self.cells {
                        if matches!(c, ModelCell::Pending | ModelCell::Leased { .. }) {
                            *c = ModelCell::Cancelled;
                        }
                    }
                }
            }
            Step::Register { agent, slots } => {
                // A registration with 0 slots is refused and changes nothing.
                if *slots > 0 {
                    self.slots.insert(AGENTS[*agent].to_string(), *slots);
                }
            }
        }
    }

    fn complete(&mut self, agent: &str, cell: usize, attempt: u32, epoch: u64, status: Status) {
        if self.cells[cell].2.contains_key(&attempt) {
            return; // a duplicate or a stale re-send: nothing changes
        }
        let holds = matches!(&self.cells[cell].0,
            ModelCell::Leased { agent: a, attempt: t, epoch: e } if a == agent && *t == attempt && *e == epoch);
        if !holds {
            return;
        }
        self.cells[cell].2.insert(attempt, (agent.to_string(), epoch));
        match status {
            Status::Ok | Status::Unsupported => self.cells[cell].0 = ModelCell::Done,
            _ => self.end_attempt(cell),
        }
    }
}

fn model_view(state: &State, keys: &[CellKey]) -> Vec<(ModelCell, u32)> {
    keys.iter()
        .map(|key| {
            let record = state.cell(&sweep_id(1), key).expect("known cell");
            let cell = match &record.state {
                CellState::Pending => ModelCell::Pending,
                CellState::Leased { agent_id, attempt, epoch, .. } => {
                    ModelCell::Leased { agent: agent_id.clone(), attempt: *attempt, epoch: *epoch }
                }
                CellState::Done { .. } => ModelCell::Done,
                CellState::Failed => ModelCell::Failed,
                CellState::Cancelled => ModelCell::Cancelled,
            };
            (cell, record.attempts)
        })
        .collect()
}

proptest! {
    #[test]
    fn the_lease_lifecycle_follows_the_reference_model(steps in prop::collection::vec(step(), 0..80)) {
        let (mut state, keys) = setup();
        let mut model = Model::new();
        for (i, step) in steps.iter().enumerate() {
            let command = to_command(&state, step, &keys, i as i64);
            apply(&mut state, command);
            model.step(step, keys.len());
            let expected: Vec<(ModelCell, u32)> = model.cells.iter().map(|(c, n, _)| (c.clone(), *n)).collect();
            prop_assert_eq!(model_view(&state, &keys), expected, "after step {} ({:?})", i, step);
        }
    }
}
