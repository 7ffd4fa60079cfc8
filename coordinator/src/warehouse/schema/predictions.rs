//! The `predictions` table: what `accelbench predict` answered, one row per predicted
//! cell. Derived, never measured: it lives apart from `results` so that no query over
//! measurements can pick a prediction up by accident.

use std::sync::Arc;

use arrow::array::{RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Schema, SchemaRef};

use super::{
    batch, field, opt_f64, opt_strings, strings, timestamps, u32s, utc_millis, Table, WAREHOUSE_SCHEMA_VERSION,
};
use crate::warehouse::WarehouseError;

/// A predicted value with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predicted {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// One predicted cell.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    pub predicted_at_ms: i64,
    pub model: String,
    pub family: String,
    pub hardware_class: String,
    pub batch: u32,
    pub seq_len: u32,
    pub precision: String,
    pub mode: String,
    pub engine: String,
    /// Median latency of one iteration, ms.
    pub latency_ms: Predicted,
    pub latency_basis: String,
    pub latency_support: u32,
    /// Peak memory, bytes; `None` when the warehouse has too few memory measurements.
    pub peak_memory_bytes: Option<Predicted>,
    pub memory_basis: Option<String>,
    /// The interval's intended coverage, e.g. 0.8.
    pub coverage: f64,
    /// Measured rows the latency model was fitted on.
    pub training_rows: u64,
    pub method: String,
    pub accelbench_version: String,
}

pub fn predictions_schema() -> SchemaRef {
    use DataType::{Float64, UInt32, UInt64, Utf8};
    Arc::new(Schema::new(vec![
        field("schema_version", UInt32, false),
        field("predicted_at", utc_millis(), false),
        field("model", Utf8, false),
        field("family", Utf8, false),
        field("hardware_class", Utf8, false),
        field("batch", UInt32, false),
        field("seq_len", UInt32, false),
        field("precision", Utf8, false),
        field("mode", Utf8, false),
        field("engine", Utf8, false),
        field("latency_ms", Float64, true),
        field("latency_low_ms", Float64, true),
        field("latency_high_ms", Float64, true),
        field("throughput_items_per_s", Float64, true),
        field("throughput_low_items_per_s", Float64, true),
        field("throughput_high_items_per_s", Float64, true),
        field("peak_memory_bytes", Float64, true),
        field("peak_memory_low_bytes", Float64, true),
        field("peak_memory_high_bytes", Float64, true),
        field("coverage", Float64, true),
        field("latency_basis", Utf8, false),
        field("latency_support", UInt32, false),
        field("memory_basis", Utf8, true),
        field("training_rows", UInt64, false),
        field("method", Utf8, false),
        field("accelbench_version", Utf8, false),
    ]))
}

pub fn predictions_batch(rows: &[PredictionRow]) -> Result<RecordBatch, WarehouseError> {
    let rs = || rows.iter();
    // Items per second at the latency's ends: the low end of throughput is at the high
    // end of latency.
    let per_s = |r: &PredictionRow, ms: f64| Some(f64::from(r.batch) * 1e3 / ms);
    let mem = |f: fn(&Predicted) -> f64| opt_f64(rs().map(move |r| r.peak_memory_bytes.as_ref().map(f)));
    let columns = vec![
        u32s(rs().map(|_| WAREHOUSE_SCHEMA_VERSION)),
        timestamps(rs().map(|r| r.predicted_at_ms)),
        strings(rs().map(|r| r.model.as_str())),
        strings(rs().map(|r| r.family.as_str())),
        strings(rs().map(|r| r.hardware_class.as_str())),
        u32s(rs().map(|r| r.batch)),
        u32s(rs().map(|r| r.seq_len)),
        strings(rs().map(|r| r.precision.as_str())),
        strings(rs().map(|r| r.mode.as_str())),
        strings(rs().map(|r| r.engine.as_str())),
        opt_f64(rs().map(|r| Some(r.latency_ms.value))),
        opt_f64(rs().map(|r| Some(r.latency_ms.low))),
        opt_f64(rs().map(|r| Some(r.latency_ms.high))),
        opt_f64(rs().map(|r| per_s(r, r.latency_ms.value))),
        opt_f64(rs().map(|r| per_s(r, r.latency_ms.high))),
        opt_f64(rs().map(|r| per_s(r, r.latency_ms.low))),
        mem(|p| p.value),
        mem(|p| p.low),
        mem(|p| p.high),
        opt_f64(rs().map(|r| Some(r.coverage))),
        strings(rs().map(|r| r.latency_basis.as_str())),
        u32s(rs().map(|r| r.latency_support)),
        opt_strings(rs().map(|r| r.memory_basis.as_deref())),
        Arc::new(UInt64Array::from_iter_values(rs().map(|r| r.training_rows))),
        strings(rs().map(|r| r.method.as_str())),
        strings(rs().map(|r| r.accelbench_version.as_str())),
    ];
    batch(predictions_schema(), columns, Table::Predictions)
}
