//! Fault runs: a coordinator and a few agents as real processes run a sweep of ~100
//! small cells while seeded faults hit them (SIGKILL and immediate restart of an agent
//! or of the coordinator, SIGSTOP pauses longer than a lease, a warehouse manifest that
//! cannot be written for a while, a full warehouse disk, `warehouse compact` and `gc`
//! while running). Then the
//! faults heal, the sweep drains, and [`check`] counts what must be zero: cells that
//! never ended, results lost or duplicated, `ok` rows whose labels differ from their
//! cell, queries over the warehouse that fail.
//!
//! The fault model and how to replay a seed are in docs/RELIABILITY.md. A run is
//! reproducible in its choice and order of faults; the timing of processes is not.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use proto::v1::{GetSweepRequest, SweepState, SweepStatus};

use crate::Cluster;

/// A lease outlives this many seconds of silence; pauses are made longer than it.
const LEASE_SECONDS: u64 = 4;
/// How long a run may take to drain once its faults have healed.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

/// What one run did and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub n_agents: usize,
    pub faults: Vec<String>,
    pub n_cells: u64,
    pub n_ok: u64,
    /// Cells final in the coordinator (`ok`/`unsupported`) without a final row in the warehouse.
    pub lost: u64,
    /// (cell, attempt) pairs with more than one row.
    pub duplicated: u64,
    /// `ok` rows whose coordinates, engine or device differ from their cell.
    pub mislabelled: u64,
    /// Cells still pending or leased after the drain.
    pub stuck: u64,
    /// Results still in an agent's spool a minute after the drain (never acknowledged).
    pub unacknowledged: u64,
    /// Queries over the warehouse that failed, with their error.
    pub failed_queries: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.mislabelled == 0
            && self.stuck == 0
            && self.unacknowledged == 0
            && self.failed_queries.is_empty()
            && self.n_cells > 0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed={} agents={} cells={} ok={} lost={} duplicated={} mislabelled={} stuck={} unacknowledged={} \
             failed_queries={} elapsed_s={:.1} faults=[{}]",
            self.seed,
            self.n_agents,
            self.n_cells,
            self.n_ok,
            self.lost,
            self.duplicated,
            self.mislabelled,
            self.stuck,
            self.unacknowledged,
            self.failed_queries.len(),
            self.elapsed.as_secs_f64(),
            self.faults.join(", ")
        )?;
        for q in &self.failed_queries {
            write!(f, "\n  failed query: {q}")?;
        }
        Ok(())
    }
}

/// SplitMix64 (`kernels::random`'s), as a stateful generator: well-spread outputs even
/// for neighbouring seeds, and the same seeds give the same faults as before.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(kernels::random::GAMMA);
        kernels::random::mix(self.0)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

/// The faults a run draws from.
#[derive(Debug, Clone, Copy)]
enum Fault {
    KillAgent(usize),
    KillCoordinator,
    PauseAgent(usize),
    PauseCoordinator,
    FreezeManifest,
    FillDisk,
    Compact,
    Gc,
}

impl Fault {
    fn draw(rng: &mut Rng, n_agents: usize) -> Fault {
        let agent = rng.below(n_agents as u64) as usize;
        match rng.below(8) {
            0 => Fault::KillAgent(agent),
            1 => Fault::KillCoordinator,
            2 => Fault::PauseAgent(agent),
            3 => Fault::PauseCoordinator,
            4 => Fault::FreezeManifest,
            5 => Fault::FillDisk,
            6 => Fault::Compact,
            _ => Fault::Gc,
        }
    }
}

/// The sweep of a fault run: 100 bert-tiny cells that measure for a few milliseconds
/// each, short leases, and attempts enough that faults rarely use them all up.
pub fn spec(name: &str) -> String {
    let batches: Vec<String> = (1..=25).map(|b| b.to_string()).collect();
    format!(
        r#"name = "{name}"
[matrix]
models = ["bert-tiny"]
hardware = ["cpu"]
batch_sizes = [{}]
sequence_lengths = [8, 16]
precisions = ["fp32", "bf16"]
[measure]
warmup = {{ iterations = 0, min_seconds = 0.0 }}
min_iterations = 2
min_seconds = 0.0
max_seconds = 0.05
target_relative_ci = 0.5
[policy]
max_attempts = 10
lease_seconds = {LEASE_SECONDS}
"#,
        batches.join(", ")
    )
}

/// One fault run with `seed`.
pub async fn run(seed: u64) -> anyhow::Result<Report> {
    let start = Instant::now();
    let mut rng = Rng(seed);
    // The warehouse on a disk of its own, so that it can be filled; where mounting is
    // not allowed the run goes on without that fault.
    let mut c = match Cluster::start_on_small_disk(256)? {
        Ok(c) => c,
        Err(_) => Cluster::start()?,
    };
    let n_agents = 2 + rng.below(3) as usize;
    for idx in 0..n_agents {
        c.start_agent(idx)?;
    }
    wait_registered(&c, n_agents).await?;
    let id = c.submit(&c.write_spec("fault.toml", &spec(&format!("fault-{seed}")))?)?;
    let mut report = Report { seed, n_agents, ..Report::default() };
    let n_faults = 3 + rng.below(4);
    for _ in 0..n_faults {
        tokio::time::sleep(rng.millis(300, 2_500)).await;
        let fault = Fault::draw(&mut rng, n_agents);
        report.faults.push(inject(&mut c, fault, &mut rng).await?);
    }
    let status = match c.wait_done(&id, DRAIN_LIMIT).await {
        Ok(status) => status,
        Err(_) => current(&c, &id).await?,
    };
    // A cell is final in Raft before its rows reach the warehouse (the manifest commit
    // follows, and is retried while the warehouse refuses writes); it is acknowledged
    // only after. So wait for every agent's spool to empty: then every result was
    // acknowledged, and each must be in the warehouse.
    report.unacknowledged = wait_spools_empty(&c, n_agents).await;
    check(&c, &id, &status, &mut report);
    report.elapsed = start.elapsed();
    Ok(report)
}

async fn wait_registered(c: &Cluster, n: usize) -> anyhow::Result<()> {
    let start = Instant::now();
    while c.leases().await.map(|l| l.len()).unwrap_or(0) < n {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(60), "agents did not register; {}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits (at most a minute) until no agent has a result waiting in its spool; returns
/// how many are still there.
async fn wait_spools_empty(c: &Cluster, n_agents: usize) -> u64 {
    let pending = || -> u64 { (0..n_agents).map(|idx| crate::spooled_results(&c.spool(idx)).len() as u64).sum() };
    let start = Instant::now();
    while pending() > 0 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pending()
}

async fn current(c: &Cluster, id: &str) -> anyhow::Result<SweepStatus> {
    let mut client = c.client().await?;
    Ok(client.get(GetSweepRequest { sweep_id: id.into() }).await?.into_inner())
}

/// Applies `fault` and heals it before returning; says what it did.
async fn inject(c: &mut Cluster, fault: Fault, rng: &mut Rng) -> anyhow::Result<String> {
    let lease_plus = Duration::from_secs(LEASE_SECONDS) + rng.millis(500, 2_000);
    Ok(match fault {
        Fault::KillAgent(idx) => {
            c.kill_agent(idx);
            c.start_agent(idx)?;
            format!("kill+restart agent{idx}")
        }
        Fault::KillCoordinator => {
            let addr = c.addr.clone();
            c.kill_coordinator();
            c.start_coordinator(&addr)?;
            "kill+restart coordinator".into()
        }
        Fault::PauseAgent(idx) => {
            c.pause_agent(idx, true)?;
            tokio::time::sleep(lease_plus).await;
            c.pause_agent(idx, false)?;
            format!("pause agent{idx} {:.1}s", lease_plus.as_secs_f64())
        }
        Fault::PauseCoordinator => {
            let d = rng.millis(500, 3_000);
            c.pause_coordinator(true)?;
            tokio::time::sleep(d).await;
            c.pause_coordinator(false)?;
            format!("pause coordinator {:.1}s", d.as_secs_f64())
        }
        Fault::FreezeManifest => {
            let dir = c.warehouse().join("_manifest");
            let d = rng.millis(1_000, 4_000);
            if !chattr(&dir, "+i") {
                return Ok("freeze manifest skipped (chattr +i unavailable: not root, or no such folder yet)".into());
            }
            tokio::time::sleep(d).await;
            anyhow::ensure!(chattr(&dir, "-i"), "could not thaw {}", dir.display());
            format!("freeze manifest {:.1}s", d.as_secs_f64())
        }
        Fault::FillDisk => {
            let d = rng.millis(1_000, 4_000);
            if !c.fill_disk(true) {
                return Ok("fill disk skipped (the warehouse is not on a disk of its own: not root?)".into());
            }
            tokio::time::sleep(d).await;
            c.fill_disk(false);
            format!("full warehouse disk {:.1}s", d.as_secs_f64())
        }
        Fault::Compact => {
            let o = c.cli(&["warehouse", "compact", "--warehouse", &c.warehouse().to_string_lossy()]);
            format!("compact ({})", if o.status.success() { "ok" } else { "refused" })
        }
        Fault::Gc => {
            let o = c.cli(&["warehouse", "gc", "--warehouse", &c.warehouse().to_string_lossy()]);
            format!("gc ({})", if o.status.success() { "ok" } else { "refused" })
        }
    })
}

/// `chattr` on a folder: with `+i` nothing can be created in it, not even by root.
fn chattr(dir: &Path, flag: &str) -> bool {
    dir.is_dir() && Command::new("chattr").arg(flag).arg(dir).status().is_ok_and(|s| s.success())
}

fn count(s: &SweepStatus, state: &str) -> u64 {
    s.cells_by_state.get(state).copied().unwrap_or(0)
}

/// Fills the counts of `report` from the coordinator's final status and the warehouse.
pub fn check(c: &Cluster, sweep_id: &str, status: &SweepStatus, report: &mut Report) {
    report.n_cells = status.cells_by_state.values().sum();
    report.n_ok = count(status, "ok");
    report.stuck =
        if status.state == SweepState::Running as i32 { count(status, "pending") + count(status, "leased") } else { 0 };
    let number = |sql: String, report: &mut Report| -> u64 {
        match c.query(&sql) {
            Ok(rows) => rows.first().and_then(|r| r["n"].as_u64()).unwrap_or(0),
            Err(e) => {
                report.failed_queries.push(format!("{sql}: {e:#}"));
                0
            }
        }
    };
    let final_in_warehouse = number(
        format!(
            "SELECT count(DISTINCT cell_key) AS n FROM results WHERE sweep_id = '{sweep_id}' \
             AND status IN ('ok', 'unsupported')"
        ),
        report,
    );
    report.lost = (count(status, "ok") + count(status, "unsupported")).saturating_sub(final_in_warehouse);
    report.duplicated = number(
        format!(
            "SELECT count(*) AS n FROM (SELECT cell_key, attempt FROM results WHERE sweep_id = '{sweep_id}' \
             GROUP BY cell_key, attempt HAVING count(*) > 1)"
        ),
        report,
    );
    let n_cell_rows =
        number(format!("SELECT count(DISTINCT cell_key) AS n FROM cells WHERE sweep_id = '{sweep_id}'"), report);
    if n_cell_rows != report.n_cells {
        report.failed_queries.push(format!("cells table has {n_cell_rows} of {} cells", report.n_cells));
    }
    report.mislabelled = number(
        format!(
            "SELECT count(*) AS n FROM results r JOIN cells c USING (sweep_id, cell_key) \
             WHERE r.sweep_id = '{sweep_id}' AND r.status = 'ok' AND (r.model <> c.model OR r.batch <> c.batch \
             OR r.seq_len <> c.seq_len OR r.precision <> c.precision OR r.mode <> c.mode OR r.engine <> c.engine \
             OR r.hardware_class IS DISTINCT FROM c.hardware_class OR r.device IS DISTINCT FROM 'cpu')"
        ),
        report,
    );
    for table in
        ["results", "samples", "sweeps", "cells", "agents", "latest_results", "speedup_vs_cpu", "compatibility_matrix"]
    {
        if let Err(e) = c.query(&format!("SELECT * FROM {table}")).context(table) {
            report.failed_queries.push(format!("SELECT * FROM {table}: {e:#}"));
        }
    }
}
