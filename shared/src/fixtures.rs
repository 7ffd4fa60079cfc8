//! Result records for tests: one plausible `ok` record to start from, so tests across
//! crates change the fields they are about instead of spelling a whole record again.
//! Compiled only for tests and under the `fixtures` feature (which test and example
//! builds of other crates turn on); never used to make data stored outside a test.

use crate::catalog::{Family, Mode, Precision};
use crate::result::{Coordinates, Energy, Memory, Provenance, ResultRecord, Status, RESULT_SCHEMA_VERSION};

/// An `ok` record of bert-base-uncased, batch 1, seq 128, fp32 inference with candle on
/// `cpu/test`, attempt 1 of `cell_key` in `sweep_id`, with these samples (ns), started
/// 2025-03-05T19:57:13Z and lasting a second.
pub fn ok_record(sweep_id: &str, cell_key: &str, samples_ns: &[f64]) -> ResultRecord {
    ResultRecord {
        schema_version: RESULT_SCHEMA_VERSION,
        sweep_id: Some(sweep_id.to_string()),
        cell_key: cell_key.to_string(),
        attempt: 1,
        coordinates: Coordinates {
            model: "bert-base-uncased".into(),
            family: Family::Bert,
            hardware_class: "cpu/test".into(),
            batch: 1,
            seq_len: 128,
            precision: Precision::Fp32,
            mode: Mode::Inference,
            engine: "candle".into(),
        },
        status: Status::Ok,
        error: None,
        stderr_tail: None,
        latency_ns: crate::stats::summarize(samples_ns),
        samples_ns: samples_ns.to_vec(),
        warmup_iterations: 3,
        stop_reason: None,
        throughput_items_per_s: Some(10.0),
        generation: None,
        memory: Memory::default(),
        energy: Energy::default(),
        output_check: None,
        provenance: Provenance {
            agent_id: Some("agent-1".into()),
            agent_version: "0.1.0".into(),
            git_commit: "abc".into(),
            engine: "candle".into(),
            engine_version: "0.11".into(),
            hardware_class: "cpu/test".into(),
            fingerprint_hash: "f".into(),
            weights_source: "random-init:seed=0".into(),
            started_at_ms: 1_741_204_633_297,
            finished_at_ms: 1_741_204_634_297,
            device: Some("cpu".into()),
        },
        validation: None,
    }
}
