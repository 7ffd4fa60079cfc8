//! Fault runs on a Raft cluster (docs/RELIABILITY.md, "Layer B on a cluster"): three
//! coordinator processes and three agents given every node's URL, each in a network
//! namespace of its own where the test may make them ([`e2e::netns`]), run a sweep of 120
//! one-iteration cells (`ACCELBENCH_CLUSTER_FAULT_CELLS` for more) while seeded faults
//! hit them. Process faults: SIGKILL of the leader or of a
//! follower (restarted at once or seconds later), of every node at once, of an agent
//! holding a lease; SIGSTOP of the leader past the election timeout (it wakes up believing
//! it leads). Network faults, through a proxy on every link ([`e2e::netfault`]): the
//! leader or a follower cut off from everyone (held like a blackhole, or reset), the
//! leader unable to send while it still hears the others (one-way), the leader's links
//! flapping, every link slowed. Disk faults under the leader or a follower
//! ([`e2e::diskfault`]): its disk full (a small tmpfs of its own, filled), its fsyncs
//! failing; a node whose write fails must stop, say why and exit with status 2, and is
//! started again once the disk is mended. Then the faults heal, the sweep drains and the
//! run checks what must hold: every cell done with one `ok` row, no (cell, attempt) twice
//! in the warehouse, nothing left unacknowledged in a spool, the sweep done within 30 s of
//! the last heal, no node ended by a disk fault any other way. Timed: each leader kill,
//! leader isolation and leader disk fault to the next result acknowledged by the cluster
//! (the failover as agents see it), and each lost agent's cell to its next lease (read
//! from the nodes' logs).
//!
//! `ACCELBENCH_CLUSTER_FAULT_RUNS` runs (default 12, about 6 minutes) from
//! `ACCELBENCH_CLUSTER_FAULT_SEED` (default 2: seeds 2–13 strike every kind of fault at
//! least once); `ops/reliability/cluster-fault-runs.sh` runs a campaign. A run's choice and
//! order of faults replays from its seed; process timing does not. A full disk needs the
//! right to mount a tmpfs (root here); without it that fault is reported as skipped.

use std::time::{Duration, Instant};

use e2e::fault::Rng;
use e2e::netfault::{is_node, Mode};
use e2e::one_iteration_spec;
use e2e::raft::{spec_arg, text, Nodes, NODES};

/// Cells a run's sweep has by default (`ACCELBENCH_CLUSTER_FAULT_CELLS` sets another
/// multiple of 20): bert-tiny × 6 batch sizes × 10 sequence lengths × 2 precisions, each
/// cell one timed iteration of a few hundred tokens at most, enough for three faults to
/// strike while cells are left.
const CELLS: u64 = 120;
/// The sequence lengths of a run's sweep (1 to this); the batch sizes make up the rest.
const SEQUENCE_LENGTHS: u32 = 10;
const LEASE_SECONDS: u32 = 5;
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Two of three nodes stand after a leader's kill: with no result acknowledged within
/// this, the cluster stalled (the goal is 3 s at p99).
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);
/// The sweep must end within this of the last fault's heal.
const DONE_AFTER_HEAL: Duration = Duration::from_secs(30);
const AGENTS: [&str; 3] = ["a1", "a2", "a3"];
/// Shorter than any election (0.6–1.2 s): see `next_ack`.
const IN_FLIGHT: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// SIGKILL the leader; start it again after this long.
    KillLeader(Duration),
    KillFollower(Duration),
    KillAll,
    /// SIGSTOP the leader this long (past the 0.6–1.2 s election timeout), then SIGCONT.
    PauseLeader(Duration),
    /// Every link to and from the leader, agents' included, held or reset this long.
    IsolateLeader(Duration, Mode),
    IsolateFollower(Duration, Mode),
    /// The leader's connections to the other nodes hold this long; theirs to it pass.
    LeaderCannotSend(Duration),
    /// The leader's links go down and up (each state 0.2–0.7 s) for this long.
    FlapLeader(Duration),
    /// Every link delays each chunk by the second figure, for the first.
    SlowNetwork(Duration, Duration),
    /// SIGKILL agent AGENTS[i] once it holds a lease; start it again at once or only
    /// after its cell was leased to another.
    KillAgent(usize, bool),
    /// The disk under the leader (`true`) or a follower is full this long; then freed, and
    /// the node started again if it stopped.
    DiskFull(bool, Duration),
    /// Every fsync of the leader (`true`) or a follower fails this long; then the same.
    FsyncFails(bool, Duration),
}

impl Fault {
    fn draw(rng: &mut Rng) -> Fault {
        let later = |rng: &mut Rng| Duration::from_millis([0, 0, 1500, 4000][rng.below(4) as usize]);
        let window = |rng: &mut Rng| Duration::from_millis(2500 + rng.below(2500));
        let cut = |rng: &mut Rng| if rng.below(2) == 0 { Mode::Hold } else { Mode::Reject };
        match rng.below(14) {
            0..=1 => Fault::KillLeader(later(rng)),
            2 => Fault::KillFollower(later(rng)),
            3 => Fault::KillAll,
            4 => Fault::PauseLeader(window(rng)),
            5..=6 => Fault::IsolateLeader(window(rng), cut(rng)),
            7 => Fault::IsolateFollower(window(rng), cut(rng)),
            8 => Fault::LeaderCannotSend(window(rng)),
            9 => Fault::FlapLeader(window(rng)),
            10 => Fault::SlowNetwork(window(rng), Duration::from_millis(20 + rng.below(180))),
            11 => Fault::KillAgent(rng.below(2) as usize, rng.below(2) == 0),
            12 => Fault::DiskFull(rng.below(2) == 0, window(rng)),
            _ => Fault::FsyncFails(rng.below(2) == 0, window(rng)),
        }
    }
}

/// What one run found.
#[derive(Debug, Default)]
struct Report {
    seed: u64,
    faults: Vec<String>,
    /// Faults that struck while cells were left (the rest found the sweep done).
    struck: usize,
    /// Leader SIGKILL → next result acknowledged, per leader kill.
    failovers: Vec<Duration>,
    /// Leader kills after which no result was acknowledged within [`FAILOVER_LIMIT`]
    /// while cells were left: a stalled cluster (before, such a kill just left no
    /// figure, and a run stuck for minutes could end clean).
    stalls: Vec<String>,
    /// Leader cut off → next result acknowledged, per isolation that saw one.
    isolated: Vec<Duration>,
    /// A killed agent's cell: SIGKILL → the cell's next lease, per agent kill that left
    /// a cell behind.
    relets: Vec<Duration>,
    /// The leader's disk full or failing → next result acknowledged.
    disk_failovers: Vec<Duration>,
    /// Nodes that stopped on a disk fault, as they should (exit status 2, the reason logged).
    disk_stops: usize,
    /// Nodes that ended otherwise on a disk fault (a panic, a signal, no reason logged).
    bad_stops: Vec<String>,
    /// Faults that could not strike here, and why.
    skipped: Vec<String>,
    /// Cells in the run's sweep.
    cells: u64,
    /// Whether the processes ran in network namespaces of their own (else on loopback).
    namespaced: bool,
    /// Last heal → the sweep done.
    done_after_heal: Duration,
    ok: u64,
    duplicated: u64,
    cells_with_a_row: u64,
    /// Results the nodes logged as committed (logged before the agent's ack) with no row
    /// in the warehouse: acknowledged and lost.
    lost: usize,
    /// Rows in the warehouse for a (cell, attempt) no node logged a lease for (logged
    /// before the lease goes out): results nobody was asked for.
    unexpected: usize,
    unacknowledged: usize,
}

impl Report {
    fn clean(&self) -> bool {
        self.ok == self.cells
            && self.cells_with_a_row == self.cells
            && self.duplicated == 0
            && self.lost == 0
            && self.unexpected == 0
            && self.unacknowledged == 0
            && self.bad_stops.is_empty()
            && self.stalls.is_empty()
            && self.done_after_heal <= DONE_AFTER_HEAL
    }
}

/// The sweep's state and `ok` count, asked of whichever node answers.
fn progress(nodes: &Nodes, id: &str, list: &str) -> Option<(String, u64)> {
    let c = nodes.sweep_counts(id, list)?;
    Some((c["state"].as_str()?.to_string(), c["ok"].as_u64()?))
}

/// Results the nodes have logged as committed so far (acknowledged to their agents).
fn committed(nodes: &Nodes) -> usize {
    nodes.log_events().iter().filter(|e| e["message"] == "result committed").count()
}

/// After a fault struck (now), waits for the next result committed; how long that took.
/// Read from the nodes' logs, not asked of the cluster: a question may itself wait on the
/// fault. Commits logged within [`IN_FLIGHT`] count as made before the fault (a result
/// Raft committed just before a leader was cut off is logged after its warehouse write).
fn next_ack(nodes: &Nodes, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    std::thread::sleep(IN_FLIGHT);
    let before = committed(nodes);
    while start.elapsed() < limit {
        if committed(nodes) > before {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn one_run(seed: u64) -> Report {
    let mut rng = Rng(seed);
    let faults: Vec<Fault> = (0..1 + rng.below(3)).map(|_| Fault::draw(&mut rng)).collect();
    let per_batch = 2 * u64::from(SEQUENCE_LENGTHS);
    let cells = env_u64("ACCELBENCH_CLUSTER_FAULT_CELLS", CELLS).max(per_batch) / per_batch * per_batch;
    let mut report =
        Report { seed, cells, faults: faults.iter().map(|f| format!("{f:?}")).collect(), ..Report::default() };
    let mut nodes = Nodes::start_with_net(&AGENTS);
    report.namespaced = nodes.namespaced();
    let all: Vec<u64> = (1..=NODES).collect();
    nodes.agreed_leader(&all, Duration::from_secs(60));
    // The harness itself is never cut off: it reaches the nodes directly.
    let list = nodes.list_from(1);
    let spec = nodes.dir.path().join("faults.toml");
    let batches: Vec<u32> = (1..=(report.cells / per_batch) as u32).collect();
    let seqs: Vec<u32> = (1..=SEQUENCE_LENGTHS).collect();
    std::fs::write(&spec, one_iteration_spec("cluster-faults", &["bert-tiny"], &batches, &seqs, LEASE_SECONDS))
        .expect("spec");
    let o = nodes.cli(&["sweep", "submit", &spec_arg(&spec), "--coordinator", &list]);
    assert!(o.status.success(), "seed {seed}: {}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let mut agents: Vec<_> = AGENTS.iter().map(|name| nodes.start_agent(name, &nodes.agent_list(name))).collect();

    for (i, fault) in faults.iter().enumerate() {
        // Fault i strikes once (i + 1) / (n + 1) of the cells are done.
        let due = report.cells * (i as u64 + 1) / (faults.len() as u64 + 1);
        let start = Instant::now();
        let running = loop {
            match progress(&nodes, &id, &list) {
                Some((state, ok)) if ok >= due || state != "running" => break state == "running",
                _ if start.elapsed() > DRAIN_LIMIT => panic!("seed {seed}: stuck before {fault:?}\n{}", nodes.logs()),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        if !running {
            break;
        }
        report.struck += 1;
        let leader = wait_for_leader(&nodes, seed);
        let follower = all.iter().copied().find(|&n| n != leader).expect("a follower");
        match *fault {
            Fault::KillLeader(after) => {
                nodes.kill(leader);
                let killed_at = Instant::now();
                match next_ack(&nodes, FAILOVER_LIMIT) {
                    Some(took) => report.failovers.push(took),
                    // No result is due once the sweep is done.
                    None if progress(&nodes, &id, &list).is_none_or(|(state, _)| state == "running") => report
                        .stalls
                        .push(format!("{fault:?}: no result acknowledged within {FAILOVER_LIMIT:?} of the kill")),
                    None => {}
                }
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
            Fault::IsolateLeader(d, mode) => {
                let cut_at = Instant::now();
                cut(&nodes, around(leader), mode);
                report.isolated.extend(next_ack(&nodes, d));
                std::thread::sleep(d.saturating_sub(cut_at.elapsed()));
                heal(&nodes);
            }
            Fault::IsolateFollower(d, mode) => {
                cut(&nodes, around(follower), mode);
                std::thread::sleep(d);
                heal(&nodes);
            }
            Fault::LeaderCannotSend(d) => {
                cut(&nodes, |from, _| is_node(from, leader), Mode::Hold);
                std::thread::sleep(d);
                heal(&nodes);
            }
            Fault::FlapLeader(d) => {
                let flapping = Instant::now();
                while flapping.elapsed() < d {
                    let mode = if rng.below(2) == 0 { Mode::Hold } else { Mode::Reject };
                    cut(&nodes, around(leader), mode);
                    std::thread::sleep(Duration::from_millis(200 + rng.below(500)));
                    heal(&nodes);
                    std::thread::sleep(Duration::from_millis(200 + rng.below(500)));
                }
            }
            Fault::SlowNetwork(d, delay) => {
                cut(&nodes, |_, _| true, Mode::Delay(delay));
                std::thread::sleep(d);
                heal(&nodes);
            }
            Fault::KillAgent(i, at_once) => {
                let name = AGENTS[i];
                let held = wait_until_holding(&nodes, name);
                let _ = agents[i].kill();
                let _ = agents[i].wait();
                let killed_at = Instant::now();
                if at_once {
                    agents[i] = nodes.start_agent(name, &nodes.agent_list(name));
                }
                if let Some((cell, attempt)) = held {
                    report.relets.extend(leased_again(&nodes, &cell, attempt).then(|| killed_at.elapsed()));
                }
                if !at_once {
                    agents[i] = nodes.start_agent(name, &nodes.agent_list(name));
                }
            }
            Fault::DiskFull(on_leader, d) | Fault::FsyncFails(on_leader, d) => {
                let n = if on_leader { leader } else { follower };
                let full = matches!(fault, Fault::DiskFull(..));
                let halts_before = halts(&nodes, n);
                let struck_at = Instant::now();
                if !full {
                    nodes.disk(n).fail_fsync(true);
                } else if let Err(why) = nodes.disk(n).fill() {
                    report.skipped.push(format!("{fault:?}: {why}"));
                }
                if on_leader {
                    report.disk_failovers.extend(next_ack(&nodes, d));
                }
                std::thread::sleep(d.saturating_sub(struck_at.elapsed()));
                match full {
                    true => nodes.disk(n).free(),
                    false => nodes.disk(n).fail_fsync(false),
                }
                // The disk is mended: a node that stopped is started again, as its
                // supervisor would.
                let stopped = stopped_on_disk(&mut nodes, n, halts_before);
                match stopped {
                    Some(Ok(())) => report.disk_stops += 1,
                    Some(Err(ref how)) => report.bad_stops.push(format!("node {n} on {fault:?}: {how}")),
                    None => {}
                }
                if stopped.is_some() {
                    nodes.kill(n);
                    nodes.restart(n);
                }
            }
        }
    }

    report.struck -= report.skipped.len();

    // Healed: the sweep drains.
    let start = Instant::now();
    loop {
        match progress(&nodes, &id, &list) {
            Some((state, ok)) if state != "running" => {
                report.ok = ok;
                report.done_after_heal = start.elapsed();
                break;
            }
            _ if start.elapsed() > DRAIN_LIMIT => panic!("seed {seed}: the sweep did not drain\n{}", nodes.logs()),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    // Every result acknowledged: spools empty (agents re-send what they spooled).
    let start = Instant::now();
    loop {
        report.unacknowledged =
            AGENTS.iter().map(|name| e2e::spooled_results(&nodes.dir.path().join(format!("spool-{name}"))).len()).sum();
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
    (report.lost, report.unexpected) = against_the_logs(&nodes, &id, seed);
    if !report.clean() {
        eprintln!("{}", nodes.logs());
    }
    report
}

/// The node message logged when a failed write stops it (coordinator/src/server/mod.rs).
const HALTED: &str = "stopping: the raft node cannot go on";

/// How many times node `n` has logged that a failed write stopped it.
fn halts(nodes: &Nodes, n: u64) -> usize {
    nodes.log_events().iter().filter(|e| e["node"] == n && e["message"] == HALTED).count()
}

/// Whether node `n` stopped on the disk fault just healed: `None` if it runs on (its
/// writes found room), `Ok` if it logged why and exited with status 2 (the CLI's error
/// status), `Err` (how) if it ended any other way. A node that logged the halt gets 40 s
/// to finish exiting (its server lets open requests end, bounded by the committer's 30 s
/// drain).
fn stopped_on_disk(nodes: &mut Nodes, n: u64, halts_before: usize) -> Option<Result<(), String>> {
    let start = Instant::now();
    loop {
        if let Some(status) = nodes.exited(n) {
            let logged = halts(nodes, n) > halts_before;
            return Some(match (status.code(), logged) {
                (Some(2), true) => Ok(()),
                (_, true) => Err(format!("logged the halt but ended with {status}")),
                (_, false) => Err(format!("ended with {status} without logging why")),
            });
        }
        if halts(nodes, n) == halts_before || start.elapsed() > Duration::from_secs(40) {
            return (halts(nodes, n) > halts_before).then(|| Err("logged the halt but still runs after 40 s".into()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every (cell, attempt) of sweep `id` in the warehouse, checked against the nodes' logs:
/// how many logged commits have no row (lost), and how many rows have no logged lease
/// (unexpected).
fn against_the_logs(nodes: &Nodes, id: &str, seed: u64) -> (usize, usize) {
    use std::collections::BTreeSet;
    let sql = format!("SELECT cell_key, attempt FROM results WHERE sweep_id = '{id}'");
    let o = nodes.cli(&["query", &sql, "--warehouse", &nodes.warehouse, "--format", "json"]);
    assert!(o.status.success(), "seed {seed}: {}", text(&o));
    let rows: BTreeSet<(String, u64)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|r| Some((r["cell_key"].as_str()?.to_string(), r["attempt"].as_u64()?)))
        .collect();
    let events = nodes.log_events();
    let logged = |message: &str| -> BTreeSet<(String, u64)> {
        events
            .iter()
            .filter(|e| e["message"] == message && e["sweep_id"] == id)
            .filter_map(|e| Some((e["cell_key"].as_str()?.to_string(), e["attempt"].as_u64()?)))
            .collect()
    };
    let (committed, leased) = (logged("result committed"), logged("lease granted"));
    assert!(!rows.is_empty() && !committed.is_empty(), "seed {seed}: no rows or no logged commits to check");
    (committed.difference(&rows).count(), rows.difference(&leased).count())
}

/// Every link to or from node `n`, agents' included.
fn around(n: u64) -> impl Fn(&str, u64) -> bool {
    move |from, to| is_node(from, n) || to == n
}

fn cut(nodes: &Nodes, chosen: impl Fn(&str, u64) -> bool, mode: Mode) {
    nodes.net.as_ref().expect("the runs start the cluster behind proxies").set(chosen, mode);
}

fn heal(nodes: &Nodes) {
    nodes.net.as_ref().expect("the runs start the cluster behind proxies").heal();
}

fn is_event(e: &serde_json::Value, message: &str, cell: &str) -> bool {
    e["message"] == message && e["cell_key"] == cell
}

/// Whether the nodes logged `cell`'s result for `attempt` as committed.
fn delivered(events: &[serde_json::Value], cell: &str, attempt: u64) -> bool {
    events.iter().any(|e| is_event(e, "result committed", cell) && e["attempt"].as_u64() == Some(attempt))
}

/// The cell (and attempt) agent `name` was leased last and has not delivered, once there
/// is one: waits up to 10 s (the agent may be between cells).
fn wait_until_holding(nodes: &Nodes, name: &str) -> Option<(String, u64)> {
    let id_file = nodes.dir.path().join(format!("spool-{name}")).join("agent-id");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let agent_id = std::fs::read_to_string(&id_file).unwrap_or_default().trim().to_string();
        let events = nodes.log_events();
        let last = events
            .iter()
            .filter(|e| e["message"] == "lease granted" && e["agent_id"] == agent_id.as_str())
            .max_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
        if let Some((cell, attempt)) = last.and_then(|g| Some((g["cell_key"].as_str()?, g["attempt"].as_u64()?))) {
            if !delivered(&events, cell, attempt) {
                return Some((cell.to_string(), attempt));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Waits until `cell` is leased under a later attempt than `attempt` (true), or its
/// result for `attempt` commits after all (false: the agent had sent it before it died).
/// A cell never leased again within [`DRAIN_LIMIT`] fails the run.
fn leased_again(nodes: &Nodes, cell: &str, attempt: u64) -> bool {
    let start = Instant::now();
    loop {
        let events = nodes.log_events();
        if events.iter().any(|e| is_event(e, "lease granted", cell) && e["attempt"].as_u64() > Some(attempt)) {
            return true;
        }
        if delivered(&events, cell, attempt) {
            return false;
        }
        assert!(
            start.elapsed() < DRAIN_LIMIT,
            "cell {cell} of a killed agent was never leased again\n{}",
            nodes.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let first = env_u64("ACCELBENCH_CLUSTER_FAULT_SEED", 2);
    let runs = env_u64("ACCELBENCH_CLUSTER_FAULT_RUNS", 12);
    let mut failovers = Vec::new();
    let mut dirty = Vec::new();
    for seed in first..first + runs {
        let started = Instant::now();
        let r = one_run(seed);
        let ms = |all: &[Duration]| all.iter().map(Duration::as_millis).collect::<Vec<_>>();
        // One line per run, for ops/reliability/cluster-fault-runs.sh to sum.
        println!(
            "cluster-fault seed={} clean={} namespaces={} agents={} sweep_cells={} struck={}/{} ok={} duplicated={} cells={} unacknowledged={} lost={} unexpected={} \
             failover_ms={:?} stalled={} isolated_ms={:?} relet_ms={:?} disk_ms={:?} disk_stops={} bad_stops={:?} \
             skipped={:?} done_after_heal_ms={} took_s={} faults={:?}",
            r.seed,
            r.clean(),
            r.namespaced,
            AGENTS.len(),
            r.cells,
            r.struck,
            r.faults.len(),
            r.ok,
            r.duplicated,
            r.cells_with_a_row,
            r.unacknowledged,
            r.lost,
            r.unexpected,
            ms(&r.failovers),
            r.stalls.len(),
            ms(&r.isolated),
            ms(&r.relets),
            ms(&r.disk_failovers),
            r.disk_stops,
            r.bad_stops,
            r.skipped,
            r.done_after_heal.as_millis(),
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

/// A node behind a blackhole accepts the TCP connection (here: the proxy does) and never
/// answers the TLS handshake: the CLI gives up within its 5 s connect limit and says so,
/// rather than waiting for good.
#[test]
fn a_client_gives_up_on_a_node_behind_a_blackhole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca");
    let o = std::process::Command::new(e2e::binary("accelbench"))
        .args(["ca", "init", "--dir"])
        .arg(&ca)
        .output()
        .expect("accelbench runs");
    assert!(o.status.success(), "{}", text(&o));
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("addr");
    let net = e2e::netfault::Net::new([(1, nowhere)].into());
    let url = net.url("cli", 1);
    net.set(|_, _| true, Mode::Hold);
    let start = Instant::now();
    let o = std::process::Command::new(e2e::binary("accelbench"))
        .args(["sweep", "list", "--coordinator", &url])
        .env("ACCELBENCH_CA", ca.join("ca.pem"))
        .output()
        .expect("accelbench runs");
    let took = start.elapsed();
    assert!(!o.status.success(), "{}", text(&o));
    // Whichever 5 s limit fires first: the handshake's or the whole connection's.
    let said = text(&o);
    assert!(said.contains("TLS handshake timeout") || said.contains("no connection within 5 s"), "{said}");
    assert!(took < Duration::from_secs(20), "the CLI waited {took:?}");
}
