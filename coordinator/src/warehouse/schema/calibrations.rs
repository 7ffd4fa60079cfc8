//! The `calibrations` table: each agent's GEMM and memory-copy micro-benchmarks
//! ([`shared::calibration`]), one row per figure, appended when the agent registers.

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use shared::calibration::Calibration;

use super::{batch, field, strings, timestamps, u32s, utc_millis, Table, WAREHOUSE_SCHEMA_VERSION};
use crate::warehouse::WarehouseError;

/// One calibration and the agent that sent it (`quickstart` for the quickstart's own).
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationRow {
    pub agent_id: String,
    pub fingerprint_hash: String,
    pub calibration: Calibration,
}

pub fn calibrations_schema() -> SchemaRef {
    use DataType::{Float64, UInt32, UInt64, Utf8};
    Arc::new(Schema::new(vec![
        field("schema_version", UInt32, false),
        field("agent_id", Utf8, false),
        field("fingerprint_hash", Utf8, false),
        field("device", Utf8, false),
        field("hardware_class", Utf8, false),
        field("kind", Utf8, false),
        field("precision", Utf8, false),
        field("size", UInt64, false),
        field("rate", Float64, false),
        field("unit", Utf8, false),
        field("n_samples", UInt32, false),
        field("median_seconds", Float64, false),
        field("engine", Utf8, false),
        field("engine_version", Utf8, false),
        field("measured_at", utc_millis(), false),
    ]))
}

pub fn calibrations_batch(rows: &[CalibrationRow]) -> Result<RecordBatch, WarehouseError> {
    let rs = || rows.iter();
    let cs = || rows.iter().map(|r| &r.calibration);
    let columns = vec![
        u32s(rs().map(|_| WAREHOUSE_SCHEMA_VERSION)),
        strings(rs().map(|r| r.agent_id.as_str())),
        strings(rs().map(|r| r.fingerprint_hash.as_str())),
        strings(cs().map(|c| c.device.as_str())),
        strings(cs().map(|c| c.hardware_class.as_str())),
        strings(cs().map(|c| c.kind.as_str())),
        strings(cs().map(|c| c.precision.as_str())),
        Arc::new(UInt64Array::from_iter_values(cs().map(|c| c.size))),
        Arc::new(Float64Array::from_iter_values(cs().map(|c| c.rate))),
        strings(cs().map(|c| c.kind.unit())),
        u32s(cs().map(|c| c.n_samples)),
        Arc::new(Float64Array::from_iter_values(cs().map(|c| c.median_seconds))),
        strings(cs().map(|c| c.engine.as_str())),
        strings(cs().map(|c| c.engine_version.as_str())),
        timestamps(cs().map(|c| c.measured_at_ms)),
    ];
    batch(calibrations_schema(), columns, Table::Calibrations)
}
