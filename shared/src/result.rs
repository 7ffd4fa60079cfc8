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

// Most raw samples one record may carry: the measure policy's bound, defined with it.
pub use crate::spec::MAX_SAMPLES;

/// Longest free text (error, stderr tail, names, versions) a record may carry, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Largest result JSON a receiver takes in one message. A record within
/// [`MAX_SAMPLES`] and [`MAX_TEXT_BYTES`] stays well under it; a sender checks the
/// encoded size before sending and reports a larger one as a failed attempt instead.
pub const MAX_RESULT_JSON_BYTES: usize = 24 << 20;

/// The earliest and latest times a record may carry (2000-01-01 and 2200-01-01 UTC):
/// every date in between is representable by every reader (DuckDB, Arrow, pandas).
pub const MIN_TIME_MS: i64 = 946_684_800_000;
pub const MAX_TIME_MS: i64 = 7_258_118_400_000;

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

/// The engine's outputs on a fixed seeded input against a reference engine's on the same
/// weights (docs/RUNNERS.md, "Outputs checked"): a failed validation is kept and shown,
/// never dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub status: ValidationStatus,
    /// What the outputs were compared with, e.g. `candle fp32 cpu`.
    pub reference: String,
    /// Largest |engine − reference| over every value.
    #[serde(default)]
    pub max_abs_error: Option<f64>,
    /// `max_abs_error` over the reference's largest |value|.
    #[serde(default)]
    pub max_rel_error: Option<f64>,
    /// Cosine similarity of the two outputs, flattened.
    #[serde(default)]
    pub cosine: Option<f64>,
    /// Why it failed or was skipped.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    Passed,
    Failed,
    Skipped,
}

impl ValidationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationStatus::Passed => "passed",
            ValidationStatus::Failed => "failed",
            ValidationStatus::Skipped => "skipped",
        }
    }
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
    /// The device that executed the cell, as its engine opened it: `cpu`, `cuda:3`, …;
    /// `None` where nothing ran (a cell refused before any work, an import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
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
    /// [`MAX_SAMPLES`] samples were taken: more would not fit one record.
    MaxSamples,
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
    /// The outputs against a reference engine, for cells of an external engine; `None`
    /// where no validation pass ran (the built-in engine is the reference itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
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
        if self.samples_ns.len() > MAX_SAMPLES {
            return bad("samples_ns", format!("{} samples, at most {MAX_SAMPLES}", self.samples_ns.len()));
        }
        if let Some(v) = &self.validation {
            let metrics =
                [("max_abs_error", v.max_abs_error), ("max_rel_error", v.max_rel_error), ("cosine", v.cosine)];
            if let Some((name, Some(x))) = metrics.iter().find(|(_, x)| x.is_some_and(|x| !x.is_finite())) {
                return bad("validation", format!("{name} is {x}, expected a finite value"));
            }
        }
        self.check_texts()?;
        self.check_times()
    }

    /// Every free-text field within [`MAX_TEXT_BYTES`].
    fn check_texts(&self) -> Result<(), InvalidRecord> {
        let p = &self.provenance;
        let v = self.validation.as_ref();
        let texts: [(&'static str, Option<&str>); 15] = [
            ("sweep_id", self.sweep_id.as_deref()),
            ("cell_key", Some(&self.cell_key)),
            ("error", self.error.as_deref()),
            ("stderr_tail", self.stderr_tail.as_deref()),
            ("coordinates.model", Some(&self.coordinates.model)),
            ("coordinates.hardware_class", Some(&self.coordinates.hardware_class)),
            ("coordinates.engine", Some(&self.coordinates.engine)),
            ("provenance.agent_id", p.agent_id.as_deref()),
            ("provenance.agent_version", Some(&p.agent_version)),
            ("provenance.engine_version", Some(&p.engine_version)),
            ("provenance.weights_source", Some(&p.weights_source)),
            ("provenance.hardware_class", Some(&p.hardware_class)),
            ("provenance.device", p.device.as_deref()),
            ("validation.reference", v.map(|v| v.reference.as_str())),
            ("validation.reason", v.and_then(|v| v.reason.as_deref())),
        ];
        match texts.iter().find(|(_, t)| t.is_some_and(|t| t.len() > MAX_TEXT_BYTES)) {
            Some((field, t)) => Err(InvalidRecord {
                field,
                problem: format!("{} bytes, at most {MAX_TEXT_BYTES}", t.map_or(0, str::len)),
            }),
            None => Ok(()),
        }
    }

    /// Start and end within [`MIN_TIME_MS`]..=[`MAX_TIME_MS`], the end not before the start.
    fn check_times(&self) -> Result<(), InvalidRecord> {
        let p = &self.provenance;
        for (field, ms) in
            [("provenance.started_at_ms", p.started_at_ms), ("provenance.finished_at_ms", p.finished_at_ms)]
        {
            if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
                return Err(InvalidRecord {
                    field,
                    problem: format!("{ms} ms, expected a time from {MIN_TIME_MS} (2000) to {MAX_TIME_MS} (2200)"),
                });
            }
        }
        if p.finished_at_ms < p.started_at_ms {
            return Err(InvalidRecord {
                field: "provenance.finished_at_ms",
                problem: format!("{} ms is before started_at_ms {} ms", p.finished_at_ms, p.started_at_ms),
            });
        }
        Ok(())
    }

    /// What a live receiver adds to [`ResultRecord::validate`]: the record was made
    /// recently by its clock. `max_age_ms` allows for a spool re-sent after an outage,
    /// `max_ahead_ms` for clock skew between machines.
    pub fn check_recent(&self, now_ms: i64, max_age_ms: i64, max_ahead_ms: i64) -> Result<(), InvalidRecord> {
        let p = &self.provenance;
        let (earliest, latest) = (now_ms.saturating_sub(max_age_ms), now_ms.saturating_add(max_ahead_ms));
        for (field, ms) in
            [("provenance.started_at_ms", p.started_at_ms), ("provenance.finished_at_ms", p.finished_at_ms)]
        {
            if ms < earliest || ms > latest {
                return Err(InvalidRecord {
                    field,
                    problem: format!(
                        "{ms} ms is outside {earliest}..={latest} ms around the receiver's clock ({now_ms} ms)"
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_record() -> ResultRecord {
        let mut r = crate::fixtures::ok_record("s", "k", &[1_000.0, 1_100.0, 1_050.0]);
        r.stop_reason = Some(StopReason::CiTarget);
        r
    }

    fn problem(r: &ResultRecord) -> String {
        r.validate().expect_err("an invalid record").to_string()
    }

    #[test]
    fn the_fixture_is_valid() {
        ok_record().validate().expect("valid");
    }

    #[test]
    fn times_outside_2000_to_2200_or_reversed_are_refused() {
        let mut r = ok_record();
        r.provenance.finished_at_ms = 9_000_000_000_000_000_000;
        assert!(problem(&r).starts_with("provenance.finished_at_ms: 9000000000000000000 ms"), "{}", problem(&r));
        let mut r = ok_record();
        r.provenance.started_at_ms = i64::MIN;
        assert!(problem(&r).starts_with("provenance.started_at_ms"), "{}", problem(&r));
        let mut r = ok_record();
        r.provenance.finished_at_ms = r.provenance.started_at_ms - 1;
        assert!(problem(&r).contains("is before started_at_ms"), "{}", problem(&r));
        let mut r = ok_record();
        (r.provenance.started_at_ms, r.provenance.finished_at_ms) = (MIN_TIME_MS, MAX_TIME_MS);
        r.validate().expect("the bounds themselves are valid");
    }

    #[test]
    fn too_many_samples_and_too_long_texts_are_refused() {
        let mut r = ok_record();
        r.samples_ns = vec![1.0; MAX_SAMPLES + 1];
        assert_eq!(problem(&r), format!("samples_ns: {} samples, at most {MAX_SAMPLES}", MAX_SAMPLES + 1));
        let mut r = ok_record();
        r.provenance.engine_version = "x".repeat(MAX_TEXT_BYTES + 1);
        assert!(problem(&r).starts_with("provenance.engine_version: 65537 bytes"), "{}", problem(&r));
    }

    #[test]
    fn a_live_receiver_refuses_times_far_from_its_clock() {
        let r = ok_record();
        let now = r.provenance.finished_at_ms;
        r.check_recent(now, 1_000, 0).expect("started a second ago");
        let err = r.check_recent(now, 999, 0).expect_err("too old").to_string();
        assert!(err.starts_with("provenance.started_at_ms"), "{err}");
        let err = r.check_recent(now - 1_500, 10_000, 999).expect_err("from the future").to_string();
        assert!(err.starts_with("provenance.finished_at_ms"), "{err}");
    }
}
