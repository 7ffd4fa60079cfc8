//! Unit tests of the warehouse schema: every table's columns, and records as rows.

use super::*;
use crate::warehouse::testutil::record;

#[test]
fn a_result_becomes_one_row_with_its_statistics() {
    let r = record("s1", "k1", 1, &[3.0, 1.0, 2.0]);
    let batch = results_batch(&[&r], Origin::Measured).expect("batch");
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(batch.schema(), results_schema());
    let col = |name: &str| batch.column_by_name(name).expect(name).clone();
    let p50 = col("latency_p50_ns");
    let p50 = p50.as_any().downcast_ref::<Float64Array>().expect("f64");
    assert_eq!(p50.value(0), 2.0);
    let origin = col("origin");
    assert_eq!(origin.as_any().downcast_ref::<StringArray>().expect("utf8").value(0), "measured");
    let n = col("n_samples");
    assert_eq!(n.as_any().downcast_ref::<UInt64Array>().expect("u64").value(0), 3);
}

#[test]
fn a_validation_fills_its_six_columns_and_none_leaves_them_null() {
    use shared::result::{Validation, ValidationStatus};
    let mut checked = record("s1", "k1", 1, &[1.0]);
    checked.validation = Some(Validation {
        status: ValidationStatus::Failed,
        reference: "candle fp32 cpu".into(),
        max_abs_error: Some(0.5),
        max_rel_error: Some(0.25),
        cosine: Some(0.9),
        reason: Some("value 3 of the output is NaN".into()),
    });
    let plain = record("s1", "k2", 1, &[1.0]);
    let batch = results_batch(&[&checked, &plain], Origin::Measured).expect("batch");
    let text = |name: &str| {
        let col = batch.column_by_name(name).expect(name).clone();
        let col = col.as_any().downcast_ref::<StringArray>().expect("utf8").clone();
        (col.value(0).to_string(), col.is_null(1))
    };
    let number = |name: &str| {
        let col = batch.column_by_name(name).expect(name).clone();
        let col = col.as_any().downcast_ref::<Float64Array>().expect("f64").clone();
        (col.value(0), col.is_null(1))
    };
    assert_eq!(text("validation"), ("failed".into(), true));
    assert_eq!(text("validation_reference"), ("candle fp32 cpu".into(), true));
    assert_eq!(text("validation_reason"), ("value 3 of the output is NaN".into(), true));
    assert_eq!(number("validation_max_abs_error"), (0.5, true));
    assert_eq!(number("validation_max_rel_error"), (0.25, true));
    assert_eq!(number("validation_cosine"), (0.9, true));
}

#[test]
fn samples_are_one_row_per_iteration_in_measured_order() {
    let a = record("s1", "k1", 1, &[3.0, 1.0]);
    let b = record("s1", "k2", 2, &[5.0]);
    let batch = samples_batch(&[&a, &b]).expect("batch");
    assert_eq!(batch.num_rows(), 3);
    let latency = batch.column_by_name("latency_ns").expect("latency");
    let latency = latency.as_any().downcast_ref::<Float64Array>().expect("f64");
    assert_eq!(latency.values().to_vec(), vec![3.0, 1.0, 5.0]);
    let iteration = batch.column_by_name("iteration").expect("iteration");
    let iteration = iteration.as_any().downcast_ref::<UInt32Array>().expect("u32");
    assert_eq!(iteration.values().to_vec(), vec![0, 1, 0]);
    let cell = arrow::compute::cast(batch.column_by_name("cell_key").expect("cell"), &DataType::Utf8).expect("cast");
    let cell = cell.as_any().downcast_ref::<StringArray>().expect("utf8");
    assert_eq!(cell.iter().flatten().collect::<Vec<_>>(), vec!["k1", "k1", "k2"]);
}

#[test]
fn a_missing_sweep_is_null_in_samples() {
    let mut a = record("s1", "k1", 1, &[3.0]);
    a.sweep_id = None;
    let batch = samples_batch(&[&a]).expect("batch");
    assert_eq!(batch.column_by_name("sweep_id").expect("sweep").null_count(), 1);
}

#[test]
fn result_ids_differ_by_attempt_and_are_stable() {
    let key = |attempt| ResultKey { sweep_id: Some("s".into()), cell_key: "k".into(), attempt };
    assert_eq!(key(1).result_id(), key(1).result_id());
    assert_ne!(key(1).result_id(), key(2).result_id());
    assert_eq!(key(1).result_id().len(), 32);
}

#[test]
fn every_table_has_a_schema_version_column() {
    for table in Table::ALL {
        assert_eq!(table.schema().field(0).name(), "schema_version", "{}", table.as_str());
    }
}

#[test]
fn the_small_tables_convert() {
    let agents = agents_batch(&[AgentRow {
        agent_id: "a".into(),
        hostname: None,
        hardware_class: "cpu/x".into(),
        fingerprint_hash: "f".into(),
        fingerprint_json: "{}".into(),
        agent_version: "0.1.0".into(),
        registered_at_ms: 1,
        last_seen_at_ms: 2,
    }])
    .expect("agents");
    assert_eq!(agents.num_rows(), 1);
    let sweeps = sweeps_batch(&[]).expect("sweeps");
    assert_eq!(sweeps.num_rows(), 0);
    let cells = cells_batch(&[]).expect("cells");
    assert_eq!(cells.num_columns(), cells_schema().fields().len());
}
