//! Parsing the Python framework's legacy benchmark JSON into result records.
//!
//! Three layouts exist (see `coordinator/tests/fixtures/legacy-json/` and the README
//! next to the originals):
//! - **single**: one model × one hardware; `batch_sizes` maps batch → `latency_ms`,
//!   `throughput`, `memory_usage_mb`, `success`. No raw samples.
//! - **batch**: `results[model].benchmark_data.batch_results[batch]` with
//!   `avg_latency_ms`, `throughput_items_per_second`, `memory_mb` and raw `latencies_ms`.
//! - **performance**: `benchmarks[category][model][hardware].benchmark_results
//!   ["batch_B_seq_S"]` with raw `latencies` **in seconds**, plus `system_info` and
//!   `hardware_details`.
//!
//! What the files do not say is filled in as follows, and the row's provenance
//! (`weights_source = imported:legacy-json:<sha256 of the file>`) marks every such row:
//! - precision `fp32`, mode `inference`, engine `torch` (the framework ran PyTorch
//!   models in their default dtype); `seq_len` 0 where the layout has none.
//! - hardware class `cpu/<model>` from the file's CPU brand string where one is given
//!   (`hardware_details.openvino_device_info.CPU`, `system_info.cpu_model`, …), else
//!   `cpu/unknown`; `cuda/<cuda_devices[0].name>` (else `cuda/unknown`); `mps` becomes
//!   `metal/unknown`, `rocm` `rocm/unknown`. Other hardware keys are skipped.
//! - family from the model name (`t5` → t5, `bert`/`roberta`/… → bert, …); a model of
//!   no known family is skipped.
//! - times without a zone are read as UTC; a row without a time takes the file's, then
//!   the one in the file name (`…_20250305_195714.json`).
//! - memory figures (MiB, as psutil reports them) go to `peak_host_bytes`.
//! - a row with only an average latency (layout single) gets a one-value summary
//!   (`latency_n` = 1) and no samples: it is a reported number, not a distribution.
//! - cell key: [`Cell::key`] under the sweep name `imported:legacy-json:<sha256>`, so
//!   re-importing a file gives the same keys (and stores nothing new); `sweep_id` is
//!   `None` and `attempt` is 1.
//!
//! Must never: do I/O (it takes bytes and a label), guess a number the file does not
//! contain, or produce a record that could pass for one accelbench measured.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use shared::catalog::{Family, Mode, Precision};
use shared::cell::Cell;
use shared::result::{
    Coordinates, Energy, Memory, Provenance, ResultRecord, Status, StopReason, RESULT_SCHEMA_VERSION,
};
use shared::spec::{Engine, HardwareKind, HardwareSelector};

/// The `weights_source` prefix of every imported legacy row.
pub const PROVENANCE_PREFIX: &str = "imported:legacy-json:";

/// A part of a file that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where in the file, as a JSON path, e.g. `results.prajjwal1/bert-tiny.batch_results.1`.
    pub location: String,
    pub reason: String,
}

/// A file that is not legacy benchmark JSON at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: not valid JSON: {reason}")]
    NotJson { path: String, reason: String },
    #[error("{path}: not a legacy benchmark layout: {reason}")]
    UnknownLayout { path: String, reason: String },
}

/// Parses one legacy file. `path` only labels errors and supplies a fallback time.
pub fn parse(bytes: &[u8], path: &str) -> Result<(Vec<ResultRecord>, Vec<Skipped>), ImportError> {
    let root: Value = serde_json::from_slice(bytes)
        .map_err(|e| ImportError::NotJson { path: path.to_string(), reason: e.to_string() })?;
    let unknown = |reason: &str| ImportError::UnknownLayout { path: path.to_string(), reason: reason.to_string() };
    let top = root.as_object().ok_or_else(|| unknown("the top level is not an object"))?;
    let file = FileContext::new(bytes, path, top);
    let mut rows = Rows::default();
    if let Some(benchmarks) = top.get("benchmarks").and_then(Value::as_object) {
        performance_layout(benchmarks, &file, &mut rows);
    } else if let Some(results) = top.get("results").and_then(Value::as_object) {
        batch_layout(results, &file, &mut rows);
    } else if let Some(batches) = top.get("batch_sizes").and_then(Value::as_object) {
        single_layout(top, batches, &file, &mut rows);
    } else {
        return Err(unknown("expected a `benchmarks`, `results` or `batch_sizes` object at the top level"));
    }
    Ok((rows.records, rows.skipped))
}

/// What every row of one file shares.
struct FileContext {
    sha256: String,
    /// The file-level time, or the one in its name.
    time_ms: Option<i64>,
    cpu_model: Option<String>,
    cuda_device: Option<String>,
}

impl FileContext {
    fn new(bytes: &[u8], path: &str, top: &Map<String, Value>) -> FileContext {
        let time_ms = top.get("timestamp").and_then(parse_time).or_else(|| time_in_file_name(path));
        FileContext {
            sha256: hex::encode(Sha256::digest(bytes)),
            time_ms,
            cpu_model: cpu_model(top),
            cuda_device: cuda_device(top),
        }
    }

    fn sweep_name(&self) -> String {
        format!("{PROVENANCE_PREFIX}{}", self.sha256)
    }
}

/// One row as the file gives it, before it becomes a record.
#[derive(Debug, Default)]
struct LegacyRow {
    location: String,
    model: String,
    hardware: String,
    batch: Option<u32>,
    seq_len: u32,
    success: Option<bool>,
    error: Option<String>,
    stderr: Option<String>,
    samples_ns: Vec<f64>,
    mean_latency_ns: Option<f64>,
    throughput: Option<f64>,
    memory_mib: Option<f64>,
    time_ms: Option<i64>,
    duration_s: Option<f64>,
}

#[derive(Default)]
struct Rows {
    records: Vec<ResultRecord>,
    skipped: Vec<Skipped>,
    keys: HashSet<String>,
}

impl Rows {
    fn skip(&mut self, location: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push(Skipped { location: location.into(), reason: reason.into() });
    }

    fn push(&mut self, row: LegacyRow, file: &FileContext) {
        match to_record(&row, file) {
            Ok(record) if !self.keys.insert(record.cell_key.clone()) => {
                self.skip(row.location, "same coordinates as an earlier row of this file")
            }
            Ok(record) => self.records.push(record),
            Err(reason) => self.skip(row.location, reason),
        }
    }
}

/// Layout single: `{model, hardware, timestamp, batch_sizes: {"1": {...}}}`.
fn single_layout(top: &Map<String, Value>, batches: &Map<String, Value>, file: &FileContext, rows: &mut Rows) {
    let model = ["model_path", "model_name", "model_key", "model"].iter().find_map(|k| text(top.get(*k)));
    let hardware = ["hardware_key", "hardware", "device"].iter().find_map(|k| text(top.get(*k)));
    let time_ms = top.get("timestamp").and_then(parse_time);
    for (batch_key, entry) in batches {
        let location = format!("batch_sizes.{batch_key}");
        let Some(entry) = entry.as_object() else {
            rows.skip(location, "not an object");
            continue;
        };
        let row = LegacyRow {
            model: model.clone().unwrap_or_default(),
            hardware: hardware.clone().unwrap_or_default(),
            batch: batch_of(batch_key, entry),
            success: success_of(entry),
            error: text(entry.get("error")),
            mean_latency_ns: ms_to_ns(number(entry.get("latency_ms")).or_else(|| number(entry.get("avg_latency_ms")))),
            throughput: number(entry.get("throughput")).or_else(|| number(entry.get("throughput_items_per_second"))),
            memory_mib: number(entry.get("memory_usage_mb")).or_else(|| number(entry.get("memory_mb"))),
            time_ms: entry.get("timestamp").and_then(parse_time).or(time_ms),
            location,
            ..LegacyRow::default()
        };
        rows.push(row, file);
    }
}

/// Layout batch: `{results: {model: {benchmark_data: {batch_results: {"1": {...}}}}}}`.
fn batch_layout(results: &Map<String, Value>, file: &FileContext, rows: &mut Rows) {
    for (model_key, run) in results {
        let Some(run) = run.as_object() else {
            rows.skip(format!("results.{model_key}"), "not an object");
            continue;
        };
        let data = run.get("benchmark_data").and_then(Value::as_object);
        let batches = data.and_then(|d| d.get("batch_results")).and_then(Value::as_object);
        let batches = batches.or_else(|| run.get("summary").and_then(Value::as_object));
        let Some(batches) = batches else {
            let reason = text(run.get("error")).unwrap_or_else(|| "no batch_results".to_string());
            rows.skip(format!("results.{model_key}"), format!("no per-batch results: {reason}"));
            continue;
        };
        for (batch_key, entry) in batches {
            let location = format!("results.{model_key}.batch_results.{batch_key}");
            match entry.as_object() {
                Some(entry) => rows.push(batch_row(location, model_key, run, batch_key, entry), file),
                None => rows.skip(location, "not an object"),
            }
        }
    }
}

fn batch_row(
    location: String,
    model_key: &str,
    run: &Map<String, Value>,
    batch_key: &str,
    entry: &Map<String, Value>,
) -> LegacyRow {
    let hardware = ["device", "hardware"].iter().find_map(|k| text(entry.get(*k)).or_else(|| text(run.get(*k))));
    LegacyRow {
        model: text(run.get("model")).unwrap_or_else(|| model_key.to_string()),
        hardware: hardware.unwrap_or_default(),
        batch: batch_of(batch_key, entry),
        success: success_of(entry).or_else(|| success_of(run)),
        error: text(entry.get("error")).or_else(|| text(run.get("error"))),
        stderr: text(run.get("stderr")),
        samples_ns: numbers(entry.get("latencies_ms")).into_iter().map(|ms| ms * 1e6).collect(),
        mean_latency_ns: ms_to_ns(number(entry.get("avg_latency_ms")).or_else(|| number(entry.get("latency_ms")))),
        throughput: number(entry.get("throughput_items_per_second")).or_else(|| number(entry.get("throughput"))),
        memory_mib: number(entry.get("memory_mb")).or_else(|| number(entry.get("memory_usage_mb"))),
        time_ms: entry.get("timestamp").or_else(|| run.get("timestamp")).and_then(parse_time),
        location,
        ..LegacyRow::default()
    }
}

/// Layout performance: `{benchmarks: {category: {model: {hardware: {benchmark_results:
/// {"batch_B_seq_S": {...}}}}}}}`, latencies in seconds.
fn performance_layout(benchmarks: &Map<String, Value>, file: &FileContext, rows: &mut Rows) {
    for (category, models) in benchmarks {
        for (model, hardware_runs) in models.as_object().into_iter().flatten() {
            for (hardware, run) in hardware_runs.as_object().into_iter().flatten() {
                let location = format!("benchmarks.{category}.{model}.{hardware}");
                let run = run.as_object();
                let batches = run.and_then(|r| r.get("benchmark_results")).and_then(Value::as_object);
                let (Some(run), Some(batches)) = (run, batches) else {
                    let reason = run.and_then(|r| text(r.get("error")).or_else(|| text(r.get("status"))));
                    rows.skip(
                        location,
                        format!("no benchmark_results ({})", reason.unwrap_or_else(|| "no reason".into())),
                    );
                    continue;
                };
                for (shape, entry) in batches {
                    let location = format!("{location}.benchmark_results.{shape}");
                    match entry.as_object() {
                        Some(entry) => rows.push(performance_row(location, model, hardware, run, shape, entry), file),
                        None => rows.skip(location, "not an object"),
                    }
                }
            }
        }
    }
}

fn performance_row(
    location: String,
    model: &str,
    hardware: &str,
    run: &Map<String, Value>,
    shape: &str,
    entry: &Map<String, Value>,
) -> LegacyRow {
    let (batch, seq_len) = parse_shape(shape);
    LegacyRow {
        model: text(run.get("model_name")).unwrap_or_else(|| model.to_string()),
        hardware: hardware.to_string(),
        batch: number(entry.get("batch_size")).and_then(to_u32).or(batch),
        seq_len: number(entry.get("sequence_length")).and_then(to_u32).or(seq_len).unwrap_or(0),
        success: success_of(entry),
        error: text(entry.get("error")),
        samples_ns: numbers(entry.get("latencies")).into_iter().map(|s| s * 1e9).collect(),
        mean_latency_ns: number(entry.get("avg_latency")).map(|s| s * 1e9),
        throughput: number(entry.get("throughput")),
        memory_mib: number(entry.get("memory_mb")),
        time_ms: entry.get("timestamp").or_else(|| run.get("timestamp")).and_then(parse_time),
        duration_s: number(entry.get("total_time")),
        location,
        ..LegacyRow::default()
    }
}

/// `batch_4_seq_128` → (4, 128); either part may be missing.
fn parse_shape(shape: &str) -> (Option<u32>, Option<u32>) {
    let after = |tag: &str| {
        let rest = shape.split(tag).nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    (after("batch_"), after("seq_"))
}

/// The record of one row, or why there is none.
fn to_record(row: &LegacyRow, file: &FileContext) -> Result<ResultRecord, String> {
    let batch = row.batch.filter(|b| *b > 0).ok_or("no batch size (or batch size 0)")?;
    let family = family_of(&row.model).ok_or_else(|| format!("model `{}`: no known architecture family", row.model))?;
    let (kind, hardware_class) = hardware_class(&row.hardware, file)?;
    let started_at_ms = row.time_ms.or(file.time_ms).ok_or("no timestamp in the row, the file or its name")?;
    let outcome = outcome_of(row)?;
    let cell = Cell {
        model: row.model.clone(),
        hardware: HardwareSelector::of_kind(kind),
        hardware_class: Some(hardware_class.clone()),
        agent_id: None,
        batch,
        seq_len: row.seq_len,
        precision: Precision::Fp32,
        mode: Mode::Inference,
        engine: Engine::Torch,
    };
    let duration_ms = row.duration_s.filter(|s| s.is_finite() && *s >= 0.0).map_or(0, |s| (s * 1e3).round() as i64);
    Ok(ResultRecord {
        schema_version: RESULT_SCHEMA_VERSION,
        sweep_id: None,
        cell_key: cell.key(&file.sweep_name()).to_string(),
        attempt: 1,
        coordinates: Coordinates {
            model: row.model.clone(),
            family,
            hardware_class: hardware_class.clone(),
            batch,
            seq_len: row.seq_len,
            precision: Precision::Fp32,
            mode: Mode::Inference,
            engine: Engine::Torch.as_str().to_string(),
        },
        status: outcome.status,
        error: outcome.error,
        stderr_tail: outcome.stderr_tail,
        latency_ns: outcome.latency_ns,
        samples_ns: outcome.samples_ns,
        warmup_iterations: 0,
        stop_reason: None::<StopReason>,
        throughput_items_per_s: row.throughput.filter(|t| t.is_finite() && *t >= 0.0),
        generation: None,
        memory: Memory {
            peak_host_bytes: row
                .memory_mib
                .filter(|m| m.is_finite() && *m >= 0.0)
                .map(|m| (m * 1_048_576.0).round() as u64),
            ..Memory::default()
        },
        energy: Energy::default(),
        output_check: None,
        provenance: Provenance {
            agent_id: None,
            agent_version: "legacy-json".to_string(),
            git_commit: "unknown".to_string(),
            engine: Engine::Torch.as_str().to_string(),
            engine_version: "unknown".to_string(),
            hardware_class,
            fingerprint_hash: "unknown".to_string(),
            weights_source: file.sweep_name(),
            started_at_ms,
            finished_at_ms: started_at_ms.saturating_add(duration_ms),
            device: None,
        },
        validation: None,
    })
}

/// Status and measurements of a row.
struct Outcome {
    status: Status,
    error: Option<String>,
    stderr_tail: Option<String>,
    latency_ns: Option<shared::stats::Summary>,
    samples_ns: Vec<f64>,
}

fn outcome_of(row: &LegacyRow) -> Result<Outcome, String> {
    if row.success == Some(false) {
        return Ok(Outcome {
            status: Status::Failed,
            error: Some(row.error.clone().unwrap_or_else(|| "the legacy run reported failure".to_string())),
            stderr_tail: row.stderr.as_deref().map(tail),
            latency_ns: None,
            samples_ns: Vec::new(),
        });
    }
    if let Some(bad) = row.samples_ns.iter().find(|s| !s.is_finite() || **s < 0.0) {
        return Err(format!("latency sample {bad} is not a finite duration"));
    }
    let latency_ns = if row.samples_ns.is_empty() {
        // Only the file's average: a one-value summary of that reported number.
        let mean = row.mean_latency_ns.filter(|m| m.is_finite() && *m >= 0.0).ok_or("no latency")?;
        shared::stats::summarize(&[mean])
    } else {
        shared::stats::summarize(&row.samples_ns)
    };
    Ok(Outcome { status: Status::Ok, error: None, stderr_tail: None, latency_ns, samples_ns: row.samples_ns.clone() })
}

/// The last 2000 characters (the end of a log says why it failed).
fn tail(text: &str) -> String {
    let n_chars = text.chars().count();
    text.chars().skip(n_chars.saturating_sub(2000)).collect()
}

/// The family from the model name's words (`google/t5-efficient-tiny` → `t5`). Whole
/// words, not substrings: `resnet50` contains "t5" and is no T5.
fn family_of(model: &str) -> Option<Family> {
    let name = model.to_ascii_lowercase();
    let words: Vec<&str> = name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let any = |test: &dyn Fn(&str) -> bool| words.iter().any(|w| test(w));
    if any(&|w| w == "t5" || w.starts_with("t5v")) {
        Some(Family::T5)
    } else if any(&|w| w.starts_with("whisper")) {
        Some(Family::Whisper)
    } else if any(&|w| w.starts_with("clip")) {
        Some(Family::Clip)
    } else if any(&|w| w.starts_with("qwen")) {
        Some(Family::Qwen2)
    } else if any(&|w| w.contains("llama") || w.starts_with("smollm")) {
        Some(Family::Llama)
    } else if any(&|w| w == "vit") {
        Some(Family::Vit)
    } else if any(&|w| {
        w.ends_with("bert") || ["roberta", "minilm", "mpnet", "electra"].iter().any(|p| w.starts_with(p))
    }) {
        // RoBERTa, DistilBERT, MiniLM and friends share BERT's encoder architecture.
        Some(Family::Bert)
    } else {
        None
    }
}

fn hardware_class(hardware: &str, file: &FileContext) -> Result<(HardwareKind, String), String> {
    let device_or_unknown = |name: &Option<String>| name.clone().unwrap_or_else(|| "unknown".to_string());
    match hardware.trim().to_ascii_lowercase().as_str() {
        "cpu" => Ok((HardwareKind::Cpu, format!("cpu/{}", device_or_unknown(&file.cpu_model)))),
        "cuda" | "gpu" => Ok((HardwareKind::Cuda, format!("cuda/{}", device_or_unknown(&file.cuda_device)))),
        "mps" | "metal" => Ok((HardwareKind::Metal, "metal/unknown".to_string())),
        "rocm" => Ok((HardwareKind::Rocm, "rocm/unknown".to_string())),
        "xpu" => Ok((HardwareKind::Xpu, "xpu/unknown".to_string())),
        "" => Err("no hardware named".to_string()),
        other => Err(format!("hardware `{other}` has no accelbench hardware class")),
    }
}

/// The CPU brand string, wherever the framework put it. `processor` is often only the
/// architecture (`x86_64`), which is no model.
fn cpu_model(top: &Map<String, Value>) -> Option<String> {
    let system = top.get("system_info");
    let details = top.get("hardware_details");
    let candidates = [
        system.and_then(|s| s.get("cpu_model")),
        system.and_then(|s| s.get("cpu_brand")),
        system.and_then(|s| s.get("cpu_info")).and_then(|c| c.get("brand_raw")),
        details.and_then(|d| d.get("cpu_model")),
        details.and_then(|d| d.get("openvino_device_info")).and_then(|o| o.get("CPU")),
        system.and_then(|s| s.get("processor")),
    ];
    const ARCHITECTURES: [&str; 7] = ["x86_64", "amd64", "arm64", "aarch64", "i386", "i686", "arm"];
    candidates.into_iter().filter_map(text).find(|t| !ARCHITECTURES.contains(&t.to_ascii_lowercase().as_str()))
}

fn cuda_device(top: &Map<String, Value>) -> Option<String> {
    ["system_info", "hardware_details"].iter().find_map(|section| {
        let devices = top.get(*section)?.get("cuda_devices")?.as_array()?;
        text(devices.first()?.get("name"))
    })
}

/// A non-empty trimmed string (numbers are accepted and printed).
fn text(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A number, also when written as a string (`"20"`, `" 1.5 "`).
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// A list of numbers; entries that are not numbers become NaN so the row is refused
/// rather than silently shortened.
fn numbers(value: Option<&Value>) -> Vec<f64> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items.iter().map(|v| number(Some(v)).unwrap_or(f64::NAN)).collect()
}

fn ms_to_ns(ms: Option<f64>) -> Option<f64> {
    ms.map(|ms| ms * 1e6)
}

fn to_u32(x: f64) -> Option<u32> {
    (x >= 0.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX)).then_some(x as u32)
}

fn batch_of(key: &str, entry: &Map<String, Value>) -> Option<u32> {
    number(entry.get("batch_size")).and_then(to_u32).or_else(|| key.trim().parse().ok())
}

fn success_of(entry: &Map<String, Value>) -> Option<bool> {
    match entry.get("success").or_else(|| entry.get("status"))? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "completed" | "success" | "ok" => Some(true),
            "false" | "failed" | "error" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Unix ms of `2025-03-05T19:57:13.297083` (zone-less: UTC), an RFC 3339 time, or
/// `20250305_195321`.
fn parse_time(value: &Value) -> Option<i64> {
    let text = value.as_str()?.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y%m%d_%H%M%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

/// The `YYYYMMDD_HHMMSS` in a file name such as `benchmark_bert_cpu_20250305_195714.json`.
fn time_in_file_name(path: &str) -> Option<i64> {
    let name = path.rsplit(['/', '\\']).next()?;
    let stem = name.strip_suffix(".json").unwrap_or(name);
    let candidate = stem.get(stem.len().checked_sub(15)?..)?;
    parse_time(&Value::String(candidate.to_string()))
}

#[cfg(test)]
mod tests;
