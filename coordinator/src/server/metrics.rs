//! The coordinator's Prometheus metrics, served as text at `/metrics` on the HTTP
//! listener (`--http-listen`).
//!
//! Two kinds: what happens (counters and histograms the services update as they work:
//! leases granted and expired, lease request latency, results by how they were
//! answered, group-commit size and latency), and what is (gauges read from the state
//! machine and the liveness table at each scrape: cells by state, sweeps, agents by
//! hardware class and liveness, the warehouse's committed files and bytes). Reading the
//! state at scrape time keeps one source of truth: nothing here can drift from it.
//!
//! Must never: take a lock the services need for longer than one pass over the state
//! (the scrape reads this node's state as it is, `read_local`, never through Raft).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::state::{CellStateKind, State};

use super::Ctx;

type Labels = Vec<(&'static str, String)>;

/// Every metric the coordinator exports; cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    /// The scrape-time gauges are set and encoded under this lock, one scrape at a time.
    scrape: Mutex<()>,
    leases_granted: Counter,
    leases_expired: Counter,
    lease_seconds: Histogram,
    results: Family<Labels, Counter>,
    commit_group_size: Histogram,
    commit_group_seconds: Histogram,
    cells: Family<Labels, Gauge>,
    sweeps: Family<Labels, Gauge>,
    agents: Family<Labels, Gauge>,
    warehouse_files: Gauge,
    warehouse_bytes: Gauge,
    raft_term: Gauge,
    raft_commit_index: Gauge,
    raft_applied_index: Gauge,
    raft_is_leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("accelbench"),
            scrape: Mutex::new(()),
            leases_granted: Counter::default(),
            leases_expired: Counter::default(),
            // 100 µs to ~6.5 s.
            lease_seconds: Histogram::new(exponential_buckets(1e-4, 2.0, 17)),
            results: Family::default(),
            commit_group_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            commit_group_seconds: Histogram::new(exponential_buckets(1e-3, 2.0, 15)),
            cells: Family::default(),
            sweeps: Family::default(),
            agents: Family::default(),
            warehouse_files: Gauge::default(),
            warehouse_bytes: Gauge::default(),
            raft_term: Gauge::default(),
            raft_commit_index: Gauge::default(),
            raft_applied_index: Gauge::default(),
            raft_is_leader: Gauge::default(),
        };
        let registry = &mut m.registry;
        registry.register("leases_granted", "Cell leases granted to agents", m.leases_granted.clone());
        registry.register(
            "leases_expired",
            "Cell leases ended because their agent fell silent",
            m.leases_expired.clone(),
        );
        registry.register(
            "lease_request_seconds",
            "Time to answer an agent's LeaseCells request",
            m.lease_seconds.clone(),
        );
        registry.register("results", "Reported results by how they were answered", m.results.clone());
        registry.register("commit_group_size", "Results per group commit", m.commit_group_size.clone());
        registry.register(
            "commit_group_seconds",
            "Time from a group's start to its last answer",
            m.commit_group_seconds.clone(),
        );
        registry.register("cells", "Cells of all sweeps by state", m.cells.clone());
        registry.register("sweeps", "Sweeps by whether cells remain to run", m.sweeps.clone());
        registry.register(
            "agents",
            "Registered agents by hardware class and liveness (an agent counts once per class it has)",
            m.agents.clone(),
        );
        registry.register("warehouse_files", "Files committed to the warehouse", m.warehouse_files.clone());
        registry.register(
            "warehouse_bytes",
            "Bytes of the files committed to the warehouse",
            m.warehouse_bytes.clone(),
        );
        registry.register("raft_term", "This node's Raft term", m.raft_term.clone());
        registry.register(
            "raft_commit_index",
            "Highest log index this node knows committed",
            m.raft_commit_index.clone(),
        );
        registry.register(
            "raft_applied_index",
            "Highest log index this node has applied (commit index minus this is its apply lag)",
            m.raft_applied_index.clone(),
        );
        registry.register("raft_is_leader", "1 while this node leads its Raft group", m.raft_is_leader.clone());
        m
    }
}

impl Metrics {
    /// A LeaseCells request answered with `granted` leases in `took`.
    pub fn leased(&self, granted: usize, took: Duration) {
        self.leases_granted.inc_by(granted as u64);
        self.lease_seconds.observe(took.as_secs_f64());
    }

    pub fn expired(&self, leases: usize) {
        self.leases_expired.inc_by(leases as u64);
    }

    /// A result answered `outcome` (the ack status: committed, duplicate, rejected…).
    pub fn result(&self, outcome: &str) {
        self.results.get_or_create(&vec![("outcome", outcome.to_ascii_lowercase())]).inc();
    }

    pub fn group_committed(&self, results: usize, took: Duration) {
        self.commit_group_size.observe(results as f64);
        self.commit_group_seconds.observe(took.as_secs_f64());
    }

    /// The text exposition of every metric, with the gauges read from `ctx` now.
    pub fn render(&self, ctx: &Ctx) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let alive_within = Duration::from_millis(3 * u64::from(ctx.config.heartbeat_interval_ms.max(1)));
        let snapshot = ctx.raft.read_local(|s| Snapshot::of(s, |agent| ctx.liveness.silent_for(agent) < alive_within));
        set_all(&self.cells, snapshot.cells.iter().map(|(state, n)| (vec![("state", (*state).to_string())], *n)));
        set_all(&self.sweeps, snapshot.sweeps.iter().map(|(state, n)| (vec![("state", (*state).to_string())], *n)));
        set_all(
            &self.agents,
            snapshot.agents.iter().map(|((class, alive), n)| {
                let liveness = if *alive { "alive" } else { "silent" };
                (vec![("hardware_class", class.clone()), ("liveness", liveness.to_string())], *n)
            }),
        );
        self.warehouse_files.set(snapshot.files);
        self.warehouse_bytes.set(snapshot.bytes);
        let raft = ctx.raft.status();
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.raft_term.set(clamp(raft.term));
        self.raft_commit_index.set(clamp(raft.commit_index));
        self.raft_applied_index.set(clamp(raft.applied_index));
        self.raft_is_leader.set(i64::from(raft.is_leader()));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Replaces a family's series with `values`: a label set that no longer occurs
/// disappears rather than keeping its last value.
fn set_all(family: &Family<Labels, Gauge>, values: impl Iterator<Item = (Labels, i64)>) {
    family.clear();
    for (labels, n) in values {
        family.get_or_create(&labels).set(n);
    }
}

/// What the gauges show, counted in one pass over the state.
#[derive(Debug, Default, PartialEq)]
struct Snapshot {
    cells: BTreeMap<&'static str, i64>,
    sweeps: BTreeMap<&'static str, i64>,
    agents: BTreeMap<(String, bool), i64>,
    files: i64,
    bytes: i64,
}

impl Snapshot {
    fn of(s: &State, alive: impl Fn(&str) -> bool) -> Snapshot {
        let mut snap = Snapshot::default();
        for state in ["pending", "leased", "done", "failed", "cancelled"] {
            snap.cells.insert(state, 0);
        }
        for sweep in s.sweeps() {
            let mut open = false;
            for record in sweep.cells.values() {
                let kind = record.state.kind();
                open |= !record.state.is_final();
                *snap.cells.entry(kind_name(kind)).or_default() += 1;
            }
            let state = match (sweep.cancelled_at_ms, open) {
                (Some(_), _) => "cancelled",
                (None, true) => "running",
                (None, false) => "finished",
            };
            *snap.sweeps.entry(state).or_default() += 1;
        }
        for agent in s.agents() {
            let is_alive = alive(agent.id.as_str());
            let classes: std::collections::BTreeSet<&str> = agent.devices.iter().map(|g| g.class.as_str()).collect();
            for class in classes {
                *snap.agents.entry((class.to_string(), is_alive)).or_default() += 1;
            }
        }
        for f in s.manifest() {
            snap.files += 1;
            snap.bytes = snap.bytes.saturating_add(i64::try_from(f.bytes).unwrap_or(i64::MAX));
        }
        snap
    }
}

fn kind_name(kind: CellStateKind) -> &'static str {
    match kind {
        CellStateKind::Pending => "pending",
        CellStateKind::Leased => "leased",
        CellStateKind::Done => "done",
        CellStateKind::Failed => "failed",
        CellStateKind::Cancelled => "cancelled",
    }
}
