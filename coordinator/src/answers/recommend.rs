//! `accelbench recommend`: which hardware class should run a model, by an objective.
//! Each class is represented by its best configuration (batch, precision, engine) among
//! its newest `ok` results that meet the constraints; classes that cannot are listed
//! with the reason. A calibrated class with no result of the model gets predicted
//! configurations ([`super::predict`]), ranked after every measured one and marked
//! `predicted` with their interval; a predicted configuration meets a memory limit only
//! if its interval's high end does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};

use shared::catalog::{self, Mode, Precision};

use super::columns::Columns;
use super::predict;
use crate::query::{sql_string, QueryEngine, QueryOutput};

/// What "best" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// Lowest median latency of one batch.
    Latency,
    /// Most items per second.
    Throughput,
    /// Most items per second per watt (needs measured power).
    ThroughputPerWatt,
    /// Most items per unit of money (needs a price per hour for the class).
    Cost,
}

/// The question.
#[derive(Debug, Clone)]
pub struct Ask {
    pub model: String,
    pub mode: String,
    pub objective: Objective,
    pub batch: Option<u32>,
    pub precision: Option<String>,
    pub max_latency_ms: Option<f64>,
    pub max_memory_gib: Option<f64>,
    /// Price per hour of each hardware class (any currency), for `cost`.
    pub prices: BTreeMap<String, f64>,
}

/// One measured configuration of the model on a class.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub hardware_class: String,
    pub batch: u32,
    pub precision: String,
    pub engine: String,
    pub p50_ns: f64,
    pub throughput: Option<f64>,
    /// Device memory on an accelerator, host memory on a CPU.
    pub memory_bytes: Option<u64>,
    pub power_watts: Option<f64>,
    /// The result it comes from; empty for a prediction.
    pub result_id: String,
    /// `None` for a measured row; a prediction's intervals otherwise.
    pub predicted: Option<Bounds>,
}

/// A predicted configuration's 80 % intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    pub latency_ms: (f64, f64),
    pub memory_bytes: Option<(f64, f64)>,
    pub basis: String,
}

/// What the warehouse holds for the model: its `ok` configurations, and per class with
/// none the reason its newest attempt gave.
pub struct Measured {
    pub candidates: Vec<Candidate>,
    pub not_ok: BTreeMap<String, String>,
}

pub fn load(engine: &QueryEngine, model: &str, mode: &str) -> anyhow::Result<Measured> {
    let sql = format!(
        "SELECT hardware_class, batch, precision, engine, status, coalesce(error, '') AS error,
                latency_p50_ns, throughput_items_per_s,
                CASE WHEN hardware_class LIKE 'cpu/%' THEN peak_host_bytes ELSE peak_device_bytes END AS memory_bytes,
                mean_power_watts, result_id
         FROM latest_results WHERE model = {} AND mode = {}
         ORDER BY hardware_class, batch, precision",
        sql_string(model),
        sql_string(mode)
    );
    let rows = engine.query(&sql)?;
    let mut measured = Measured { candidates: Vec::new(), not_ok: BTreeMap::new() };
    for batch in &rows.batches {
        let c = Columns::new(batch);
        for i in 0..batch.num_rows() {
            let class = c.string("hardware_class", i)?;
            let p50 = c.f64("latency_p50_ns", i)?;
            match (c.string("status", i)?.as_str(), p50) {
                ("ok", Some(p50_ns)) => measured.candidates.push(Candidate {
                    hardware_class: class,
                    batch: c.u32("batch", i)?,
                    precision: c.string("precision", i)?,
                    engine: c.string("engine", i)?,
                    p50_ns,
                    throughput: c.f64("throughput_items_per_s", i)?,
                    memory_bytes: c.u64_opt("memory_bytes", i)?,
                    power_watts: c.f64("mean_power_watts", i)?,
                    result_id: c.string("result_id", i)?,
                    predicted: None,
                }),
                (status, _) => {
                    let why = format!("{status}: {}", c.string("error", i)?);
                    measured.not_ok.entry(class).or_insert(why);
                }
            }
        }
    }
    let ok_classes: Vec<String> = measured.candidates.iter().map(|c| c.hardware_class.clone()).collect();
    measured.not_ok.retain(|class, _| !ok_classes.contains(class));
    Ok(measured)
}

/// Adds predicted configurations for every calibrated class that has no result of the
/// model (an `unsupported` or failed one counts: it is not predicted away): at the asked batch (else the batches the model was measured at anywhere, else
/// 1, 8 and 32) and precision (else the ones measured, else fp32), with the engine the
/// predictor learned from. A class that cannot be predicted is returned with the reason.
pub fn add_predictions(
    measured: &mut Measured,
    k: &predict::Knowledge,
    fitted: &predict::Fitted,
    ask: &Ask,
    engine_name: &str,
) -> Vec<Excluded> {
    let (Some(model), Ok(mode)) = (catalog::lookup(&ask.model), ask.mode.parse::<Mode>()) else {
        return Vec::new();
    };
    // A class with any result of the model is judged by it: one where the model was
    // unsupported or failed is not predicted to run.
    let measured_classes: BTreeSet<String> =
        measured.candidates.iter().map(|c| c.hardware_class.clone()).chain(measured.not_ok.keys().cloned()).collect();
    let mut batches: BTreeSet<u32> = measured.candidates.iter().map(|c| c.batch).collect();
    let mut precisions: BTreeSet<String> = measured.candidates.iter().map(|c| c.precision.clone()).collect();
    if let Some(b) = ask.batch {
        batches = BTreeSet::from([b]);
    } else if batches.is_empty() {
        batches = BTreeSet::from([1, 8, 32]);
    }
    if let Some(p) = &ask.precision {
        precisions = BTreeSet::from([p.clone()]);
    } else if precisions.is_empty() {
        precisions = BTreeSet::from(["fp32".to_string()]);
    }
    let seq = predict::default_seq_len(model, k);
    let mut excluded = Vec::new();
    for (class, rates) in k.rates.iter().filter(|(class, _)| !measured_classes.contains(*class)) {
        let mut found = 0;
        for precision in precisions.iter().filter_map(|p| p.parse::<Precision>().ok()) {
            if !catalog::is_runnable(model.name, precision, mode) {
                continue;
            }
            for &batch in &batches {
                let Some(query) = predict::point(model, class, rates, batch, seq, precision, mode) else { continue };
                let Ok(row) = predict::predict_row(fitted, &query, engine_name, 0) else { continue };
                found += 1;
                measured.candidates.push(Candidate {
                    hardware_class: class.clone(),
                    batch,
                    precision: precision.to_string(),
                    engine: engine_name.to_string(),
                    p50_ns: row.latency_ms.value * 1e6,
                    throughput: Some(f64::from(batch) * 1e3 / row.latency_ms.value),
                    memory_bytes: row.peak_memory_bytes.map(|m| m.value as u64),
                    power_watts: None,
                    result_id: String::new(),
                    predicted: Some(Bounds {
                        latency_ms: (row.latency_ms.low, row.latency_ms.high),
                        memory_bytes: row.peak_memory_bytes.map(|m| (m.low, m.high)),
                        basis: row.latency_basis,
                    }),
                });
            }
        }
        if found == 0 {
            excluded.push(Excluded {
                hardware_class: class.clone(),
                reason: "not measured, and its calibrations cannot place the asked precisions".into(),
            });
        }
    }
    excluded
}

/// A class in the ranking, by its best configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub candidate: Candidate,
    /// The objective's value: ms for latency, items/s, items/s/W, items per unit of money.
    pub score: f64,
}

/// A class left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    pub hardware_class: String,
    pub reason: String,
}

/// Ranks the classes, best first.
pub fn rank(measured: Measured, ask: &Ask) -> (Vec<Ranked>, Vec<Excluded>) {
    let mut by_class: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for c in measured.candidates {
        by_class.entry(c.hardware_class.clone()).or_default().push(c);
    }
    let mut ranked = Vec::new();
    let mut excluded: Vec<Excluded> = measured
        .not_ok
        .into_iter()
        .map(|(hardware_class, why)| Excluded { hardware_class, reason: format!("no ok result ({why})") })
        .collect();
    for (class, candidates) in by_class {
        let mut reasons = Vec::new();
        let best = candidates
            .into_iter()
            .filter_map(|c| match score(&c, ask) {
                Ok(score) => Some(Ranked { candidate: c, score }),
                Err(why) => {
                    reasons.push(why);
                    None
                }
            })
            .max_by(|a, b| better(ask.objective, a.score, b.score));
        match best {
            Some(r) => ranked.push(r),
            None => {
                reasons.sort();
                reasons.dedup();
                excluded.push(Excluded { hardware_class: class, reason: reasons.join("; ") });
            }
        }
    }
    // Measured classes first, then predicted ones, each best first.
    ranked.sort_by(|a, b| {
        (a.candidate.predicted.is_some()).cmp(&b.candidate.predicted.is_some()).then(better(
            ask.objective,
            b.score,
            a.score,
        ))
    });
    (ranked, excluded)
}

/// `Greater` when `a` is the better score.
fn better(objective: Objective, a: f64, b: f64) -> std::cmp::Ordering {
    match objective {
        Objective::Latency => b.total_cmp(&a),
        _ => a.total_cmp(&b),
    }
}

/// The objective's value of one configuration, or why it does not qualify.
fn score(c: &Candidate, ask: &Ask) -> Result<f64, String> {
    if ask.batch.is_some_and(|b| b != c.batch) {
        return Err(format!("no ok result at batch {}", ask.batch.unwrap_or_default()));
    }
    if ask.precision.as_deref().is_some_and(|p| p != c.precision) {
        return Err(format!("no ok result in {}", ask.precision.as_deref().unwrap_or_default()));
    }
    let p50_ms = c.p50_ns / 1e6;
    if let Some(max) = ask.max_latency_ms.filter(|max| p50_ms > *max) {
        return Err(format!("p50 {p50_ms:.2} ms > {max} ms at batch {} {}", c.batch, c.precision));
    }
    if let Some(max) = ask.max_memory_gib {
        // A prediction must fit at its interval's high end: a recommendation that does not
        // fit in memory is worse than none.
        let bytes = match &c.predicted {
            Some(b) => b.memory_bytes.map(|(_, high)| high).ok_or("peak memory not predicted")?,
            None => c.memory_bytes.ok_or("peak memory not measured")? as f64,
        };
        let gib = bytes / (1u64 << 30) as f64;
        if gib > max {
            return Err(format!("peak memory {gib:.2} GiB > {max} GiB at batch {} {}", c.batch, c.precision));
        }
    }
    let throughput = || c.throughput.ok_or_else(|| "throughput not measured".to_string());
    match ask.objective {
        Objective::Latency => Ok(p50_ms),
        Objective::Throughput => throughput(),
        Objective::ThroughputPerWatt => {
            let watts = c.power_watts.filter(|w| *w > 0.0).ok_or("power not measured on this class")?;
            Ok(throughput()? / watts)
        }
        Objective::Cost => {
            let price = ask.prices.get(&c.hardware_class).ok_or("no price for this class in the prices file")?;
            Ok(throughput()? * 3600.0 / price)
        }
    }
}

/// The ranking as rows for the one renderer.
pub fn to_rows(ranked: &[Ranked], objective: Objective) -> anyhow::Result<QueryOutput> {
    let text = |f: &dyn Fn(&Ranked) -> String| -> ArrayRef {
        Arc::new(StringArray::from(ranked.iter().map(f).collect::<Vec<_>>()))
    };
    let num = |f: &dyn Fn(&Ranked) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(ranked.iter().map(f).collect::<Vec<_>>()))
    };
    let score_name = match objective {
        Objective::Latency => "p50_ms",
        Objective::Throughput => "items_per_s",
        Objective::ThroughputPerWatt => "items_per_s_per_watt",
        Objective::Cost => "items_per_price_unit",
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("rank", Arc::new(UInt32Array::from((1..=ranked.len() as u32).collect::<Vec<_>>()))),
        ("hardware_class", text(&|r| r.candidate.hardware_class.clone())),
        ("batch", Arc::new(UInt32Array::from(ranked.iter().map(|r| r.candidate.batch).collect::<Vec<_>>()))),
        ("precision", text(&|r| r.candidate.precision.clone())),
        ("engine", text(&|r| r.candidate.engine.clone())),
        (score_name, num(&|r| Some(r.score))),
        ("latency_p50_ms", num(&|r| Some(r.candidate.p50_ns / 1e6))),
        ("throughput_items_per_s", num(&|r| r.candidate.throughput)),
        ("peak_memory_gib", num(&|r| r.candidate.memory_bytes.map(|b| b as f64 / (1u64 << 30) as f64))),
        ("mean_power_watts", num(&|r| r.candidate.power_watts)),
        ("latency_low_ms", num(&|r| r.candidate.predicted.as_ref().map(|b| b.latency_ms.0))),
        ("latency_high_ms", num(&|r| r.candidate.predicted.as_ref().map(|b| b.latency_ms.1))),
        (
            "source",
            text(&|r| r.candidate.predicted.as_ref().map_or("measured".into(), |b| format!("predicted ({})", b.basis))),
        ),
        ("result_id", text(&|r| r.candidate.result_id.clone())),
    ];
    super::columns::rows(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(class: &str, batch: u32, p50_ms: f64, throughput: f64, mem_gib: f64, watts: Option<f64>) -> Candidate {
        Candidate {
            hardware_class: class.into(),
            batch,
            precision: "fp32".into(),
            engine: "candle".into(),
            p50_ns: p50_ms * 1e6,
            throughput: Some(throughput),
            memory_bytes: Some((mem_gib * (1u64 << 30) as f64) as u64),
            power_watts: watts,
            result_id: format!("{class}-{batch}"),
            predicted: None,
        }
    }

    fn ask(objective: Objective) -> Ask {
        Ask {
            model: "m".into(),
            mode: "inference".into(),
            objective,
            batch: None,
            precision: None,
            max_latency_ms: None,
            max_memory_gib: None,
            prices: BTreeMap::new(),
        }
    }

    fn measured() -> Measured {
        Measured {
            candidates: vec![
                cand("cpu/a", 1, 10.0, 100.0, 1.0, None),
                cand("cpu/a", 8, 40.0, 200.0, 2.0, None),
                cand("cuda/g", 1, 2.0, 500.0, 3.0, Some(100.0)),
                cand("cuda/g", 8, 4.0, 2000.0, 9.0, Some(250.0)),
            ],
            not_ok: BTreeMap::from([("metal/m".to_string(), "unsupported: no metal backend".to_string())]),
        }
    }

    fn order(ranked: &[Ranked]) -> Vec<(&str, u32, f64)> {
        ranked.iter().map(|r| (r.candidate.hardware_class.as_str(), r.candidate.batch, r.score)).collect()
    }

    #[test]
    fn each_objective_ranks_classes_by_their_best_configuration() {
        let (ranked, excluded) = rank(measured(), &ask(Objective::Latency));
        assert_eq!(order(&ranked), vec![("cuda/g", 1, 2.0), ("cpu/a", 1, 10.0)]);
        assert_eq!(
            excluded,
            vec![Excluded {
                hardware_class: "metal/m".into(),
                reason: "no ok result (unsupported: no metal backend)".into()
            }]
        );
        let (ranked, _) = rank(measured(), &ask(Objective::Throughput));
        assert_eq!(order(&ranked), vec![("cuda/g", 8, 2000.0), ("cpu/a", 8, 200.0)]);
        // Per watt: 500/100 = 5 at batch 1 vs 2000/250 = 8 at batch 8; the CPU has no power.
        let (ranked, excluded) = rank(measured(), &ask(Objective::ThroughputPerWatt));
        assert_eq!(order(&ranked), vec![("cuda/g", 8, 8.0)]);
        assert!(excluded.iter().any(|e| e.hardware_class == "cpu/a" && e.reason == "power not measured on this class"));
        // Cost: the GPU at 4/hour gives 2000*3600/4 = 1.8M items per unit; the CPU at 0.1/hour 7.2M.
        let mut cost = ask(Objective::Cost);
        cost.prices = BTreeMap::from([("cpu/a".into(), 0.1), ("cuda/g".into(), 4.0)]);
        let (ranked, _) = rank(measured(), &cost);
        assert_eq!(order(&ranked), vec![("cpu/a", 8, 7_200_000.0), ("cuda/g", 8, 1_800_000.0)]);
    }

    #[test]
    fn constraints_exclude_with_the_reason() {
        let mut a = ask(Objective::Throughput);
        a.max_memory_gib = Some(2.5);
        let (ranked, excluded) = rank(measured(), &a);
        assert_eq!(order(&ranked), vec![("cpu/a", 8, 200.0)]);
        let gpu = excluded.iter().find(|e| e.hardware_class == "cuda/g").expect("excluded");
        assert!(gpu.reason.contains("peak memory 3.00 GiB > 2.5 GiB at batch 1"), "{}", gpu.reason);
        let mut a = ask(Objective::Throughput);
        (a.max_latency_ms, a.batch) = (Some(20.0), Some(8));
        let (ranked, excluded) = rank(measured(), &a);
        assert_eq!(order(&ranked), vec![("cuda/g", 8, 2000.0)]);
        let cpu = excluded.iter().find(|e| e.hardware_class == "cpu/a").expect("excluded");
        assert!(
            cpu.reason.contains("no ok result at batch 8") || cpu.reason.contains("p50 40.00 ms > 20 ms"),
            "{}",
            cpu.reason
        );
        assert_eq!(to_rows(&ranked, Objective::Throughput).expect("rows").n_rows(), 1);
    }
}
