//! The commands that change the replicated state: one per Raft entry, encoded as JSON.
//!
//! A command carries every input its application needs (ids, times, the expanded cells),
//! decided by the node that proposed it, so that applying it is deterministic.
//!
//! This is a stored format (the Raft log and snapshots outlive a binary): add variants and
//! optional fields, never change the meaning of an existing one. Must never: read the
//! clock or decide anything here; decoding refuses what it does not understand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::cell::{Cell, CellKey};
use shared::result::Status;
use shared::spec::SweepSpec;

use super::{AgentId, DeviceGroup, FileEntry, SweepId};

/// Everything that can change the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Store a validated sweep and its expanded cells (keys computed by the caller and
    /// re-checked by apply).
    SubmitSweep {
        sweep_id: SweepId,
        submitted_at_ms: i64,
        spec: SweepSpec,
        cells: Vec<(CellKey, Cell)>,
        /// The submit's trace, handed to the agent with every lease of the sweep.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace: Option<TraceContext>,
        /// Who submitted (the authenticated principal's name; none under `--insecure`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        submitted_by: Option<String>,
    },
    /// Stop a sweep: every cell not yet final becomes cancelled.
    CancelSweep { sweep_id: SweepId, at_ms: i64 },
    /// Add an agent, or replace the hardware and labels of a known one (its leases stay).
    RegisterAgent { agent_id: AgentId, devices: Vec<DeviceGroup>, labels: BTreeMap<String, String>, at_ms: i64 },
    /// Lease cells the leader's scheduler chose for one agent, in the scheduler's order;
    /// each lease ends when the agent is silent for `lease_seconds` (its sweep's policy).
    GrantLeases { agent_id: AgentId, leases: Vec<(SweepId, CellKey)>, at_ms: i64, lease_seconds: u32 },
    /// The result of one attempt, with the warehouse files that hold it; files commit only
    /// if the result does.
    CompleteCell(Completion),
    /// Leases the leader found expired (from heartbeats it keeps in soft state).
    ExpireLeases { expired: Vec<(SweepId, CellKey, u64)>, at_ms: i64 },
    /// The agent says it holds only `keep` (cell and epoch): every other lease on record
    /// for it is ended now, as a failed attempt with `reason`. Proposed when an agent
    /// registers (a restarted process holds nothing but its spool) and when it asks for
    /// work (a lost reply, or a lease taken in its name, is never heard of otherwise).
    ReleaseLeases { agent_id: AgentId, keep: Vec<(SweepId, CellKey, u64)>, reason: String, at_ms: i64 },
    /// Forget an agent (an operator's `accelbench agents remove`): its leases end as
    /// failed attempts, like a restart without them, and its hardware classes stop
    /// counting for fan-out unless another agent has them.
    RemoveAgent { agent_id: AgentId, at_ms: i64 },
    /// Warehouse files not tied to one result (agents table, compaction output, …).
    CommitFiles { files: Vec<FileEntry>, at_ms: i64 },
    /// The results of several attempts whose rows share `files` (one Parquet file per
    /// group commit): all of them commit, or none does and nothing changes.
    CompleteCells { completions: Vec<Completion>, files: Vec<FileEntry> },
    /// Several commands applied in order as one entry: a leader that batches proposals
    /// pays one entry, one encoding and one fsync for all of them. Batches do not nest.
    Batch { commands: Vec<Command> },
}

/// One attempt's result, as the agent reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    pub sweep_id: SweepId,
    pub cell_key: CellKey,
    pub agent_id: AgentId,
    pub attempt: u32,
    /// The lease's fencing epoch: a result under any other epoch is refused.
    pub epoch: u64,
    pub status: Status,
    /// Why the attempt did not end `ok`; required for every other status.
    pub error: Option<String>,
    pub files: Vec<FileEntry>,
    pub at_ms: i64,
}

/// A W3C trace context (`traceparent`, `tracestate`): opaque text here, validated and
/// re-serialised by the RPC layer before it is proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceContext {
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tracestate: String,
}

/// A Raft entry whose payload is not a command this binary knows.
#[derive(Debug, thiserror::Error)]
#[error("undecodable command payload of {n_bytes} bytes: {source}")]
pub struct DecodeError {
    pub n_bytes: usize,
    #[source]
    pub source: serde_json::Error,
}

impl Command {
    /// The bytes stored in a Raft entry.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        serde_json::from_slice(bytes).map_err(|source| DecodeError { n_bytes: bytes.len(), source })
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::SubmitSweep { .. } => "submit_sweep",
            Command::CancelSweep { .. } => "cancel_sweep",
            Command::RegisterAgent { .. } => "register_agent",
            Command::GrantLeases { .. } => "grant_leases",
            Command::CompleteCell(_) => "complete_cell",
            Command::ExpireLeases { .. } => "expire_leases",
            Command::ReleaseLeases { .. } => "release_leases",
            Command::RemoveAgent { .. } => "remove_agent",
            Command::CommitFiles { .. } => "commit_files",
            Command::CompleteCells { .. } => "complete_cells",
            Command::Batch { .. } => "batch",
        }
    }
}
