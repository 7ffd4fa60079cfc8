//! Running one cell in its own child process.
//!
//! A benchmark that panics, segfaults, runs out of memory or hangs must not take the
//! agent down, for the same reason rust-analyzer runs proc macros out of process. The
//! parent ([`runner`]) starts `accelbench-agent exec-cell`, writes one [`CellRequest`]
//! as JSON to its stdin, and reads [`CellEvent`] JSON lines from its stdout: progress,
//! then exactly one result. The child ([`child`]) builds the workload, measures it and
//! answers. stdout belongs to this protocol; everything else goes to stderr, whose tail
//! is kept when a cell does not end `ok`.

pub mod child;
pub mod runner;
pub mod validate;

use serde::{Deserialize, Serialize};
use shared::result::{Coordinates, ResultRecord};
use shared::spec::MeasurePolicy;

use crate::engine::weights::Weights;

/// What the parent asks of the child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellRequest {
    pub sweep_id: Option<String>,
    pub cell_key: String,
    pub attempt: u32,
    pub agent_id: Option<String>,
    pub coordinates: Coordinates,
    pub measure: MeasurePolicy,
    pub weights: Weights,
    /// `cpu`, or `cuda:<ordinal>`.
    pub device: String,
    pub fingerprint_hash: String,
    /// The command of the runner of the cell's engine (docs/RUNNERS.md), for any engine
    /// but the built-in one; `None`: this agent has no runner for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<Vec<String>>,
}

/// One line of the child's stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CellEvent {
    /// Building the model (weights, inputs).
    Loading,
    /// Warm-up iterations are running.
    Warmup,
    /// Timed iterations so far and the newest sample.
    Progress { n: u32, last_ns: f64, elapsed_s: f64, max_seconds: f64 },
    /// The answer; always the last line.
    Result { record: Box<ResultRecord> },
}
