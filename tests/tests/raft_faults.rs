//! Fault runs on a Raft cluster (docs/RELIABILITY.md, "Layer B on a cluster"): three
//! coordinator processes and two agents given every node's URL run a sweep of 40 small
//! cells while seeded faults hit the nodes: SIGKILL of the leader or of a follower
//! (restarted at once or seconds later), of every node at once, and SIGSTOP of the leader
//! past the election timeout (it wakes up believing it leads). Then the sweep drains and
//! the run checks what must hold: every cell done with one `ok` row, no (cell, attempt)
//! twice in the warehouse, nothing left unacknowledged in a spool. Each leader kill is
//! timed to the next result acknowledged by the cluster (the failover as agents see it).
//!
//! `ACCELBENCH_CLUSTER_FAULT_RUNS` runs (default 12, about 2 minutes) from `ACCELBENCH_CLUSTER_FAULT_SEED`
//! (default 1); `ops/reliability/cluster-fault-runs.sh` runs a campaign. A run's choice
//! and order of faults replays from its seed; process timing does not.

use std::time::{Duration, Instant};

use e2e::fault::Rng;
use e2e::raft::{spec_arg, text, Nodes, NODES};
use e2e::tiny_spec;

/// bert-tiny × 20 batch sizes × 2 precisions.
const CELLS: u64 = 40;
const LEASE_SECONDS: u32 = 5;
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// SIGKILL the leader; start it again after this long.
    KillLeader(Duration),
    KillFollower(Duration),
    KillAll,
    /// SIGSTOP the leader this long (past the 1–2 s election timeout), then SIGCONT.
    PauseLeader(Duration),
}

impl Fault {
    fn draw(rng: &mut Rng) -> Fault {
        let later = |rng: &mut Rng| Duration::from_millis([0, 0, 1500, 4000][rng.below(4) as usize]);
        match rng.below(6) {
            0..=2 => Fault::KillLeader(later(rng)),
            3 => Fault::KillFollower(later(rng)),
            4 => Fault::KillAll,
            _ => Fault::PauseLeader(Duration::from_millis(2500 + rng.below(2500))),
        }
    }
}

/// What one run found.
#[derive(Debug, Default)]
struct Report {
    seed: u64,
    faults: Vec<String>,
    /// Leader SIGKILL → next result acknowledged, per leader kill.
    failovers: Vec<Duration>,
    ok: u64,
    duplicated: u64,
    cells_with_a_row: u64,
    unacknowledged: usize,
}

impl Report {
    fn clean(&self) -> bool {
        self.ok == CELLS && self.cells_with_a_row == CELLS && self.duplicated == 0 && self.unacknowledged == 0
    }
}

/// The sweep's state and `ok` count, asked of whichever node answers.
fn progress(nodes: &Nodes, id: &str, list: &str) -> Option<(String, u64)> {
    let c = nodes.sweep_counts(id, list)?;
    Some((c["state"].as_str()?.to_string(), c["ok"].as_u64()?))
}

/// Waits until the `ok` count passes `above`; how long that took.
fn next_ack(nodes: &Nodes, id: &str, list: &str, above: u64, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if progress(nodes, id, list).is_some_and(|(state, ok)| ok > above || state != "running") {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn one_run(seed: u64) -> Report {
    let mut rng = Rng(seed);
    let faults: Vec<Fault> = (0..1 + rng.below(3)).map(|_| Fault::draw(&mut rng)).collect();
    let mut report = Report { seed, faults: faults.iter().map(|f| format!("{f:?}")).collect(), ..Report::default() };
    let mut nodes = Nodes::start();
    let all: Vec<u64> = (1..=NODES).collect();
    nodes.agreed_leader(&all, Duration::from_secs(60));
    let list = nodes.list_from(1);
    let spec = nodes.dir.path().join("faults.toml");
    let batches: Vec<u32> = (1..=20).collect();
    std::fs::write(&spec, tiny_spec("cluster-faults", &["bert-tiny"], &batches, LEASE_SECONDS)).expect("spec");
    let o = nodes.cli(&["sweep", "submit", &spec_arg(&spec), "--coordinator", &list]);
    assert!(o.status.success(), "seed {seed}: {}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let mut agents: Vec<_> = ["a1", "a2"].iter().map(|name| nodes.start_agent(name, &list)).collect();

    for (i, fault) in faults.iter().enumerate() {
        // Fault i strikes once (i + 1) / (n + 1) of the cells are done.
        let due = CELLS * (i as u64 + 1) / (faults.len() as u64 + 1);
        let start = Instant::now();
        let ok = loop {
            match progress(&nodes, &id, &list) {
                Some((_, ok)) if ok >= due => break ok,
                _ if start.elapsed() > DRAIN_LIMIT => panic!("seed {seed}: stuck before {fault:?}\n{}", nodes.logs()),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let leader = wait_for_leader(&nodes, seed);
        let follower = all.iter().copied().find(|&n| n != leader).expect("a follower");
        match *fault {
            Fault::KillLeader(after) => {
                nodes.kill(leader);
                let killed_at = Instant::now();
                report.failovers.extend(next_ack(&nodes, &id, &list, ok, DRAIN_LIMIT));
                std::thread::sleep(after.saturating_sub(killed_at.elapsed()));
                nodes.restart(leader);
            }
            Fault::KillFollower(after) => {
                nodes.kill(follower);
                std::thread::sleep(after);
                nodes.restart(follower);
            }
            Fault::KillAll => {
                for &n in &all {
                    nodes.kill(n);
                }
                for &n in &all {
                    nodes.restart(n);
                }
            }
            Fault::PauseLeader(d) => {
                nodes.pause(leader, true);
                std::thread::sleep(d);
                nodes.pause(leader, false);
            }
        }
    }

    // Healed: the sweep drains.
    let start = Instant::now();
    loop {
        match progress(&nodes, &id, &list) {
            Some((state, ok)) if state != "running" => {
                report.ok = ok;
                break;
            }
            _ if start.elapsed() > DRAIN_LIMIT => panic!("seed {seed}: the sweep did not drain\n{}", nodes.logs()),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    // Every result acknowledged: spools empty (agents re-send what they spooled).
    let start = Instant::now();
    loop {
        report.unacknowledged = ["a1", "a2"]
            .iter()
            .map(|name| e2e::spooled_results(&nodes.dir.path().join(format!("spool-{name}"))).len())
            .sum();
        if report.unacknowledged == 0 || start.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for agent in &mut agents {
        let _ = agent.kill();
        let _ = agent.wait();
    }
    let sql = format!(
        "SELECT count(*) - count(DISTINCT (cell_key, attempt)) AS duplicated, \
         count(DISTINCT cell_key) FILTER (WHERE status = 'ok') AS cells \
         FROM results WHERE sweep_id = '{id}'"
    );
    let o = nodes.cli(&["query", &sql, "--warehouse", &nodes.warehouse, "--format", "json"]);
    assert!(o.status.success(), "seed {seed}: {}", text(&o));
    let row: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one json row");
    report.duplicated = row["duplicated"].as_u64().unwrap_or(u64::MAX);
    report.cells_with_a_row = row["cells"].as_u64().unwrap_or(0);
    if !report.clean() {
        eprintln!("{}", nodes.logs());
    }
    report
}

/// The leader, once one is elected (a previous fault may still be healing).
fn wait_for_leader(nodes: &Nodes, seed: u64) -> u64 {
    let start = Instant::now();
    loop {
        if let Some(leader) = nodes.leader() {
            return leader;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "seed {seed}: no leader\n{}", nodes.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn a_cluster_under_seeded_node_faults_loses_and_duplicates_nothing() {
    let first = env_u64("ACCELBENCH_CLUSTER_FAULT_SEED", 1);
    let runs = env_u64("ACCELBENCH_CLUSTER_FAULT_RUNS", 12);
    let mut failovers = Vec::new();
    let mut dirty = Vec::new();
    for seed in first..first + runs {
        let started = Instant::now();
        let r = one_run(seed);
        let ms: Vec<u128> = r.failovers.iter().map(Duration::as_millis).collect();
        // One line per run, for ops/reliability/cluster-fault-runs.sh to sum.
        println!(
            "cluster-fault seed={} clean={} ok={} duplicated={} cells={} unacknowledged={} failover_ms={ms:?} \
             took_s={} faults={:?}",
            r.seed,
            r.clean(),
            r.ok,
            r.duplicated,
            r.cells_with_a_row,
            r.unacknowledged,
            started.elapsed().as_secs(),
            r.faults
        );
        failovers.extend(r.failovers.iter().copied());
        if !r.clean() {
            dirty.push(format!("{r:?}"));
        }
    }
    failovers.sort();
    if let (Some(first), Some(last)) = (failovers.first(), failovers.last()) {
        println!(
            "failover (leader SIGKILL to the next acknowledged result): n={} min={first:?} p50={:?} max={last:?}",
            failovers.len(),
            failovers[failovers.len() / 2]
        );
    }
    assert!(dirty.is_empty(), "runs broke a promise (replay with ACCELBENCH_CLUSTER_FAULT_SEED): {dirty:#?}");
}
