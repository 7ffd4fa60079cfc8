//! Tests of the single-voter node on a real redb file in a temporary directory: proposals
//! answer with their outcome, reads see acknowledged writes, and a restart (with and
//! without snapshots) replays to the same state.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::cell;
use shared::spec::{self, Limits};

use super::node::NodeConfig;
use super::transport::NoPeers;
use super::*;
use crate::state::{DeviceGroup, SweepId};

fn config(dir: &tempfile::TempDir, snapshot_every: u64) -> NodeConfig {
    NodeConfig {
        id: 1,
        voters: vec![1],
        path: dir.path().join("raft.redb"),
        tick_interval: Duration::from_millis(10),
        election_tick: 10,
        max_election_tick: 0,
        heartbeat_tick: 2,
        snapshot_every,
        max_in_flight: 64,
    }
}

fn submit(n: u128) -> Command {
    let text = format!(
        "name = \"raft-{n}\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nfan_out = \"any\"\nbatch_sizes = [1, 2, 4]\n"
    );
    let spec = spec::parse_toml(&text, &Limits::default()).expect("a valid spec");
    let cells = cell::expand(&spec, &[]).into_iter().map(|c| (c.key(&spec.name), c)).collect();
    Command::SubmitSweep {
        sweep_id: SweepId::from_u128(n),
        submitted_at_ms: 1_000,
        spec,
        cells,
        trace: None,
        submitted_by: None,
    }
}

fn register() -> Command {
    let devices = vec![DeviceGroup::new("cpu/test".into(), Some(1 << 34), 8)];
    Command::RegisterAgent { agent_id: "agent".parse().unwrap(), devices, labels: BTreeMap::new(), at_ms: 1_000 }
}

fn grant(n: u128, state: &State) -> Command {
    let sweep = state.sweep(&SweepId::from_u128(n)).expect("submitted");
    let leases = sweep.cells.keys().take(1).map(|k| (sweep.id, k.clone())).collect();
    Command::GrantLeases { agent_id: "agent".parse().unwrap(), leases, at_ms: 2_000, lease_seconds: 60 }
}

/// Submits `n_sweeps` sweeps, registers an agent and leases a cell of each sweep.
async fn propose_history(handle: &RaftHandle, n_sweeps: u128) {
    assert!(matches!(handle.propose(register()).await, Ok(Outcome::AgentRegistered { .. })));
    for n in 1..=n_sweeps {
        let outcome = handle.propose(submit(n)).await.expect("committed");
        assert_eq!(outcome, Outcome::Submitted { sweep_id: SweepId::from_u128(n), n_cells: 3 });
        let command = handle.read(|state| grant(n, state)).await.expect("read");
        let outcome = handle.propose(command).await.expect("committed");
        assert!(matches!(outcome, Outcome::LeasesGranted { ref granted, .. } if granted.len() == 1), "{outcome:?}");
    }
}

async fn reopen_and_compare(dir: &tempfile::TempDir, snapshot_every: u64, before: &State) {
    let handle = start(config(dir, snapshot_every), NoPeers).expect("node reopens");
    let after = handle.read(Clone::clone).await.expect("read");
    assert_eq!(&after, before);
    handle.shutdown().await;
}

#[tokio::test]
async fn proposals_answer_with_their_outcome_and_reads_see_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let handle = start(config(&dir, 1_000), NoPeers).expect("node starts");
    propose_history(&handle, 2).await;
    let status = handle.read(|s| s.sweep_status(&SweepId::from_u128(2))).await.expect("read").expect("sweep");
    assert_eq!((status.counts.leased, status.counts.pending), (1, 2));
    let again = handle.propose(submit(1)).await.expect("committed");
    assert!(matches!(again, Outcome::Rejected(_)), "{again:?}");
    handle.shutdown().await;
    let late = handle.propose(submit(3)).await.expect_err("stopped");
    assert!(matches!(late, RaftError::Stopped(_)), "{late:?}");
}

#[tokio::test]
async fn a_restart_replays_the_log_to_the_same_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let handle = start(config(&dir, 1_000), NoPeers).expect("node starts");
    propose_history(&handle, 3).await;
    let before = handle.read(Clone::clone).await.expect("read");
    handle.shutdown().await;
    reopen_and_compare(&dir, 1_000, &before).await;
    // Twice: the second restart replays a log that the first one extended.
    reopen_and_compare(&dir, 1_000, &before).await;
}

#[tokio::test]
async fn a_restart_from_a_snapshot_and_the_log_after_it_gives_the_same_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let handle = start(config(&dir, 3), NoPeers).expect("node starts");
    propose_history(&handle, 4).await;
    let before = handle.read(Clone::clone).await.expect("read");
    handle.shutdown().await;
    let store = storage::RedbStorage::open(&dir.path().join("raft.redb"), &[1]).expect("store opens");
    assert!(store.latest_snapshot().get_metadata().index >= 3, "a snapshot was taken");
    drop(store);
    reopen_and_compare(&dir, 3, &before).await;
}

#[tokio::test]
async fn concurrent_proposals_are_all_applied_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let handle = start(config(&dir, 50), NoPeers).expect("node starts");
    let tasks: Vec<_> = (1..=40u128)
        .map(|n| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.propose(submit(n)).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(task.await.expect("joins"), Ok(Outcome::Submitted { n_cells: 3, .. })));
    }
    let n_sweeps = handle.read(|s| s.sweeps().count()).await.expect("read");
    assert_eq!(n_sweeps, 40);
    let pending = handle.read(|s| s.list_sweeps().iter().map(|s| s.counts.pending).sum::<usize>()).await.expect("read");
    assert_eq!(pending, 120);
    handle.shutdown().await;
}

#[test]
fn undecodable_entries_and_snapshots_are_errors() {
    let mut state = State::default();
    let entry = raft::eraftpb::Entry { index: 7, term: 1, data: b"{not json".to_vec().into(), ..Default::default() };
    let error = apply::apply_entry(&mut state, &entry).expect_err("undecodable");
    assert!(error.to_string().starts_with("entry 7 (term 1): undecodable command payload"), "{error}");
    assert!(apply::restore(b"[]").is_err());
    assert_eq!(apply::restore(b"").expect("empty is the empty state"), State::default());
}

#[tokio::test]
async fn a_sole_leader_reads_locally_only_while_that_is_linearizable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let handle = start(config(&dir, 1_000), NoPeers).expect("node starts");
    propose_history(&handle, 1).await;
    assert!(handle.local_reads.load(Ordering::Acquire), "a sole voter that applied its log reads locally");
    // A write acknowledged just before is seen by the very next read.
    handle.propose(submit(7)).await.expect("committed");
    assert!(handle.read(|s| s.sweep(&SweepId::from_u128(7)).is_some()).await.expect("read"));
    handle.shutdown().await;
    assert!(!handle.local_reads.load(Ordering::Acquire), "a stopped node serves no reads");
    let late = handle.read(|_| ()).await.expect_err("stopped");
    assert!(matches!(late, RaftError::Stopped(_)), "{late:?}");
}

/// A node whose store fails an fsync stops for good and says why on `halted` (the server
/// stops on it); the write is not acknowledged, nor is anything after it. A requested stop
/// is not a halt.
#[tokio::test]
async fn a_failed_fsync_halts_the_node_and_says_why() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = storage::tests::FlakyFsync::default();
    let fail = Arc::clone(&backend.fail);
    let db = redb::Database::builder().create_with_backend(backend).expect("in-memory database");
    let store = storage::RedbStorage::from_database(db, std::path::Path::new("flaky"), &[1]).expect("opens");
    let handle = start_on(config(&dir, 1_000), store, NoPeers).expect("node starts");
    assert!(matches!(handle.propose(register()).await, Ok(Outcome::AgentRegistered { .. })));
    let not_yet = tokio::time::timeout(Duration::from_millis(100), handle.halted()).await;
    assert!(not_yet.is_err(), "a healthy node is not halted");

    fail.store(true, SeqCst);
    let refused = handle.propose(submit(1)).await;
    assert!(matches!(refused, Err(RaftError::Stopped(_))), "{refused:?}");
    let reason = tokio::time::timeout(Duration::from_secs(5), handle.halted()).await.expect("the node halts");
    assert!(reason.starts_with("raft node stopped: raft store `flaky`"), "{reason}");
    assert!(reason.contains("injected fsync failure"), "{reason}");
    fail.store(false, SeqCst);
    assert!(handle.propose(submit(2)).await.is_err(), "nothing is acknowledged after the failed fsync");

    let healthy = tempfile::tempdir().expect("temp dir");
    let handle = start(config(&healthy, 1_000), NoPeers).expect("node starts");
    handle.shutdown().await;
    let after_stop = tokio::time::timeout(Duration::from_millis(200), handle.halted()).await;
    assert!(after_stop.is_err(), "a requested stop is not a halt");
}
