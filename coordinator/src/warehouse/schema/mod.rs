//! The warehouse's Arrow schemas (`results`, `samples`, `agents`, `sweeps`, `cells`,
//! `alarms`; `calibrations` and `predictions` in files of their own) and
//! the columnar conversion of domain values into record batches.
//!
//! This is an API boundary: people query these columns with DuckDB, pandas or Spark
//! without accelbench, and docs/SCHEMA.md documents each of them. Renaming, retyping or
//! changing the unit of a column means bumping [`WAREHOUSE_SCHEMA_VERSION`].
//!
//! Must never: do I/O, guess a value that was not measured (absent is null), or put
//! imported or load-test rows under the `measured` origin.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use sha2::{Digest, Sha256};
use shared::result::{ResultRecord, StopReason};
use shared::stats::Summary;

use super::WarehouseError;

mod calibrations;
pub use calibrations::{calibrations_batch, calibrations_schema, CalibrationRow};
mod predictions;
pub use predictions::{predictions_batch, predictions_schema, Predicted, PredictionRow};

/// Version of the warehouse layout written into every row's `schema_version` column.
pub const WAREHOUSE_SCHEMA_VERSION: u32 = 1;

pub use super::file::Table;

impl Table {
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Results => results_schema(),
            Table::Samples => samples_schema(),
            Table::Agents => agents_schema(),
            Table::Sweeps => sweeps_schema(),
            Table::Cells => cells_schema(),
            Table::Alarms => alarms_schema(),
            Table::Calibrations => calibrations_schema(),
            Table::Predictions => predictions_schema(),
        }
    }
}

/// Where a row came from; stored in the `origin` column so that imported and generated
/// rows can never pass for rows this system measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Measured by an accelbench agent.
    Measured,
    /// Read from a file (legacy JSON, `bench --json` lines); provenance names the file.
    Imported,
    /// Generated test data of the ingest/report load test.
    LoadTest,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Measured => "measured",
            Origin::Imported => "imported",
            Origin::LoadTest => "load-test",
        }
    }
}

/// The idempotency key of a result: writing a record whose key is already committed
/// stores nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResultKey {
    pub sweep_id: Option<String>,
    pub cell_key: String,
    pub attempt: u32,
}

impl ResultKey {
    pub fn of(record: &ResultRecord) -> ResultKey {
        ResultKey { sweep_id: record.sweep_id.clone(), cell_key: record.cell_key.clone(), attempt: record.attempt }
    }

    /// 32 lowercase hex digits of SHA-256 over the key: the same result always gets the
    /// same id, so `samples` join `results` without a counter anyone must coordinate.
    pub fn result_id(&self) -> String {
        let mut hasher = Sha256::new();
        // Length prefixes keep the encoding injective whatever the strings contain.
        let sweep = self.sweep_id.as_deref().map_or("-".to_string(), |s| format!("{}:{s}", s.len()));
        hasher.update(format!(
            "accelbench-result-id/1\n{sweep}\n{}:{}\n{}",
            self.cell_key.len(),
            self.cell_key,
            self.attempt
        ));
        hex::encode(&hasher.finalize()[..16])
    }
}

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))
}

fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// Names of the statistic columns of one [`Summary`], in column order.
const SUMMARY_STATS: [&str; 11] =
    ["mean", "std", "min", "p50", "p90", "p95", "p99", "max", "cv", "median_ci_low", "median_ci_high"];

fn summary_value(s: &Summary, stat: &str) -> Option<f64> {
    match stat {
        "mean" => Some(s.mean),
        "std" => Some(s.std),
        "min" => Some(s.min),
        "p50" => Some(s.p50),
        "p90" => Some(s.p90),
        "p95" => Some(s.p95),
        "p99" => Some(s.p99),
        "max" => Some(s.max),
        "cv" => s.cv,
        "median_ci_low" => Some(s.median_ci_low),
        "median_ci_high" => Some(s.median_ci_high),
        _ => None,
    }
}

/// The column name of a latency statistic: `latency_cv` has no unit, the others are ns.
fn latency_column(stat: &str) -> String {
    if stat == "cv" {
        "latency_cv".to_string()
    } else {
        format!("latency_{stat}_ns")
    }
}

/// One row per attempt. See docs/SCHEMA.md for units and meanings.
pub fn results_schema() -> SchemaRef {
    use DataType::{Boolean, Float64, UInt32, UInt64, Utf8};
    let mut fields = vec![
        field("schema_version", UInt32, false),
        field("origin", Utf8, false),
        field("result_id", Utf8, false),
        field("sweep_id", Utf8, true),
        field("cell_key", Utf8, false),
        field("attempt", UInt32, false),
        field("model", Utf8, false),
        field("family", Utf8, false),
        field("hardware_class", Utf8, false),
        field("batch", UInt32, false),
        field("seq_len", UInt32, false),
        field("precision", Utf8, false),
        field("mode", Utf8, false),
        field("engine", Utf8, false),
        field("status", Utf8, false),
        field("error", Utf8, true),
        field("stderr_tail", Utf8, true),
        field("latency_n", UInt64, true),
    ];
    fields.extend(SUMMARY_STATS.iter().map(|stat| field(&latency_column(stat), Float64, true)));
    fields.extend([
        field("n_samples", UInt64, false),
        field("warmup_iterations", UInt32, false),
        field("stop_reason", Utf8, true),
        field("throughput_items_per_s", Float64, true),
        field("prompt_tokens", UInt32, true),
        field("decode_steps", UInt32, true),
        field("ttft_p50_ns", Float64, true),
        field("ttft_p99_ns", Float64, true),
        field("inter_token_p50_ns", Float64, true),
        field("inter_token_p99_ns", Float64, true),
        field("decode_tokens_per_s", Float64, true),
        field("peak_host_bytes", UInt64, true),
        field("peak_device_bytes", UInt64, true),
        field("device_memory_source", Utf8, true),
        field("energy_joules_per_iteration", Float64, true),
        field("mean_power_watts", Float64, true),
        field("energy_source", Utf8, true),
        field("output_all_finite", Boolean, true),
        field("output_n_values", UInt64, true),
        field("output_mean", Float64, true),
        field("output_l2_norm", Float64, true),
        field("agent_id", Utf8, true),
        field("agent_version", Utf8, false),
        field("git_commit", Utf8, false),
        field("engine_version", Utf8, false),
        field("fingerprint_hash", Utf8, false),
        field("weights_source", Utf8, false),
        field("started_at", utc_millis(), false),
        field("finished_at", utc_millis(), false),
        // Last, so that files written before them existed read with them null.
        field("device", Utf8, true),
        field("validation", Utf8, true),
        field("validation_reference", Utf8, true),
        field("validation_max_abs_error", Float64, true),
        field("validation_max_rel_error", Float64, true),
        field("validation_cosine", Float64, true),
        field("validation_reason", Utf8, true),
    ]);
    Arc::new(Schema::new(fields))
}

/// One row per timed iteration. The repeated strings are dictionary-encoded, which
/// keeps building a batch to a few machine words per sample (the ingest goal).
pub fn samples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("schema_version", DataType::UInt32, false),
        field("result_id", dict_utf8(), false),
        field("sweep_id", dict_utf8(), true),
        field("cell_key", dict_utf8(), false),
        field("attempt", DataType::UInt32, false),
        field("iteration", DataType::UInt32, false),
        field("latency_ns", DataType::Float64, false),
    ]))
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn opt_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn opt_f64(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(values))
}

fn u32s(values: impl Iterator<Item = u32>) -> ArrayRef {
    Arc::new(UInt32Array::from_iter_values(values))
}

fn opt_u32s(values: impl Iterator<Item = Option<u32>>) -> ArrayRef {
    Arc::new(UInt32Array::from_iter(values))
}

fn opt_u64s(values: impl Iterator<Item = Option<u64>>) -> ArrayRef {
    Arc::new(UInt64Array::from_iter(values))
}

fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter_values(values).with_timezone("+00:00"))
}

fn stop_reason_str(reason: StopReason) -> &'static str {
    match reason {
        StopReason::CiTarget => "ci_target",
        StopReason::MaxSeconds => "max_seconds",
        StopReason::MaxSecondsBeforeMinimums => "max_seconds_before_minimums",
        StopReason::MaxSamples => "max_samples",
    }
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>, table: Table) -> Result<RecordBatch, WarehouseError> {
    RecordBatch::try_new(schema, columns).map_err(|source| WarehouseError::Arrow { table: table.as_str(), source })
}

/// The `results` rows of `records`, in order, all of one `origin`.
pub fn results_batch(records: &[&ResultRecord], origin: Origin) -> Result<RecordBatch, WarehouseError> {
    let rs = || records.iter().copied();
    let mut columns = vec![
        u32s(rs().map(|_| WAREHOUSE_SCHEMA_VERSION)),
        strings(rs().map(|_| origin.as_str())),
        strings(rs().map(|r| ResultKey::of(r).result_id()).collect::<Vec<_>>().iter().map(String::as_str)),
        opt_strings(rs().map(|r| r.sweep_id.as_deref())),
        strings(rs().map(|r| r.cell_key.as_str())),
        u32s(rs().map(|r| r.attempt)),
    ];
    columns.extend(coordinate_columns(records));
    columns.extend([
        strings(rs().map(|r| r.status.as_str())),
        opt_strings(rs().map(|r| r.error.as_deref())),
        opt_strings(rs().map(|r| r.stderr_tail.as_deref())),
        opt_u64s(rs().map(|r| r.latency_ns.map(|s| s.n))),
    ]);
    columns.extend(
        SUMMARY_STATS.iter().map(|stat| opt_f64(rs().map(|r| r.latency_ns.and_then(|s| summary_value(&s, stat))))),
    );
    columns.extend([
        opt_u64s(rs().map(|r| Some(r.samples_ns.len() as u64))),
        u32s(rs().map(|r| r.warmup_iterations)),
        opt_strings(rs().map(|r| r.stop_reason.map(stop_reason_str))),
        opt_f64(rs().map(|r| r.throughput_items_per_s)),
    ]);
    columns.extend(generation_columns(records));
    columns.extend(resource_columns(records));
    columns.extend(provenance_columns(records));
    columns.extend(validation_columns(records));
    batch(results_schema(), columns, Table::Results)
}

fn coordinate_columns(records: &[&ResultRecord]) -> Vec<ArrayRef> {
    let cs = || records.iter().map(|r| &r.coordinates);
    vec![
        strings(cs().map(|c| c.model.as_str())),
        strings(cs().map(|c| c.family.as_str())),
        strings(cs().map(|c| c.hardware_class.as_str())),
        u32s(cs().map(|c| c.batch)),
        u32s(cs().map(|c| c.seq_len)),
        strings(cs().map(|c| c.precision.as_str())),
        strings(cs().map(|c| c.mode.as_str())),
        strings(cs().map(|c| c.engine.as_str())),
    ]
}

fn validation_columns(records: &[&ResultRecord]) -> Vec<ArrayRef> {
    let vs = || records.iter().map(|r| r.validation.as_ref());
    vec![
        opt_strings(vs().map(|v| v.map(|v| v.status.as_str()))),
        opt_strings(vs().map(|v| v.map(|v| v.reference.as_str()))),
        opt_f64(vs().map(|v| v.and_then(|v| v.max_abs_error))),
        opt_f64(vs().map(|v| v.and_then(|v| v.max_rel_error))),
        opt_f64(vs().map(|v| v.and_then(|v| v.cosine))),
        opt_strings(vs().map(|v| v.and_then(|v| v.reason.as_deref()))),
    ]
}

fn generation_columns(records: &[&ResultRecord]) -> Vec<ArrayRef> {
    let gs = || records.iter().map(|r| r.generation.as_ref());
    vec![
        opt_u32s(gs().map(|g| g.map(|g| g.prompt_tokens))),
        opt_u32s(gs().map(|g| g.map(|g| g.decode_steps))),
        opt_f64(gs().map(|g| g.map(|g| g.time_to_first_token_ns.p50))),
        opt_f64(gs().map(|g| g.map(|g| g.time_to_first_token_ns.p99))),
        opt_f64(gs().map(|g| g.map(|g| g.inter_token_ns.p50))),
        opt_f64(gs().map(|g| g.map(|g| g.inter_token_ns.p99))),
        opt_f64(gs().map(|g| g.map(|g| g.decode_tokens_per_s))),
    ]
}

fn resource_columns(records: &[&ResultRecord]) -> Vec<ArrayRef> {
    let rs = || records.iter().copied();
    let checks = || rs().map(|r| r.output_check.as_ref());
    vec![
        opt_u64s(rs().map(|r| r.memory.peak_host_bytes)),
        opt_u64s(rs().map(|r| r.memory.peak_device_bytes)),
        opt_strings(rs().map(|r| r.memory.device_source.as_deref())),
        opt_f64(rs().map(|r| r.energy.joules_per_iteration)),
        opt_f64(rs().map(|r| r.energy.mean_power_watts)),
        opt_strings(rs().map(|r| r.energy.source.as_deref())),
        Arc::new(BooleanArray::from_iter(checks().map(|c| c.map(|c| c.all_finite)))),
        opt_u64s(checks().map(|c| c.map(|c| c.n_values))),
        opt_f64(checks().map(|c| c.map(|c| c.mean))),
        opt_f64(checks().map(|c| c.map(|c| c.l2_norm))),
    ]
}

fn provenance_columns(records: &[&ResultRecord]) -> Vec<ArrayRef> {
    let ps = || records.iter().map(|r| &r.provenance);
    vec![
        opt_strings(ps().map(|p| p.agent_id.as_deref())),
        strings(ps().map(|p| p.agent_version.as_str())),
        strings(ps().map(|p| p.git_commit.as_str())),
        strings(ps().map(|p| p.engine_version.as_str())),
        strings(ps().map(|p| p.fingerprint_hash.as_str())),
        strings(ps().map(|p| p.weights_source.as_str())),
        timestamps(ps().map(|p| p.started_at_ms)),
        timestamps(ps().map(|p| p.finished_at_ms)),
        opt_strings(ps().map(|p| p.device.as_deref())),
    ]
}

/// The `samples` rows of `records`: one per raw latency, in measured order.
///
/// Each record contributes one dictionary entry per string column and every sample
/// points at it, so the per-sample cost is three small integers and the latency.
pub fn samples_batch(records: &[&ResultRecord]) -> Result<RecordBatch, WarehouseError> {
    let n_rows: usize = records.iter().map(|r| r.samples_ns.len()).sum();
    let mut record_idx = Vec::with_capacity(n_rows);
    let mut attempt = Vec::with_capacity(n_rows);
    let mut iteration = Vec::with_capacity(n_rows);
    let mut latency = Vec::with_capacity(n_rows);
    for (idx, record) in records.iter().enumerate() {
        let idx = i32::try_from(idx).map_err(|_| WarehouseError::TooManyRecords { n_records: records.len() })?;
        record_idx.extend(std::iter::repeat_n(idx, record.samples_ns.len()));
        attempt.extend(std::iter::repeat_n(record.attempt, record.samples_ns.len()));
        iteration.extend(0..record.samples_ns.len() as u32);
        latency.extend_from_slice(&record.samples_ns);
    }
    let keys = Int32Array::from(record_idx);
    let result_ids: Vec<String> = records.iter().map(|r| ResultKey::of(r).result_id()).collect();
    let columns: Vec<ArrayRef> = vec![
        u32s(std::iter::repeat_n(WAREHOUSE_SCHEMA_VERSION, n_rows)),
        dictionary(&keys, StringArray::from_iter_values(result_ids.iter()))?,
        dictionary(&keys, StringArray::from_iter(records.iter().map(|r| r.sweep_id.as_deref())))?,
        dictionary(&keys, StringArray::from_iter_values(records.iter().map(|r| r.cell_key.as_str())))?,
        Arc::new(UInt32Array::from(attempt)),
        Arc::new(UInt32Array::from(iteration)),
        Arc::new(Float64Array::from(latency)),
    ];
    batch(samples_schema(), columns, Table::Samples)
}

/// A dictionary column whose row `i` is `values[keys[i]]`; a null value stays null.
fn dictionary(keys: &Int32Array, values: StringArray) -> Result<ArrayRef, WarehouseError> {
    // A null dictionary value is legal Arrow, but Parquet readers disagree on it: turn
    // it into a null key instead.
    let keys: Int32Array = if values.null_count() == 0 {
        keys.clone()
    } else {
        keys.iter().map(|k| k.filter(|k| usize::try_from(*k).is_ok_and(|k| values.is_valid(k)))).collect()
    };
    let array = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))
        .map_err(|source| WarehouseError::Arrow { table: Table::Samples.as_str(), source })?;
    Ok(Arc::new(array))
}

/// One agent as the coordinator knows it, appended when it registers or changes.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    pub agent_id: String,
    pub hostname: Option<String>,
    pub hardware_class: String,
    pub fingerprint_hash: String,
    /// The whole fingerprint as JSON, for questions the columns do not answer.
    pub fingerprint_json: String,
    pub agent_version: String,
    pub registered_at_ms: i64,
    pub last_seen_at_ms: i64,
}

pub fn agents_schema() -> SchemaRef {
    use DataType::{UInt32, Utf8};
    Arc::new(Schema::new(vec![
        field("schema_version", UInt32, false),
        field("agent_id", Utf8, false),
        field("hostname", Utf8, true),
        field("hardware_class", Utf8, false),
        field("fingerprint_hash", Utf8, false),
        field("fingerprint_json", Utf8, false),
        field("agent_version", Utf8, false),
        field("registered_at", utc_millis(), false),
        field("last_seen_at", utc_millis(), false),
    ]))
}

pub fn agents_batch(rows: &[AgentRow]) -> Result<RecordBatch, WarehouseError> {
    let rs = || rows.iter();
    let columns = vec![
        u32s(rs().map(|_| WAREHOUSE_SCHEMA_VERSION)),
        strings(rs().map(|r| r.agent_id.as_str())),
        opt_strings(rs().map(|r| r.hostname.as_deref())),
        strings(rs().map(|r| r.hardware_class.as_str())),
        strings(rs().map(|r| r.fingerprint_hash.as_str())),
        strings(rs().map(|r| r.fingerprint_json.as_str())),
        strings(rs().map(|r| r.agent_version.as_str())),
        timestamps(rs().map(|r| r.registered_at_ms)),
        timestamps(rs().map(|r| r.last_seen_at_ms)),
    ];
    batch(agents_schema(), columns, Table::Agents)
}

/// One submitted sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub sweep_id: String,
    pub name: String,
    pub submitted_by: Option<String>,
    pub submitted_at_ms: i64,
    pub priority: i32,
    pub max_attempts: u32,
    pub n_cells: u64,
    /// The validated spec as JSON.
    pub spec_json: String,
}

pub fn sweeps_schema() -> SchemaRef {
    use DataType::{Int32, UInt32, UInt64, Utf8};
    Arc::new(Schema::new(vec![
        field("schema_version", UInt32, false),
        field("sweep_id", Utf8, false),
        field("name", Utf8, false),
        field("submitted_by", Utf8, true),
        field("submitted_at", utc_millis(), false),
        field("priority", Int32, false),
        field("max_attempts", UInt32, false),
        field("n_cells", UInt64, false),
        field("spec_json", Utf8, false),
    ]))
}

pub fn sweeps_batch(rows: &[SweepRow]) -> Result<RecordBatch, WarehouseError> {
    let rs = || rows.iter();
    let columns = vec![
        u32s(rs().map(|_| WAREHOUSE_SCHEMA_VERSION)),
        strings(rs().map(|r| r.sweep_id.as_str())),
        strings(rs().map(|r| r.name.as_str())),
        opt_strings(rs().map(|r| r.submitted_by.as_deref())),
        timestamps(rs().map(|r| r.submitted_at_ms)),
        Arc::new(Int32Array::from_iter_values(rs().map(|r| r.priority))),
        u32s(rs().map(|r| r.max_attempts)),
        opt_u64s(rs().map(|r| Some(r.n_cells))),
        strings(rs().map(|r| r.spec_json.as_str())),
    ];
    batch(sweeps_schema(), columns, Table::Sweeps)
}

/// The state of one cell at a moment; appended on each change, the newest row wins.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRow {
    pub sweep_id: String,
    pub cell_key: String,
    pub model: String,
    /// The selector as written in the spec, e.g. `cuda[min_memory_gib=24]`.
    pub hardware_selector: String,
    pub hardware_class: Option<String>,
    pub batch: u32,
    pub seq_len: u32,
    pub precision: String,
    pub mode: String,
    pub engine: String,
    /// `pending`, `leased`, `done`, `failed`, `unsupported`, … (the scheduler's words).
    pub state: String,
    pub attempts: u32,
    pub updated_at_ms: i64,
}

/// Regression alarms (`accelbench regressions --record`): one row per alarm, the rows
/// `answers::regressions::to_rows` builds.
pub fn alarms_schema() -> SchemaRef {
    use DataType::{Float64, UInt32, Utf8};
    Arc::new(Schema::new(vec![
        field("schema_version", UInt32, false),
        field("model", Utf8, false),
        field("hardware_class", Utf8, false),
        field("batch", UInt32, false),
        field("seq_len", UInt32, false),
        field("precision", Utf8, false),
        field("mode", Utf8, false),
        field("engine", Utf8, false),
        field("weights_source", Utf8, false),
        field("first_bad_started_at", utc_millis(), false),
        field("first_bad_sweep_id", Utf8, false),
        field("first_bad_result_id", Utf8, false),
        field("run_index", UInt32, false),
        field("n_runs", UInt32, false),
        field("before_p50_ms", Float64, false),
        field("after_p50_ms", Float64, false),
        field("ratio", Float64, false),
        field("ci_low", Float64, false),
        field("ci_high", Float64, false),
        field("p_value", Float64, false),
        field("changed", Utf8, false),
        field("detected_at", utc_millis(), false),
        field("method", Utf8, false),
    ]))
}

pub fn cells_schema() -> SchemaRef {
    use DataType::{UInt32, Utf8};
    Arc::new(Schema::new(vec![
        field("schema_version", UInt32, false),
        field("sweep_id", Utf8, false),
        field("cell_key", Utf8, false),
        field("model", Utf8, false),
        field("hardware_selector", Utf8, false),
        field("hardware_class", Utf8, true),
        field("batch", UInt32, false),
        field("seq_len", UInt32, false),
        field("precision", Utf8, false),
        field("mode", Utf8, false),
        field("engine", Utf8, false),
        field("state", Utf8, false),
        field("attempts", UInt32, false),
        field("updated_at", utc_millis(), false),
    ]))
}

pub fn cells_batch(rows: &[CellRow]) -> Result<RecordBatch, WarehouseError> {
    let rs = || rows.iter();
    let columns = vec![
        u32s(rs().map(|_| WAREHOUSE_SCHEMA_VERSION)),
        strings(rs().map(|r| r.sweep_id.as_str())),
        strings(rs().map(|r| r.cell_key.as_str())),
        strings(rs().map(|r| r.model.as_str())),
        strings(rs().map(|r| r.hardware_selector.as_str())),
        opt_strings(rs().map(|r| r.hardware_class.as_deref())),
        u32s(rs().map(|r| r.batch)),
        u32s(rs().map(|r| r.seq_len)),
        strings(rs().map(|r| r.precision.as_str())),
        strings(rs().map(|r| r.mode.as_str())),
        strings(rs().map(|r| r.engine.as_str())),
        strings(rs().map(|r| r.state.as_str())),
        u32s(rs().map(|r| r.attempts)),
        timestamps(rs().map(|r| r.updated_at_ms)),
    ];
    batch(cells_schema(), columns, Table::Cells)
}

#[cfg(test)]
mod tests;
