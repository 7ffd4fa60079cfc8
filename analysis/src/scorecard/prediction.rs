//! The prediction scorecard: [`crate::predict::fit`] refitted with whole things held
//! out, and judged on the held-out rows alone, beside its baselines on the same rows.
//!
//! Splits (each fold trains on the rows it keeps and predicts every row it holds out):
//!
//! - leave one batch out: a fold per distinct batch;
//! - small to large: train on batches up to `small_batch_max` (8), predict those from
//!   `large_batch_min` to `large_batch_max` (16 to 64);
//! - leave one model out, leave one precision out, leave one hardware class out: a fold
//!   per distinct value;
//! - memory, leave one model out, on the peak-memory rows.
//!
//! A split with fewer than two distinct values to hold out (one class, say), nothing on
//! one side, or a fold that would train on fewer than [`MIN_OBSERVATIONS`] rows, has no
//! score: `None`, rather than an error that would cost the other splits theirs. Per split: the number of held-out points, the
//! median absolute percentage error |predicted − true| / true (MdAPE) over them all,
//! the share of truths inside their 80 % interval, and for each baseline the points it
//! could answer, its MdAPE over them, and ours over the same points with the ratio of the
//! two, so that a baseline that answers only the easy points is not flattered. For
//! leave one model out, also Spearman's rank correlation over models of the predicted
//! and the true geometric-mean value over each model's held-out rows: whether the
//! predictor orders models it has never seen as they measure.
//!
//! Must never: let a held-out row into its own fold's fit or its baselines' rows.

use super::{check_option, median, spearman, ScoreError};
use crate::predict::baselines::{linear_in_batch, nearest_neighbour, roofline};
use crate::predict::{first_invalid, fit, Observation, Point, PredictOptions, MIN_OBSERVATIONS};

/// How to score; start from [`PredictionScoreOptions::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictionScoreOptions {
    /// The predictor as scored, its seed included.
    pub predict: PredictOptions,
    /// The small-to-large split trains on batches up to this one…
    pub small_batch_max: u32,
    /// …and predicts the batches from this one…
    pub large_batch_min: u32,
    /// …to this one, inclusive.
    pub large_batch_max: u32,
}

impl PredictionScoreOptions {
    pub const DEFAULT: PredictionScoreOptions = PredictionScoreOptions {
        predict: PredictOptions::DEFAULT,
        small_batch_max: 8,
        large_batch_min: 16,
        large_batch_max: 64,
    };
}

/// A predictor that [`crate::predict::fit`] is scored against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PredictionBaseline {
    NearestNeighbour,
    LinearInBatch,
    /// Latency only: it has nothing to say of memory.
    Roofline,
}

impl PredictionBaseline {
    pub const ALL: [PredictionBaseline; 3] =
        [PredictionBaseline::NearestNeighbour, PredictionBaseline::LinearInBatch, PredictionBaseline::Roofline];

    pub fn as_str(self) -> &'static str {
        match self {
            PredictionBaseline::NearestNeighbour => "nearest-neighbour",
            PredictionBaseline::LinearInBatch => "linear-in-batch",
            PredictionBaseline::Roofline => "roofline",
        }
    }

    /// Its answer for `query` from the fold's training rows; a value that is not finite
    /// is no answer.
    fn predict(self, train: &[Observation], query: &Point) -> Option<f64> {
        let value = match self {
            PredictionBaseline::NearestNeighbour => nearest_neighbour(train, query)?,
            PredictionBaseline::LinearInBatch => linear_in_batch(train, query)?,
            PredictionBaseline::Roofline => roofline(query),
        };
        value.is_finite().then_some(value)
    }
}

/// A baseline on one split.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineError {
    pub baseline: PredictionBaseline,
    /// Held-out points it gave a value for.
    pub n_answered: usize,
    /// Its MdAPE over those points; `None` if it answered none.
    pub mdape: Option<f64>,
    /// Our MdAPE over the same points.
    pub ours_mdape: Option<f64>,
    /// `mdape / ours_mdape`: above 1 where the baseline errs more. `None` without both,
    /// or when ours is 0.
    pub ratio_to_ours: Option<f64>,
}

/// The predictor on one split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitScore {
    /// Folds, one per held-out value (one for small to large).
    pub n_folds: usize,
    /// Held-out points over all folds.
    pub n_points: usize,
    /// Median absolute percentage error, as a fraction: 0.1 is 10 %.
    pub mdape: f64,
    /// Share of held-out truths inside their prediction interval.
    pub coverage: f64,
    /// Leave one model out only: Spearman's correlation over models of the predicted and
    /// true geometric mean of each model's held-out rows (`None` below 3 models).
    pub rank_correlation: Option<f64>,
    /// In [`PredictionBaseline::ALL`]'s order, less roofline for memory.
    pub baselines: Vec<BaselineError>,
}

/// The prediction scorecard; a split that cannot be formed or fitted is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionScore {
    pub leave_one_batch_out: Option<SplitScore>,
    pub small_to_large_batch: Option<SplitScore>,
    pub leave_one_model_out: Option<SplitScore>,
    pub leave_one_precision_out: Option<SplitScore>,
    pub leave_one_class_out: Option<SplitScore>,
    pub memory_leave_one_model_out: Option<SplitScore>,
}

/// Scores the predictor on `latency` rows (seconds per iteration) and, leaving one model
/// out, on `memory` rows (peak bytes; may be empty). See the module doc.
pub fn prediction(
    latency: &[Observation],
    memory: &[Observation],
    options: &PredictionScoreOptions,
) -> Result<PredictionScore, ScoreError> {
    check_options(options)?;
    check_observations("latency", latency)?;
    if latency.is_empty() {
        return Err(ScoreError::NoObservations { set: "latency" });
    }
    check_observations("memory", memory)?;
    let latency_split = Split { observations: latency, options, baselines: &PredictionBaseline::ALL };
    let memory_split = Split { observations: memory, options, baselines: &PredictionBaseline::ALL[..2] };
    Ok(PredictionScore {
        leave_one_batch_out: latency_split.score("leave one batch out", &by_value(latency, |p| p.batch), false)?,
        small_to_large_batch: latency_split.score("small to large batch", &small_to_large(latency, options), false)?,
        leave_one_model_out: latency_split.score(
            "leave one model out",
            &by_value(latency, |p| p.model.clone()),
            true,
        )?,
        leave_one_precision_out: latency_split.score(
            "leave one precision out",
            &by_value(latency, |p| p.precision.clone()),
            false,
        )?,
        leave_one_class_out: latency_split.score(
            "leave one class out",
            &by_value(latency, |p| p.hardware_class.clone()),
            false,
        )?,
        memory_leave_one_model_out: memory_split.score(
            "memory, leave one model out",
            &by_value(memory, |p| p.model.clone()),
            true,
        )?,
    })
}

/// Rows to train on and rows to predict, by index, and what was held out.
struct Fold {
    held_out: String,
    train: Vec<usize>,
    test: Vec<usize>,
}

/// A fold per distinct value of `key`, holding out its rows; none unless there are two.
fn by_value<K: Ord + std::fmt::Display>(observations: &[Observation], key: impl Fn(&Point) -> K) -> Vec<Fold> {
    let keys: Vec<K> = observations.iter().map(|o| key(&o.point)).collect();
    let mut values: Vec<&K> = keys.iter().collect();
    values.sort_unstable();
    values.dedup();
    if values.len() < 2 {
        return Vec::new();
    }
    let rows = |keep: &dyn Fn(&K) -> bool| (0..keys.len()).filter(|&idx| keep(&keys[idx])).collect();
    let fold =
        |value: &K| Fold { held_out: value.to_string(), train: rows(&|k| k != value), test: rows(&|k| k == value) };
    values.into_iter().map(fold).collect()
}

fn small_to_large(observations: &[Observation], options: &PredictionScoreOptions) -> Vec<Fold> {
    let batches = |keep: &dyn Fn(u32) -> bool| -> Vec<usize> {
        (0..observations.len()).filter(|&idx| keep(observations[idx].point.batch)).collect()
    };
    let train = batches(&|b| b <= options.small_batch_max);
    let test = batches(&|b| (options.large_batch_min..=options.large_batch_max).contains(&b));
    if train.is_empty() || test.is_empty() {
        return Vec::new();
    }
    let held_out = format!("batches {} to {}", options.large_batch_min, options.large_batch_max);
    vec![Fold { held_out, train, test }]
}

/// A held-out point's truth and what each predictor said.
struct Outcome {
    truth: f64,
    predicted: f64,
    inside: bool,
    baselines: Vec<Option<f64>>,
}

/// The rows and predictors of one kind of split (latency or memory).
struct Split<'a> {
    observations: &'a [Observation],
    options: &'a PredictionScoreOptions,
    baselines: &'a [PredictionBaseline],
}

impl Split<'_> {
    /// Runs every fold; `None` without folds or with one too small to fit. With
    /// `rank_folds`, each fold is one model to rank.
    fn score(&self, name: &'static str, folds: &[Fold], rank_folds: bool) -> Result<Option<SplitScore>, ScoreError> {
        if folds.is_empty() || folds.iter().any(|fold| fold.train.len() < MIN_OBSERVATIONS) {
            return Ok(None);
        }
        let per_fold = folds.iter().map(|fold| self.fold(name, fold)).collect::<Result<Vec<_>, _>>()?;
        let rank_correlation = if rank_folds { spearman(&geometric_means(&per_fold)) } else { None };
        let outcomes: Vec<Outcome> = per_fold.into_iter().flatten().collect();
        let apes: Vec<f64> = outcomes.iter().map(|o| ape(o.predicted, o.truth)).collect();
        let n_inside = outcomes.iter().filter(|o| o.inside).count();
        Ok(Some(SplitScore {
            n_folds: folds.len(),
            n_points: outcomes.len(),
            // Every fold holds out at least one row, so there is an error to take the median of.
            mdape: median(&apes).unwrap_or(f64::NAN),
            coverage: n_inside as f64 / outcomes.len() as f64,
            rank_correlation,
            baselines: (0..self.baselines.len()).map(|b| baseline_error(self.baselines[b], b, &outcomes)).collect(),
        }))
    }

    fn fold(&self, name: &'static str, fold: &Fold) -> Result<Vec<Outcome>, ScoreError> {
        let failed = |source| ScoreError::Predict { split: name, held_out: fold.held_out.clone(), source };
        let train: Vec<Observation> = fold.train.iter().map(|&idx| self.observations[idx].clone()).collect();
        let predictor = fit(&train, &self.options.predict).map_err(failed)?;
        let mut outcomes = Vec::with_capacity(fold.test.len());
        for &idx in &fold.test {
            let Observation { point, value: truth } = &self.observations[idx];
            let prediction = predictor.predict(point).map_err(failed)?;
            outcomes.push(Outcome {
                truth: *truth,
                predicted: prediction.value,
                inside: prediction.interval.contains(*truth),
                baselines: self.baselines.iter().map(|b| b.predict(&train, point)).collect(),
            });
        }
        Ok(outcomes)
    }
}

/// |predicted − truth| / truth; truth is above 0 (checked).
fn ape(predicted: f64, truth: f64) -> f64 {
    (predicted - truth).abs() / truth
}

/// Per fold, the geometric means of (predicted, true) over its outcomes.
fn geometric_means(per_fold: &[Vec<Outcome>]) -> Vec<(f64, f64)> {
    let mean_log = |outcomes: &[Outcome], value: fn(&Outcome) -> f64| {
        outcomes.iter().map(|o| value(o).ln()).sum::<f64>() / outcomes.len() as f64
    };
    per_fold.iter().map(|outcomes| (mean_log(outcomes, |o| o.predicted), mean_log(outcomes, |o| o.truth))).collect()
}

/// The baseline at position `position` of each outcome's answers, against ours on the
/// points it answered.
fn baseline_error(baseline: PredictionBaseline, position: usize, outcomes: &[Outcome]) -> BaselineError {
    let answered = outcomes.iter().filter_map(|o| Some((o.baselines[position]?, o)));
    let (theirs, ours): (Vec<f64>, Vec<f64>) =
        answered.map(|(value, o)| (ape(value, o.truth), ape(o.predicted, o.truth))).unzip();
    let (mdape, ours_mdape) = (median(&theirs), median(&ours));
    let ratio_to_ours = match (mdape, ours_mdape) {
        (Some(theirs), Some(ours)) if ours > 0.0 => Some(theirs / ours),
        _ => None,
    };
    BaselineError { baseline, n_answered: theirs.len(), mdape, ours_mdape, ratio_to_ours }
}

/// The first bad row of `set`, named by index, model and class.
pub(super) fn check_observations(set: &'static str, observations: &[Observation]) -> Result<(), ScoreError> {
    match first_invalid(observations) {
        Some(bad) => Err(ScoreError::InvalidObservation {
            set,
            observation_idx: bad.observation_idx,
            field: bad.field,
            model: bad.model,
            hardware_class: bad.hardware_class,
            value: bad.value,
        }),
        None => Ok(()),
    }
}

fn check_options(options: &PredictionScoreOptions) -> Result<(), ScoreError> {
    let (small, large_min, large_max) = (options.small_batch_max, options.large_batch_min, options.large_batch_max);
    check_option(
        "large_batch_min",
        f64::from(large_min),
        small < large_min && large_min <= large_max,
        "it must be above small_batch_max and at most large_batch_max",
    )
}
