//! `accelbench scorecard`: how often `regressions`, `predict` and `recommend` are wrong,
//! measured on the warehouse's own data.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use analysis::scorecard::{
    self, PickScore, PredictionBaseline, PredictionScore, PredictionScoreOptions, RecommendationScore,
    RecommendationScoreOptions, RegressionScore, RegressionScoreOptions, SplitScore,
};
use anyhow::bail;
use arrow::array::{ArrayRef, StringArray};
use clap::Args;

use super::common::WarehouseArgs;
use crate::answers::columns::rows;
use crate::answers::{predict, scorecard as load};
use crate::query::render::{self, Format};

#[derive(Debug, Args)]
#[command(long_about = "Measure how often the answers are wrong, on this warehouse's measured data \
(fixed seeds: the same data give the same numbers).\n\n\
Regressions: no-change series resampled from the noise study (every series with at least \
--min-runs ok runs) give the false-alarm rate with its 95% upper bound (Clopper-Pearson); \
slowdowns of 5% and 10% injected at a random run after the first 8 give the share detected \
within 3 runs (first bad run located within one); the old 5%-vs-mean rule, a z-score and Mann-Whitney on \
pooled samples are calibrated to the same false-alarm rate and scored the same way, and pooled \
Mann-Whitney at p <= 0.05 is shown against its nominal rate.\n\n\
Prediction: median absolute percentage error and 80% interval coverage with whole batch sizes, \
models, precisions and classes held out, next to nearest-neighbour, linear-in-batch and pure \
roofline on the same points.\n\n\
Recommendation: on measured data, and with each model's measurements hidden, how often the pick \
is the best class or within 10% of it, and (with --memory-limit) how often the pick is a class \
whose memory the model's measured peak does not fit.\n\n\
`ops/analysis/study.sh DIR` builds a data set for it with the system itself; docs/ANALYSIS.md \
records the numbers.")]
pub struct ScorecardArgs {
    /// A series is part of the noise study when it has at least this many ok runs
    #[arg(long, default_value_t = 30)]
    pub min_runs: u32,
    /// A/A evaluations of each regression rule
    #[arg(long, default_value_t = 5000)]
    pub evaluations: usize,
    /// Injected slowdowns per effect size
    #[arg(long, default_value_t = 2000)]
    pub power_evaluations: usize,
    /// The engine whose rows the prediction and recommendation scores use
    #[arg(long, default_value = "candle")]
    pub engine: String,
    /// Score recommendations as if CLASS could hold only GIB of memory (repeatable): a
    /// pick whose measured peak memory is above it counts as a violation
    #[arg(long = "memory-limit", value_name = "CLASS=GIB")]
    pub memory_limits: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub async fn execute(args: ScorecardArgs) -> anyhow::Result<ExitCode> {
    if args.evaluations == 0 || args.power_evaluations == 0 || args.min_runs < 2 {
        bail!("--evaluations and --power-evaluations must be at least 1, --min-runs at least 2");
    }
    let engine = args.warehouse.query_engine().await?;
    let (noise, k) = tokio::task::block_in_place(|| {
        anyhow::Ok((load::load_noise(&engine, args.min_runs)?, predict::load(&engine, &args.engine)?))
    })?;
    let mut out = std::io::stdout().lock();
    let mut scored = 0;
    if noise.is_empty() {
        eprintln!(
            "regressions: no series with {} or more ok runs (a noise study: ops/analysis/study.sh)",
            args.min_runs
        );
    } else {
        let options = RegressionScoreOptions {
            n_evaluations: args.evaluations,
            n_evaluations_power: args.power_evaluations,
            seed: args.seed,
            ..RegressionScoreOptions::DEFAULT
        };
        let n_runs: usize = noise.iter().map(|c| c.runs.len()).sum();
        eprintln!("regressions: {} series, {n_runs} runs", noise.len());
        let score = tokio::task::block_in_place(|| scorecard::regressions(&noise, &options))?;
        render::write(&mut out, &regression_rows(&score, &options)?, args.format)?;
        scored += 1;
    }
    if k.latency.is_empty() {
        eprintln!("prediction: no measured ok rows of {} on a calibrated class", args.engine);
    } else {
        eprintln!(
            "prediction: {} latency rows, {} memory rows, {} classes",
            k.latency.len(),
            k.memory.len(),
            k.rates.len()
        );
        let mut options = PredictionScoreOptions::DEFAULT;
        options.predict.seed = args.seed;
        let score = tokio::task::block_in_place(|| scorecard::prediction(&k.latency, &k.memory, &options))?;
        render::write(&mut out, &prediction_rows(&score)?, args.format)?;
        let mut options = RecommendationScoreOptions::default();
        options.predict.seed = args.seed;
        options.memory_limit_bytes = memory_limits(&args.memory_limits, &k.rates)?;
        let score = tokio::task::block_in_place(|| scorecard::recommendation(&k.latency, &k.memory, &options))?;
        render::write(&mut out, &recommendation_rows(&score)?, args.format)?;
        scored += 1;
    }
    if scored == 0 {
        bail!("nothing to score in this warehouse (see above)");
    }
    Ok(ExitCode::SUCCESS)
}

/// `--memory-limit CLASS=GIB` values as bytes per class; a class must be one of the
/// calibrated classes scored.
fn memory_limits<T>(values: &[String], classes: &BTreeMap<String, T>) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut limits = BTreeMap::new();
    for value in values {
        let Some((class, gib)) = value.rsplit_once('=') else {
            bail!("--memory-limit {value}: expected CLASS=GIB, e.g. \"cpu/Intel Xeon (1 thread)=0.5\"");
        };
        let gib: f64 =
            gib.trim().parse().map_err(|_| anyhow::anyhow!("--memory-limit {value}: {gib} is not a number of GiB"))?;
        if !(gib.is_finite() && gib > 0.0) {
            bail!("--memory-limit {value}: the limit must be a positive number of GiB");
        }
        if !classes.contains_key(class) {
            let known: Vec<&str> = classes.keys().map(String::as_str).collect();
            bail!(
                "--memory-limit {value}: no calibrated class {class:?} in this warehouse (there are: {})",
                known.join(", ")
            );
        }
        limits.insert(class.to_string(), gib * (1u64 << 30) as f64);
    }
    Ok(limits)
}

/// A column of text cells.
fn text(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn pct(x: f64) -> String {
    format!("{:.2} %", 100.0 * x)
}

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or("-".into(), f)
}

fn regression_rows(s: &RegressionScore, options: &RegressionScoreOptions) -> anyhow::Result<crate::query::QueryOutput> {
    // One row per rule: ours, the calibrated baselines, the conventional pooled test.
    let mut rule = vec![format!(
        "ours: E-divisive + latest runs; {} runs a series, changes from run {} on",
        s.series_len, options.min_history
    )];
    let detect = &options.detect;
    let latest = detect.latest.map_or("off".to_string(), |l| {
        format!("latest {} runs t p ≤ {} and rank p ≤ {}", l.n_latest, l.significance, l.rank_significance)
    });
    let mut threshold = vec![format!(
        "change points p ≤ {}; {latest}; min effect {}",
        detect.change_points.significance,
        pct(detect.min_effect)
    )];
    let mut fa = vec![format!("{} of {}", s.detector.false_alarms.n_alarmed, s.detector.false_alarms.n_series)];
    let mut rate = vec![pct(s.detector.false_alarms.rate)];
    let mut upper = vec![pct(s.detector.false_alarms.upper_95)];
    let power = |p: &[scorecard::Power], effect: f64| {
        p.iter().find(|x| (x.effect - effect).abs() < 1e-9).map_or("-".into(), |x| pct(x.detection_rate))
    };
    let mut p5 = vec![power(&s.detector.power, 0.05)];
    let mut p10 = vec![power(&s.detector.power, 0.10)];
    for r in &s.rules {
        rule.push(format!("{} (calibrated)", r.rule));
        threshold.push(format!("{:.4}", r.threshold));
        fa.push(format!("{} of {}", r.false_alarms.n_alarmed, r.false_alarms.n_series));
        rate.push(pct(r.false_alarms.rate));
        upper.push(pct(r.false_alarms.upper_95));
        p5.push(power(&r.power, 0.05));
        p10.push(power(&r.power, 0.10));
    }
    let c = &s.pooled_conventional;
    rule.push("Mann-Whitney on pooled samples, as asv (not calibrated)".into());
    threshold.push(format!("p ≤ {}; {} of decisions flagged", c.significance, pct(c.decision_rate)));
    fa.push(format!("{} of {}", c.series.n_alarmed, c.series.n_series));
    rate.push(pct(c.series.rate));
    upper.push(pct(c.series.upper_95));
    p5.push("-".into());
    p10.push("-".into());
    let n = rule.len();
    rows(vec![
        ("section", text(vec!["regressions".into(); n])),
        ("rule", text(rule)),
        ("setting", text(threshold)),
        ("a/a alarms", text(fa)),
        ("false alarm rate", text(rate)),
        ("95% upper bound", text(upper)),
        ("detected within 3 runs, 5 %", text(p5)),
        ("detected within 3 runs, 10 %", text(p10)),
    ])
}

fn prediction_rows(s: &PredictionScore) -> anyhow::Result<crate::query::QueryOutput> {
    let splits: [(&str, &Option<SplitScore>); 6] = [
        ("latency, leave one batch size out", &s.leave_one_batch_out),
        ("latency, batch ≤ 8 → 16-64", &s.small_to_large_batch),
        ("latency, leave one model out", &s.leave_one_model_out),
        ("latency, leave one precision out", &s.leave_one_precision_out),
        ("latency, leave one class out", &s.leave_one_class_out),
        ("memory, leave one model out", &s.memory_leave_one_model_out),
    ];
    let mut cols: [Vec<String>; 8] = Default::default();
    for (name, split) in splits {
        let row = match split {
            None => [
                name.to_string(),
                "-".into(),
                "not scored (too few to hold out)".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ],
            Some(sc) => {
                let baseline = |i: usize| {
                    let which = PredictionBaseline::ALL[i];
                    sc.baselines.iter().find(|b| b.baseline == which).map_or("-".into(), |b| {
                        match (b.mdape, b.ratio_to_ours) {
                            (Some(m), Some(r)) => format!("{} ({:.1}× ours, {} pts)", pct(m), r, b.n_answered),
                            (Some(m), None) => format!("{} ({} pts)", pct(m), b.n_answered),
                            _ => format!("no answer ({} pts)", b.n_answered),
                        }
                    })
                };
                [
                    name.to_string(),
                    sc.n_points.to_string(),
                    pct(sc.mdape),
                    pct(sc.coverage),
                    opt(sc.rank_correlation, |r| format!("{r:.3}")),
                    baseline(0),
                    baseline(1),
                    baseline(2),
                ]
            }
        };
        for (col, cell) in cols.iter_mut().zip(row) {
            col.push(cell);
        }
    }
    let [split, n, mdape, coverage, rank, nn, linear, roof] = cols;
    let [b0, b1, b2] = PredictionBaseline::ALL.map(|b| format!("{} MdAPE", b.as_str()));
    let n_rows = split.len();
    rows(vec![
        ("section", text(vec!["prediction".into(); n_rows])),
        ("split", text(split)),
        ("held-out points", text(n)),
        ("MdAPE (ours)", text(mdape)),
        ("80% interval coverage", text(coverage)),
        ("rank correlation over models", text(rank)),
        (b0.as_str(), text(nn)),
        (b1.as_str(), text(linear)),
        (b2.as_str(), text(roof)),
    ])
}

fn recommendation_rows(s: &RecommendationScore) -> anyhow::Result<crate::query::QueryOutput> {
    let picks: [(&str, &PickScore); 2] =
        [("measured rows", &s.measured), ("each model's rows hidden (predicted)", &s.hidden_model)];
    let col = |f: &dyn Fn(&PickScore) -> String| text(picks.iter().map(|(_, p)| f(p)).collect());
    rows(vec![
        ("section", text(vec!["recommendation".into(); 2])),
        ("picks from", text(picks.iter().map(|(n, _)| n.to_string()).collect())),
        ("classes", text(vec![s.n_classes.to_string(); 2])),
        ("queries", col(&|p| p.n_queries.to_string())),
        ("best class picked", col(&|p| opt(p.share_best, pct))),
        ("within 10 % of best", col(&|p| opt(p.share_within, pct))),
        ("mean regret", col(&|p| opt(p.mean_regret, pct))),
        ("memory violations", col(&|p| p.n_memory_violations.to_string())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_name_their_class_and_size() {
        let classes: BTreeMap<String, ()> = [("cpu/X".to_string(), ()), ("cpu/X (1 thread)".to_string(), ())].into();
        let limits = memory_limits(&["cpu/X (1 thread)=0.5".into()], &classes).expect("a known class");
        assert_eq!(limits.get("cpu/X (1 thread)"), Some(&(512.0 * 1024.0 * 1024.0)));
        for (bad, says) in [
            ("cpu/X", "expected CLASS=GIB"),
            ("cpu/X=lots", "lots is not a number"),
            ("cpu/X=-1", "positive number"),
            ("cpu/Y=1", "no calibrated class \"cpu/Y\" in this warehouse (there are: cpu/X, cpu/X (1 thread))"),
        ] {
            let err = memory_limits(&[bad.into()], &classes).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
