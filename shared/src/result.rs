//! The result record: the measured outcome of one attempt of one cell.
//!
//! This is a declared stored and wire format (agent → coordinator → warehouse, and the
//! JSON lines of `accelbench-agent bench --json`), so it derives serde and carries a
//! `schema_version`. Every number in it was measured; anything not measured is `None`
//! (serialised as `null`), never a guess. Its [`ResultRecord::validate`] is what every
//! receiver runs before trusting a record from outside.

use serde::{Deserialize, Serialize};

use crate::catalog::{self, Family, Mode, Precision};
use crate::cell::Cell;
use crate::stats::Summary;

/// Bumped whenever a field changes meaning or a required field is added.
pub const RESULT_SCHEMA_VERSION: u32 = 1;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Measured; statistics are present.
    Ok,
    /// The combination cannot run here (decided before any work); final, not retried.
    Unsupported,
    /// The engine returned an error while running.
    Failed,
    /// The cell process died (signal or exit without a result).
    Crashed,
    /// The cell process was killed for memory.
    Oom,
    /// The cell process ran past its time limit and was killed.
    Timeout,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unsupported => "unsupported",
            Status::Failed => "failed",
            Status::Crashed => "crashed",
            Status::Oom => "oom",
            Status::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a cell sits in its matrix, flattened for storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    pub model: String,
    pub family: Family,
    pub hardware_class: String,
    pub batch: u32,
    pub seq_len: u32,
    pub precision: Precision,
    pub mode: Mode,
    pub engine: String,
}

impl Coordinates {
    /// The coordinates of `cell` run on `hardware_class`; `None` if its model is not in
    /// the catalog.
    pub fn of(cell: &Cell, hardware_class: &str) -> Option<Coordinates> {
        let model = catalog::lookup(&cell.model)?;
        Some(Coordinates {
            model: model.name.to_string(),
            family: model.family,
            hardware_class: hardware_class.to_string(),
            batch: cell.batch,
            seq_len: cell.seq_len,
            precision: cell.precision,
            mode: cell.mode,
            engine: cell.engine.as_str().to_string(),
        })
    }
}

/// Extra timings of generative families (decoders, encoder-decoders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Prompt tokens per item processed by the prefill.
    pub prompt_tokens: u32,
    /// Tokens generated per item after the first.
    pub decode_steps: u32,
    /// Time to first token (prefill + first token), nanoseconds, over iterations.
    pub time_to_first_token_ns: Summary,
    /// Latency of one decode step, nanoseconds, over all steps of all iterations.
    pub inter_token_ns: Summary,
    /// Generated tokens per second over the decode phase, all items of the batch.
    pub decode_tokens_per_s: f64,
}

/// Peak memory of the cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Peak resident set of the cell process (getrusage of the child).
    pub peak_host_bytes: Option<u64>,
    /// Peak device memory, where a device backend reports it.
    pub peak_device_bytes: Option<u64>,
    /// What `peak_device_bytes` came from, e.g. `nvml-process`.
    pub device_source: Option<String>,
}

/// Energy over the timed iterations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    /// Joules per iteration.
    pub joules_per_iteration: Option<f64>,
    /// Mean power over the timed loop, watts.
    pub mean_power_watts: Option<f64>,
    /// `nvml-energy-counter`, `nvml-power-sampled`, `rapl` (package domains).
    pub source: Option<String>,
}

/// A small fingerprint of the outputs, so a broken backend (NaN in fp16, say) shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputCheck {
    pub all_finite: bool,
    pub n_values: u64,
    /// Mean and L2 norm over the finite values, as f64.
    pub mean: f64,
    pub l2_norm: f64,
}

/// Who measured what, with which code and weights, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub agent_id: Option<String>,
    pub agent_version: String,
    pub git_commit: String,
    pub engine: String,
    pub engine_version: String,
    pub hardware_class: String,
    pub fingerprint_hash: String,
    /// `random-init:seed=<n>`, `file:sha256=<hex>` or `imported:legacy-json:<sha256>`.
    pub weights_source: String,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
}

/// Why the measurement loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Minimums met and the CI of the median was within the target.
    CiTarget,
    /// Minimums met but the CI target was not reached before `max_seconds`.
    MaxSeconds,
    /// `max_seconds` ran out before the minimums were met.
    MaxSecondsBeforeMinimums,
}

/// The measured outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub schema_version: u32,
    /// Sweep this belongs to; a local run (`bench`, `quickstart`) is a one-off sweep with
    /// a fresh UUIDv7. `None` only for rows that never had one (some imports).
    pub sweep_id: Option<String>,
    pub cell_key: String,
    pub attempt: u32,
    pub coordinates: Coordinates,
    pub status: Status,
    pub error: Option<String>,
    /// Last lines of the cell process's stderr when it did not end `ok`.
    pub stderr_tail: Option<String>,
    /// Per-iteration latency summary, nanoseconds.
    pub latency_ns: Option<Summary>,
    /// Raw per-iteration latencies, nanoseconds, in the order measured.
    pub samples_ns: Vec<f64>,
    pub warmup_iterations: u32,
    pub stop_reason: Option<StopReason>,
    /// Items (samples, images, sequences) per second at the median latency.
    pub throughput_items_per_s: Option<f64>,
    pub generation: Option<Generation>,
    pub memory: Memory,
    pub energy: Energy,
    pub output_check: Option<OutputCheck>,
    pub provenance: Provenance,
}

/// A record that must not be trusted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidRecord {
    pub field: &'static str,
    pub problem: String,
}

impl ResultRecord {
    /// Checks what a receiver must never store: negative or non-finite latencies,
    /// an `ok` without samples, a wrong schema version, empty keys.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        let bad = |field: &'static str, problem: String| Err(InvalidRecord { field, problem });
        if self.schema_version != RESULT_SCHEMA_VERSION {
            return bad("schema_version", format!("got {}, expected {RESULT_SCHEMA_VERSION}", self.schema_version));
        }
        if self.cell_key.is_empty() {
            return bad("cell_key", "empty".into());
        }
        if self.coordinates.batch == 0 {
            return bad("coordinates.batch", "got 0, expected >= 1".into());
        }
        if let Some((i, v)) = self.samples_ns.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
            return bad("samples_ns", format!("sample {i} is {v}, expected a finite value >= 0"));
        }
        if self.status == Status::Ok && (self.samples_ns.is_empty() || self.latency_ns.is_none()) {
            return bad("samples_ns", "status ok without samples".into());
        }
        if self.status != Status::Ok && self.error.as_deref().unwrap_or("").is_empty() {
            return bad("error", format!("status {} without a reason", self.status));
        }
        if let Some(t) = self.throughput_items_per_s {
            if !t.is_finite() || t < 0.0 {
                return bad("throughput_items_per_s", format!("got {t}"));
            }
        }
        Ok(())
    }
}
