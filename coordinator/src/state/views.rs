//! Read-only views of the replicated [`State`] that RPCs answer with: a sweep's progress
//! counted per cell state and per hardware class, the sweep list, an agent's leases, the
//! leases the leader watches for expiry, and the hardware classes known for fan-out.
//!
//! Must never: change the state, or be used to decide something on a follower's possibly
//! stale copy (decisions read through the Raft handle, after the applied index caught up).

use std::collections::BTreeMap;

use shared::cell::CellKey;
use shared::result::Status;

use super::{AgentId, CellRecord, CellState, Lease, State, Sweep, SweepId};

/// Cells counted by state; `ok` and `unsupported` split the done ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: usize,
    pub leased: usize,
    pub ok: usize,
    pub unsupported: usize,
    pub failed: usize,
    pub cancelled: usize,
}

/// The names a cell's state is reported under (sweep status on the wire, the CLI, the
/// `cells` table), in display order: spelled here and nowhere else.
pub mod state_names {
    pub const PENDING: &str = "pending";
    pub const LEASED: &str = "leased";
    pub const OK: &str = "ok";
    pub const UNSUPPORTED: &str = "unsupported";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
    pub const ALL: [&str; 6] = [PENDING, LEASED, OK, UNSUPPORTED, FAILED, CANCELLED];
    /// The states a cell is not finished in.
    pub const UNFINISHED: [&str; 2] = [PENDING, LEASED];
}

impl Counts {
    /// Each count under its [`state_names`] name, in display order.
    pub fn by_name(&self) -> [(&'static str, usize); 6] {
        use state_names::*;
        [
            (PENDING, self.pending),
            (LEASED, self.leased),
            (OK, self.ok),
            (UNSUPPORTED, self.unsupported),
            (FAILED, self.failed),
            (CANCELLED, self.cancelled),
        ]
    }

    pub fn total(&self) -> usize {
        self.pending + self.leased + self.ok + self.unsupported + self.failed + self.cancelled
    }

    /// Cells that will not change any more.
    pub fn n_final(&self) -> usize {
        self.ok + self.unsupported + self.failed + self.cancelled
    }

    fn add(&mut self, state: &CellState) {
        match state {
            CellState::Pending => self.pending += 1,
            CellState::Leased { .. } => self.leased += 1,
            CellState::Done { status: Status::Ok, .. } => self.ok += 1,
            // Only `ok` and `unsupported` are ever done; anything else counts as failed.
            CellState::Done { status: Status::Unsupported, .. } => self.unsupported += 1,
            CellState::Done { .. } | CellState::Failed => self.failed += 1,
            CellState::Cancelled => self.cancelled += 1,
        }
    }
}

/// A sweep's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepStatus {
    pub id: SweepId,
    pub name: String,
    pub priority: i32,
    pub submitted_at_ms: i64,
    pub cancelled_at_ms: Option<i64>,
    pub counts: Counts,
    /// Per resolved hardware class; an unresolved cell counts under its selector, e.g.
    /// `cuda[min_memory_gib=24]`.
    pub by_class: BTreeMap<String, Counts>,
}

/// A lease the leader tracks for expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRef {
    pub agent_id: AgentId,
    pub sweep_id: SweepId,
    pub cell_key: CellKey,
    pub epoch: u64,
    pub lease_seconds: u32,
}

impl State {
    pub fn sweep_status(&self, id: &SweepId) -> Option<SweepStatus> {
        self.sweeps.get(id).map(status_of)
    }

    /// Every sweep, oldest first (UUIDv7 ids sort by creation time).
    pub fn list_sweeps(&self) -> Vec<SweepStatus> {
        self.sweeps.values().map(status_of).collect()
    }

    /// The leases an agent holds now, as it needs them to run (or stop) the cells.
    pub fn leases_of(&self, agent_id: &str) -> Vec<Lease> {
        let Some(agent) = self.agents.get(agent_id) else { return Vec::new() };
        agent.leases.iter().filter_map(|(sweep_id, key)| self.lease(sweep_id, key)).collect()
    }

    /// The current lease of one cell, if it is leased.
    pub fn lease(&self, sweep_id: &SweepId, key: &CellKey) -> Option<Lease> {
        let record = self.sweeps.get(sweep_id)?.cells.get(key)?;
        let CellState::Leased { attempt, epoch, lease_seconds, device_class, .. } = &record.state else {
            return None;
        };
        Some(Lease {
            sweep_id: *sweep_id,
            cell_key: key.clone(),
            cell: record.cell.clone(),
            attempt: *attempt,
            epoch: *epoch,
            lease_seconds: *lease_seconds,
            device_class: device_class.clone(),
        })
    }

    /// Every lease held now, by agent: what the leader checks against heartbeats.
    pub fn active_leases(&self) -> Vec<LeaseRef> {
        let mut leases = Vec::new();
        for agent in self.agents.values() {
            for (sweep_id, key) in &agent.leases {
                if let Some(lease) = self.lease(sweep_id, key) {
                    leases.push(LeaseRef {
                        agent_id: agent.id.clone(),
                        sweep_id: *sweep_id,
                        cell_key: key.clone(),
                        epoch: lease.epoch,
                        lease_seconds: lease.lease_seconds,
                    });
                }
            }
        }
        leases
    }

    /// Every registered agent with its device classes: what `fan_out` resolves against at
    /// submit time.
    pub fn agent_classes(&self) -> Vec<shared::cell::AgentClasses> {
        let classes = |a: &super::Agent| a.devices.iter().map(|d| d.class.clone()).collect();
        self.agents
            .values()
            .map(|a| shared::cell::AgentClasses { agent_id: a.id.to_string(), classes: classes(a) })
            .collect()
    }

    /// One cell's record: its state, attempts, and the reason each attempt failed.
    pub fn cell(&self, sweep_id: &SweepId, key: &CellKey) -> Option<&CellRecord> {
        self.sweeps.get(sweep_id)?.cells.get(key)
    }
}

fn status_of(sweep: &Sweep) -> SweepStatus {
    let mut counts = Counts::default();
    let mut by_class: BTreeMap<String, Counts> = BTreeMap::new();
    for record in sweep.cells.values() {
        counts.add(&record.state);
        let class = record.cell.hardware_class.clone().unwrap_or_else(|| record.cell.hardware.to_string());
        by_class.entry(class).or_default().add(&record.state);
    }
    SweepStatus {
        id: sweep.id,
        name: sweep.name.clone(),
        priority: sweep.spec.policy.priority,
        submitted_at_ms: sweep.submitted_at_ms,
        cancelled_at_ms: sweep.cancelled_at_ms,
        counts,
        by_class,
    }
}
