//! Layer A of the reliability tests: a deterministic simulation of a coordinator cluster.
//!
//! One seed decides everything: 3 or 5 coordinator nodes running the real Raft node loop
//! ([`crate::raft::node`]) over raft-rs `RawNode`s, the real state machine and scheduler,
//! 3–8 simulated agents that lease cells, "run" them for a while and report results, and
//! a plan of faults: crashes and restarts (losing unsynced writes), partitions (symmetric,
//! one-way, an isolated leader), message drop, duplication, reordering and delay, fsync
//! errors, a full disk, clock jumps, and agents that pause and wake with stale leases.
//! Time is virtual and nothing runs on another thread, so a seed replays exactly:
//! `cargo run -p coordinator --example sim -- --seed N`.
//!
//! Layout:
//! - [`disk`]: the storage model (synced and unsynced writes, injected faults).
//! - [`world`]: nodes, agents, network and the event loop.
//! - [`check`]: the invariants, checked as the run goes and at its end.
//!
//! Must never: read the clock, use an unseeded RNG, or iterate a `HashMap` where the order
//! changes what happens (the seed would not replay).

mod check;
mod disk;
mod world;

#[cfg(test)]
mod tests;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::cell;
use shared::spec::{self, Limits};

use crate::state::{Command, SweepId};
pub use world::Ms;
use world::World;

/// The shape of one run, chosen by its seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub nodes: u64,
    pub agents: usize,
    pub cells: usize,
    /// Faults happen in `[0, fault_ms)`; then everything heals.
    pub fault_ms: Ms,
    /// After healing, every cell must be final within this.
    pub liveness_ms: Ms,
    /// Applied entries between snapshots (small values make followers need snapshots).
    pub snapshot_every: u64,
    /// Disks that acknowledge fsyncs and keep nothing: a deliberate flaw, for the test
    /// that shows the checks catch it. Never set by [`Config::for_seed`].
    pub lying_disks: bool,
}

impl Config {
    pub fn for_seed(seed: u64) -> Config {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Config {
            nodes: if rng.random_range(0..4) == 0 { 5 } else { 3 },
            agents: rng.random_range(3..=8),
            cells: rng.random_range(6..=24),
            fault_ms: 12_000,
            liveness_ms: 60_000,
            snapshot_every: [10, 40, 1_000][rng.random_range(0..3)],
            lying_disks: false,
        }
    }
}

/// One fault, at a point of virtual time.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The process dies (unsynced writes lost) and starts again after `down_ms` (0: at once).
    Crash {
        node: u64,
        down_ms: Ms,
    },
    CrashLeader {
        down_ms: Ms,
    },
    CrashAll {
        down_ms: Ms,
    },
    /// `minority` cannot talk with the others, both ways, for `heal_ms`.
    Partition {
        minority: Vec<u64>,
        heal_ms: Ms,
    },
    IsolateLeader {
        heal_ms: Ms,
    },
    /// Messages from `from` to `to` are lost; the other way works.
    OneWay {
        from: u64,
        to: u64,
        heal_ms: Ms,
    },
    Reconnect,
    /// Until the heal, this share of all messages is dropped, and this share duplicated.
    Lossy {
        drop_per_mille: u32,
        dup_per_mille: u32,
    },
    FsyncError {
        node: u64,
    },
    DiskFull {
        node: u64,
        for_ms: Ms,
    },
    DiskFreed {
        node: u64,
    },
    /// The node's wall clock (stamped on commands) jumps.
    ClockJump {
        node: u64,
        by_ms: i64,
    },
    /// The agent's process stops (SIGSTOP) and continues later with what it held.
    PauseAgent {
        agent: usize,
        for_ms: Ms,
    },
}

/// The faults of one run: 1–4 of them, at random times before the heal.
pub fn plan_faults(seed: u64, config: &Config) -> Vec<(Ms, Fault)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.rotate_left(17) ^ 0xfa17);
    let n = rng.random_range(1..=4);
    let node = |rng: &mut ChaCha8Rng| rng.random_range(1..=config.nodes);
    (0..n)
        .map(|_| {
            let at = rng.random_range(500..config.fault_ms - 500);
            let fault = match rng.random_range(0..12) {
                0 => Fault::Crash { node: node(&mut rng), down_ms: [0, 300, 3_000][rng.random_range(0..3)] },
                1 | 2 => Fault::CrashLeader { down_ms: [0, 500, 4_000][rng.random_range(0..3)] },
                3 => Fault::CrashAll { down_ms: rng.random_range(0..2_000) },
                4 => {
                    let size = rng.random_range(1..=(config.nodes - 1) / 2);
                    let mut minority: Vec<u64> = Vec::new();
                    while (minority.len() as u64) < size {
                        let n = node(&mut rng);
                        if !minority.contains(&n) {
                            minority.push(n);
                        }
                    }
                    Fault::Partition { minority, heal_ms: rng.random_range(500..6_000) }
                }
                5 => Fault::IsolateLeader { heal_ms: rng.random_range(500..6_000) },
                6 => {
                    let from = node(&mut rng);
                    let to = from % config.nodes + 1;
                    Fault::OneWay { from, to, heal_ms: rng.random_range(500..6_000) }
                }
                7 => {
                    Fault::Lossy { drop_per_mille: rng.random_range(10..300), dup_per_mille: rng.random_range(0..100) }
                }
                8 => Fault::FsyncError { node: node(&mut rng) },
                9 => Fault::DiskFull { node: node(&mut rng), for_ms: rng.random_range(500..5_000) },
                10 => Fault::ClockJump { node: node(&mut rng), by_ms: rng.random_range(-5_000..=5_000) },
                _ => Fault::PauseAgent {
                    agent: rng.random_range(0..config.agents),
                    for_ms: rng.random_range(2_000..12_000),
                },
            };
            (at, fault)
        })
        .collect()
}

/// What happened in a run, for the bench and for a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub events: u64,
    pub messages: u64,
    pub dropped: u64,
    pub snapshots_sent: u64,
    pub crashes: u64,
    pub storage_faults: u64,
    pub expired: u64,
    pub acked: u64,
    pub refused: u64,
    pub entries_checked: u64,
}

/// A run that passed every check.
#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    pub config: Config,
    pub faults: Vec<(Ms, Fault)>,
    pub counts: Counts,
    /// Virtual time at which every cell was final and every node caught up.
    pub ended_ms: Ms,
}

/// An invariant that did not hold (or a run that could not be set up).
#[derive(Debug, Clone, thiserror::Error)]
#[error("seed {seed}: {what}: {detail}\n  replay: cargo run -p coordinator --example sim -- --seed {seed}")]
pub struct Violation {
    pub seed: u64,
    pub what: &'static str,
    pub detail: String,
}

impl Violation {
    fn new(what: &'static str, detail: String) -> Violation {
        Violation { seed: 0, what, detail }
    }

    fn setup(detail: String) -> Violation {
        Violation::new("setup", detail)
    }
}

/// Runs one seed to its end and checks it.
pub fn run_seed(seed: u64) -> Result<Report, Violation> {
    let config = Config::for_seed(seed);
    let faults = plan_faults(seed, &config);
    run(seed, config, faults)
}

/// Runs `seed` with the given shape and faults.
pub fn run(seed: u64, config: Config, faults: Vec<(Ms, Fault)>) -> Result<Report, Violation> {
    let with_seed = |mut v: Violation| {
        v.seed = seed;
        v
    };
    let mut world = World::new(seed, config.clone(), faults.clone()).map_err(with_seed)?;
    world.run().map_err(with_seed)?;
    let mut counts = world.counts.clone();
    counts.entries_checked = world.checked_entries();
    Ok(Report { seed, config, faults, counts, ended_ms: world.now })
}

/// The sweep every run submits: `n_cells` cells, 3-second leases.
fn sweep_command(sweep_id: SweepId, n_cells: usize, at_ms: i64) -> Result<Command, Violation> {
    let batches: Vec<String> = (1..=n_cells).map(|b| b.to_string()).collect();
    let text = format!(
        "name = \"sim\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nfan_out = \"any\"\nbatch_sizes = [{}]\n[policy]\nlease_seconds = {}\n",
        batches.join(", "),
        world::LEASE_SECONDS
    );
    let spec = spec::parse_toml(&text, &Limits::default()).map_err(|e| Violation::setup(format!("sweep spec: {e}")))?;
    let cells = cell::expand(&spec, &[]).into_iter().map(|c| (c.key(&spec.name), c)).collect();
    Ok(Command::SubmitSweep { sweep_id, submitted_at_ms: at_ms, spec, cells, trace: None, submitted_by: None })
}
