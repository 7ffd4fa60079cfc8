//! The coordinator's replicated state machine: sweeps, their cells and leases, the agent
//! registry and the warehouse manifest, changed only by [`apply`]ing a [`Command`].
//!
//! Layout:
//! - [`command`]: the commands (the payload of every Raft entry) and their JSON encoding.
//! - [`apply`](mod@apply): the one function that changes a [`State`], and what it says
//!   happened ([`Outcome`]).
//! - [`views`]: read-only views used by RPCs (status counts, lists, an agent's leases);
//!   named apart from `crate::query`, which is SQL over the warehouse.
//!
//! Architecture invariant: this module is pure and deterministic. It never reads the clock,
//! does I/O, draws random numbers or iterates a hash map: times and ids come inside the
//! command, so every replica applying the same log reaches the same state. It knows nothing
//! of Raft; the Raft layer only stores and replays commands.

pub mod apply;
pub mod command;
pub mod views;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use shared::cell::{Cell, CellKey};
use shared::result::Status;
use shared::spec::SweepSpec;

/// Raft's manifest holds the warehouse's own file entries: one type on the commit path.
pub use crate::warehouse::file::FileEntry;
pub use apply::{apply, check_completion, Outcome, Rejection};
pub use command::Command;
// Device groups are agents' hardware as the scheduler sees it; the rule is shared's.
pub use shared::device_group::{device_groups, DeviceGroup};

pub use shared::ids::{AgentId, SweepId};

/// The whole replicated state. Serialisable: a Raft snapshot is this, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    sweeps: BTreeMap<SweepId, Sweep>,
    agents: BTreeMap<AgentId, Agent>,
    /// The last fencing epoch handed out; every lease gets the next one, so epochs never
    /// repeat, even across sweeps and cells.
    last_epoch: u64,
    manifest: BTreeMap<String, FileEntry>,
    /// The client URL of each coordinator node added at run time (`cluster add-node`),
    /// by Raft id, from the membership change that added it: replicated, so that every
    /// node, and a node restored from a snapshot, can reach it. Nodes bootstrapped
    /// together are found through `--peers` instead.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    node_urls: BTreeMap<u64, String>,
}

/// One submitted sweep and its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredSweep")]
pub struct Sweep {
    pub id: SweepId,
    pub name: String,
    pub spec: SweepSpec,
    pub submitted_at_ms: i64,
    pub cancelled_at_ms: Option<i64>,
    pub cells: BTreeMap<CellKey, CellRecord>,
    /// The pending cells, derived from `cells` (never stored; rebuilt on decode).
    #[serde(skip_serializing)]
    pub pending: PendingIndex,
    /// The submit's trace, which every cell's run joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<command::TraceContext>,
    /// Who submitted it, when the submitter was authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
}

/// The stored form of a [`Sweep`]: everything but what is derived.
#[derive(Deserialize)]
struct StoredSweep {
    id: SweepId,
    name: String,
    spec: SweepSpec,
    submitted_at_ms: i64,
    cancelled_at_ms: Option<i64>,
    cells: BTreeMap<CellKey, CellRecord>,
    #[serde(default)]
    trace: Option<command::TraceContext>,
    #[serde(default)]
    submitted_by: Option<String>,
}

impl From<StoredSweep> for Sweep {
    fn from(s: StoredSweep) -> Sweep {
        let mut pending = PendingIndex::default();
        for (key, record) in &s.cells {
            pending.sync(key, record);
        }
        Sweep {
            id: s.id,
            name: s.name,
            spec: s.spec,
            submitted_at_ms: s.submitted_at_ms,
            cancelled_at_ms: s.cancelled_at_ms,
            cells: s.cells,
            pending,
            trace: s.trace,
            submitted_by: s.submitted_by,
        }
    }
}

/// A sweep's pending cells grouped by hardware need (the cell's selector and resolved
/// class): every cell of a group fits the same device groups, so the scheduler tests one
/// cell per group and takes the first few keys, instead of scanning every cell of every
/// sweep on every lease. Kept in step by [`apply`] through [`PendingIndex::sync`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingIndex {
    by_need: BTreeMap<String, BTreeSet<CellKey>>,
}

impl PendingIndex {
    /// Records `key` as pending or not, from its record's state: call after every change
    /// of a cell's state.
    pub fn sync(&mut self, key: &CellKey, record: &CellRecord) {
        let need = hardware_need(&record.cell);
        if record.state == CellState::Pending {
            self.by_need.entry(need).or_default().insert(key.clone());
        } else if let Some(keys) = self.by_need.get_mut(&need) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_need.remove(&need);
            }
        }
    }

    /// The groups of pending cells: each group's keys, ascending.
    pub fn groups(&self) -> impl Iterator<Item = &BTreeSet<CellKey>> {
        self.by_need.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_need.is_empty()
    }
}

/// What decides which agents and devices can run a cell, as a map key.
fn hardware_need(cell: &Cell) -> String {
    let selector = serde_json::to_string(&cell.hardware).unwrap_or_default();
    let (class, agent) = (cell.hardware_class.as_deref().unwrap_or(""), cell.agent_id.as_deref().unwrap_or(""));
    format!("{class}|{agent}|{selector}")
}

/// One cell of a sweep and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    pub cell: Cell,
    pub state: CellState,
    /// Attempts started (leases granted); never more than the sweep's `max_attempts`.
    pub attempts: u32,
    /// Why each attempt that did not end `ok` ended, in order.
    pub reasons: Vec<String>,
    /// A pending retry waits until then (exponential backoff); `None` for a first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<i64>,
    /// Attempts whose result was committed, with what was committed: the dedup set of
    /// (sweep, cell key, attempt).
    pub results: BTreeMap<u32, CommittedResult>,
}

/// Where a cell is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CellState {
    /// Waiting for an agent.
    Pending,
    /// Claimed by one agent, for attempt `attempt`, fenced by `epoch`. The lease ends
    /// when its agent has been silent for `lease_seconds` (the leader's expiry loop:
    /// heartbeats, not wall-clock deadlines, so a lease never dies under a live agent).
    Leased {
        agent_id: AgentId,
        attempt: u32,
        epoch: u64,
        #[serde(default = "default_lease_seconds")]
        lease_seconds: u32,
        device_class: String,
    },
    /// Final: `ok` or `unsupported`.
    Done { status: Status, attempt: u32 },
    /// Final: every attempt failed; the reasons are in [`CellRecord::reasons`].
    Failed,
    /// Final: its sweep was cancelled before the cell finished.
    Cancelled,
}

impl CellState {
    pub fn kind(&self) -> CellStateKind {
        match self {
            CellState::Pending => CellStateKind::Pending,
            CellState::Leased { .. } => CellStateKind::Leased,
            CellState::Done { .. } => CellStateKind::Done,
            CellState::Failed => CellStateKind::Failed,
            CellState::Cancelled => CellStateKind::Cancelled,
        }
    }

    /// Whether nothing more will happen to the cell.
    pub fn is_final(&self) -> bool {
        matches!(self, CellState::Done { .. } | CellState::Failed | CellState::Cancelled)
    }
}

/// [`CellState`] without its data, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStateKind {
    Pending,
    Leased,
    Done,
    Failed,
    Cancelled,
}

/// What the state keeps of a committed result: enough to answer a re-send and to count;
/// the numbers themselves live in the warehouse files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommittedResult {
    pub agent_id: AgentId,
    pub epoch: u64,
    pub status: Status,
    pub committed_at_ms: i64,
}

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub devices: Vec<DeviceGroup>,
    pub labels: BTreeMap<String, String>,
    pub registered_at_ms: i64,
    /// The cells it holds now. Derived from the cells' states and kept in step by
    /// [`apply`]; it makes "what does this agent hold" cheap.
    pub leases: BTreeSet<(SweepId, CellKey)>,
}

impl Agent {
    /// Whether `group`, one of this agent's device groups, can run `cell`: the cell is
    /// not pinned to another agent, and the group's hardware fits it.
    pub fn can_run(&self, group: &DeviceGroup, cell: &Cell) -> bool {
        cell.agent_id.as_deref().is_none_or(|pinned| pinned == self.id.as_str()) && group.can_run(cell)
    }
}

/// One committed warehouse file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the warehouse root.
    pub path: String,
    /// The table it belongs to: `results`, `samples`, …
    pub table: String,
    pub n_rows: u64,
}

/// The lease length of leases granted before it was recorded in the state (the
/// scheduler's own fallback).
fn default_lease_seconds() -> u32 {
    120
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub sweep_id: SweepId,
    pub cell_key: CellKey,
    pub cell: Cell,
    pub attempt: u32,
    pub epoch: u64,
    /// How long its agent may be silent before the lease ends.
    pub lease_seconds: u32,
    /// The device group the lease occupies on its agent.
    pub device_class: String,
}

impl State {
    pub fn sweep(&self, id: &SweepId) -> Option<&Sweep> {
        self.sweeps.get(id)
    }

    pub fn sweeps(&self) -> impl Iterator<Item = &Sweep> {
        self.sweeps.values()
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }

    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    pub fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    pub fn manifest(&self) -> impl Iterator<Item = &FileEntry> {
        self.manifest.values()
    }

    /// The URLs of nodes added at run time, by Raft id.
    pub fn node_urls(&self) -> &BTreeMap<u64, String> {
        &self.node_urls
    }

    /// Records node `id`'s URL (a membership change added it), or forgets it (removed).
    /// Only applying a committed membership change calls this.
    pub(crate) fn set_node_url(&mut self, id: u64, url: Option<String>) {
        match url {
            Some(url) => self.node_urls.insert(id, url),
            None => self.node_urls.remove(&id),
        };
    }
}
