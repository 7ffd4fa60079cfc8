//! `accelbench predict`: a cell's latency and peak memory that nobody measured, with an
//! 80 % prediction interval, from what the warehouse knows: the model catalog (FLOPs and
//! weight bytes), each hardware class's calibrations (GEMM rate per precision and copy
//! bandwidth, the median over its agents) and the measured `ok` rows of one engine. The
//! method is `analysis::predict`'s (its module doc).
//!
//! Quantised precisions have no GEMM calibration of their own; their compute rate is the
//! class's fp32 GEMM rate (the engine's quantised kernels work in f32 after unpacking)
//! and their weights count at the block format's bytes.
//!
//! Must never: mix a prediction into `results` (they go to `predictions`), or predict
//! for a class without a calibration (that would be a datasheet guess).

use std::collections::BTreeMap;

use analysis::predict::{self, Observation, Point, PredictOptions, Prediction, Predictor};
use anyhow::{bail, Context};
use shared::catalog::{self, Mode, ModelSpec, Precision};

use super::columns::Columns;
use crate::query::{sql_string, QueryEngine};
use crate::warehouse::schema::{Predicted, PredictionRow};

/// The method's name and version, stored with every prediction.
pub const METHOD: &str = "log-ridge roofline + neighbour residuals, held-out 80% interval (v1)";

/// A hardware class's calibrated rates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    /// GEMM FLOP/s by precision name.
    pub gemm: BTreeMap<String, f64>,
    /// Copy bandwidth, bytes/s.
    pub copy: Option<f64>,
}

impl Rates {
    /// The compute rate a cell at `precision` is placed by (fp32's for quantised formats).
    fn peak_flops(&self, precision: Precision) -> Option<f64> {
        let at = if precision.is_quantized() { Precision::Fp32 } else { precision };
        self.gemm.get(at.as_str()).copied()
    }
}

/// Each class's rates: the median over its calibrations of each figure.
pub fn load_rates(engine: &QueryEngine) -> anyhow::Result<BTreeMap<String, Rates>> {
    let rows = engine.query(
        "SELECT hardware_class, kind, precision, median(rate) AS rate FROM calibrations
         WHERE rate > 0 AND isfinite(rate) GROUP BY ALL ORDER BY ALL",
    )?;
    let mut rates: BTreeMap<String, Rates> = BTreeMap::new();
    for batch in &rows.batches {
        let c = Columns::new(batch);
        for i in 0..batch.num_rows() {
            let class = rates.entry(c.string("hardware_class", i)?).or_default();
            let Some(rate) = c.f64("rate", i)? else { continue };
            match c.string("kind", i)?.as_str() {
                "gemm" => {
                    class.gemm.insert(c.string("precision", i)?, rate);
                }
                "copy" => class.copy = Some(rate),
                _ => {}
            }
        }
    }
    Ok(rates)
}

/// The predictor's view of a cell: its catalog numbers and its class's rates; `None`
/// when the class lacks the calibration the precision needs.
pub fn point(
    model: &ModelSpec,
    class: &str,
    rates: &Rates,
    batch: u32,
    seq_len: u32,
    precision: Precision,
    mode: Mode,
) -> Option<Point> {
    Some(Point {
        model: model.name.to_string(),
        family: model.family.to_string(),
        hardware_class: class.to_string(),
        precision: precision.to_string(),
        mode: mode.to_string(),
        batch,
        seq_len,
        flops: model.flops(batch, seq_len, mode),
        weight_bytes: model.parameter_count() as f64 * precision.bytes_per_parameter(),
        peak_flops: rates.peak_flops(precision)?,
        bandwidth: rates.copy?,
    })
}

/// What the fits learn from: measured latency (seconds) and peak memory (bytes) rows,
/// and how many rows were left out, by reason.
#[derive(Debug, Default)]
pub struct Knowledge {
    pub rates: BTreeMap<String, Rates>,
    pub latency: Vec<Observation>,
    pub memory: Vec<Observation>,
    pub left_out: BTreeMap<String, usize>,
}

/// Every measured `ok` row of `engine_name` whose model is in the catalog and whose class
/// is calibrated. Memory is the device's peak on an accelerator and the process's peak
/// resident set on a CPU, as `recommend` reads it.
pub fn load(engine: &QueryEngine, engine_name: &str) -> anyhow::Result<Knowledge> {
    let mut k = Knowledge { rates: load_rates(engine)?, ..Knowledge::default() };
    let sql = format!(
        "SELECT model, hardware_class, batch, seq_len, precision, mode, latency_p50_ns,
                CASE WHEN hardware_class LIKE 'cpu/%' THEN peak_host_bytes ELSE peak_device_bytes END AS memory_bytes
         FROM results WHERE status = 'ok' AND origin = 'measured' AND engine = {} AND latency_p50_ns > 0
         ORDER BY ALL",
        sql_string(engine_name)
    );
    let rows = engine.query(&sql)?;
    for batch in &rows.batches {
        let c = Columns::new(batch);
        for i in 0..batch.num_rows() {
            let class = c.string("hardware_class", i)?;
            let model = c.string("model", i)?;
            let point = (|| {
                let spec = catalog::lookup(&model).ok_or("model not in the catalog")?;
                let precision: Precision =
                    c.string("precision", i).ok().and_then(|p| p.parse().ok()).ok_or("precision")?;
                let mode: Mode = c.string("mode", i).ok().and_then(|m| m.parse().ok()).ok_or("mode")?;
                let rates = k.rates.get(&class).ok_or("class not calibrated")?;
                let (batch, seq) = (c.u32("batch", i).map_err(|_| "batch")?, c.u32("seq_len", i).map_err(|_| "seq")?);
                point(spec, &class, rates, batch, seq, precision, mode).ok_or("calibration lacks the precision")
            })();
            let point = match point {
                Ok(p) => p,
                Err(why) => {
                    *k.left_out.entry(format!("{why} ({class})")).or_default() += 1;
                    continue;
                }
            };
            if let Some(bytes) = c.u64_opt("memory_bytes", i)?.filter(|b| *b > 0) {
                k.memory.push(Observation { point: point.clone(), value: bytes as f64 });
            }
            let seconds = c.f64("latency_p50_ns", i)?.unwrap_or_default() / 1e9;
            k.latency.push(Observation { point, value: seconds });
        }
    }
    Ok(k)
}

/// The two fitted predictors; memory is `Err` with the reason when it cannot be fitted.
pub struct Fitted {
    pub latency: Predictor,
    pub memory: Result<Predictor, String>,
    pub n_latency: usize,
}

pub fn fit(k: &Knowledge) -> anyhow::Result<Fitted> {
    let options = PredictOptions::DEFAULT;
    let latency = predict::fit(&k.latency, &options).context("fitting latency on the measured rows")?;
    let memory = predict::fit(&k.memory, &options).map_err(|e| format!("memory: {e}"));
    Ok(Fitted { latency, memory, n_latency: k.latency.len() })
}

/// One prediction as a `predictions` row.
pub fn predict_row(fitted: &Fitted, query: &Point, engine_name: &str, at_ms: i64) -> anyhow::Result<PredictionRow> {
    let latency = fitted.latency.predict(query)?;
    let memory = fitted.memory.as_ref().ok().and_then(|m| m.predict(query).ok());
    let ms =
        |p: &Prediction| Predicted { value: p.value * 1e3, low: p.interval.low() * 1e3, high: p.interval.high() * 1e3 };
    Ok(PredictionRow {
        predicted_at_ms: at_ms,
        model: query.model.clone(),
        family: query.family.clone(),
        hardware_class: query.hardware_class.clone(),
        batch: query.batch,
        seq_len: query.seq_len,
        precision: query.precision.clone(),
        mode: query.mode.clone(),
        engine: engine_name.to_string(),
        latency_ms: ms(&latency),
        latency_basis: latency.basis.to_string(),
        latency_support: u32::try_from(latency.n_support).unwrap_or(u32::MAX),
        peak_memory_bytes: memory.map(|p| Predicted { value: p.value, low: p.interval.low(), high: p.interval.high() }),
        memory_basis: memory.map(|p| p.basis.to_string()),
        coverage: PredictOptions::DEFAULT.coverage,
        training_rows: fitted.n_latency as u64,
        method: METHOD.to_string(),
        accelbench_version: agent::LONG_VERSION.to_string(),
    })
}

/// The sequence length a prediction uses when none is asked: the model's fixed one
/// (ViT), else the length its measured rows used most, else 128.
pub fn default_seq_len(model: &ModelSpec, k: &Knowledge) -> u32 {
    if let Some(fixed) = model.fixed_sequence_length() {
        return fixed;
    }
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for o in k.latency.iter().filter(|o| o.point.model == model.name) {
        *counts.entry(o.point.seq_len).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(seq, n)| (*n, std::cmp::Reverse(*seq))).map_or(128, |(seq, _)| seq)
}

/// The calibrated class called `class`, or an error listing the calibrated ones.
pub fn calibrated<'k>(k: &'k Knowledge, class: &str) -> anyhow::Result<&'k Rates> {
    match k.rates.get(class) {
        Some(r) => Ok(r),
        None if k.rates.is_empty() => bail!(
            "--hardware-class {class}: this warehouse has no calibrations at all (agents send them when they \
             register; `accelbench quickstart` stores its machine's)"
        ),
        None => bail!(
            "--hardware-class {class}: no calibration for this class; calibrated classes: {}",
            k.rates.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}
