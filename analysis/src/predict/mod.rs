//! Predicting one benchmark cell's latency (seconds per iteration) or peak memory
//! (bytes) from the measured rows of a warehouse, with an 80 % prediction interval,
//! behind `accelbench predict`. The caller computes each row's features from the model
//! catalog and the class's calibration micro-benchmarks and passes plain [`Point`]s.
//!
//! Method, in three steps:
//!
//! 1. A global model in log space, ln(value) ≈ w · x, with x = [1, ln(flops/peak_flops),
//!    ln(weight_bytes/bandwidth), ln(batch), ln(flops/batch), one-hot family, precision,
//!    mode and hardware class]. The first two are a roofline's compute and memory times,
//!    so a class never measured is placed through its calibration and a model never
//!    measured through its catalog numbers and family; a category value not seen in
//!    training gets all-zero one-hots. Fitted by ridge least squares with the penalty on
//!    every weight but the intercept, over standardised continuous columns so that the
//!    penalty weighs them alike. The one-hots of a category sum to the intercept's
//!    column, so the penalty is what makes the fit unique: it picks the smallest category
//!    effects that explain the data, which is also why an unseen value lands on their
//!    middle.
//! 2. A correction by the residuals (ln value − fit) of the closest measured rows,
//!    nearest first ([`Basis`]): the same series (same model, class, precision, mode and
//!    sequence length; only the batch differs): at a measured batch its residual, between
//!    two the line in batch through their values, and past its ends the end's residual
//!    carried on at half the slope of the last two batches in ln(batch); else
//!    the mean over the model's other rows on the class; else over the model's rows on
//!    other classes; else none. The global model carries what generalises, the
//!    correction what is particular to one model on one machine.
//! 3. An interval from held-out errors, grouped by the basis the held-out row got, a
//!    series split into within and beyond its measured batches (see `interval`):
//!    ln(value) plus their 10th and 90th percentiles, for 80 % coverage.
//!    Each basis is measured in its own situation, by folds over rows, series, model on
//!    class and model, so that a model never measured is judged by how well models left
//!    out of the fit were predicted, not by how well measured neighbours were.
//!
//! Must never: read a clock or entropy (the folds come from the seed in the options), or
//! panic on what a caller passes; every bad number is an error that names its field.

pub mod baselines;
mod correction;
mod features;
mod fit;
mod interval;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use crate::Interval;
use correction::{correction, Support};
use features::Encoder;
use fit::NormalEquations;

/// Fewer rows than this give too few held-out errors to put a 10th and a 90th
/// percentile anywhere but next to the extremes.
pub const MIN_OBSERVATIONS: usize = 5;

/// One benchmark cell's coordinates and what the catalog and calibrations say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub model: String,
    pub family: String,
    pub hardware_class: String,
    pub precision: String,
    pub mode: String,
    /// At least 1.
    pub batch: u32,
    pub seq_len: u32,
    /// FLOPs of one iteration (the whole batch), from the catalog. Finite, > 0.
    pub flops: f64,
    /// Bytes of the weights at this precision (parameters × bytes per parameter). > 0.
    pub weight_bytes: f64,
    /// The class's measured GEMM rate at this precision, FLOP/s (calibration). > 0.
    pub peak_flops: f64,
    /// The class's measured memory-copy bandwidth, bytes/s (calibration). > 0.
    pub bandwidth: f64,
}

/// A measured row: seconds per iteration or peak bytes (one kind per fit), > 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub point: Point,
    pub value: f64,
}

/// How to fit; start from [`PredictOptions::DEFAULT`] and change what you need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    /// Ridge penalty on the standardised weights (not the intercept). Finite, > 0.
    pub ridge: f64,
    /// Folds of the held-out errors when there are many groups to hold out; up to 50
    /// groups (`interval::LEAVE_ONE_OUT_UP_TO`) each is its own fold. At least 2.
    pub folds: usize,
    /// Share of outcomes the interval should hold, in (0, 1).
    pub coverage: f64,
    pub seed: u64,
}

impl PredictOptions {
    pub const DEFAULT: PredictOptions = PredictOptions { ridge: 1.0, folds: 10, coverage: 0.8, seed: 0 };
}

/// Which measured rows corrected a prediction, nearest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Basis {
    /// The same model, class, precision, mode and sequence length at other batches.
    SameSeries,
    /// The same model on the same class at another precision, mode or sequence length.
    SameModelOnClass,
    /// The same model on other classes only.
    SameModelElsewhere,
    /// No row of the model: the catalog and calibration numbers alone.
    CatalogOnly,
}

impl Basis {
    pub const ALL: [Basis; 4] =
        [Basis::SameSeries, Basis::SameModelOnClass, Basis::SameModelElsewhere, Basis::CatalogOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::SameSeries => "same-series",
            Basis::SameModelOnClass => "same-model-on-class",
            Basis::SameModelElsewhere => "same-model-elsewhere",
            Basis::CatalogOnly => "catalog-only",
        }
    }

    /// Position in [`Basis::ALL`], nearest 0.
    fn rank(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Predictor::predict`] says about a cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub value: f64,
    /// The prediction interval at the fit's coverage (80 % by default). It need not be
    /// centred on `value`: it follows the held-out errors, skew included, and always
    /// holds `value`.
    pub interval: Interval,
    pub basis: Basis,
    /// How many measured rows the correction drew on (0 for [`Basis::CatalogOnly`]).
    pub n_support: usize,
}

/// A field of a [`Point`] or [`Observation`] that must be finite and above 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Value,
    Batch,
    Flops,
    WeightBytes,
    PeakFlops,
    Bandwidth,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Value => "value",
            Field::Batch => "batch",
            Field::Flops => "flops",
            Field::WeightBytes => "weight_bytes",
            Field::PeakFlops => "peak_flops",
            Field::Bandwidth => "bandwidth",
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    #[error("{n_observations} observations; a predictor needs at least {n_needed}")]
    TooFewObservations { n_observations: usize, n_needed: usize },
    #[error("observation {observation_idx} ({model} on {hardware_class}) has {field} {value}; it must be finite and above 0")]
    InvalidObservation { observation_idx: usize, field: Field, model: String, hardware_class: String, value: f64 },
    #[error("the query ({model} on {hardware_class}) has {field} {value}; it must be finite and above 0")]
    InvalidQuery { field: Field, model: String, hardware_class: String, value: f64 },
    #[error("option {name} is {value}; {allowed}")]
    InvalidOption { name: &'static str, value: String, allowed: &'static str },
    #[error(
        "the least-squares system could not be solved with ridge {ridge}; a larger ridge makes it better conditioned"
    )]
    Unsolvable { ridge: f64 },
    #[error("the prediction for {model} on {hardware_class} is e^{log_value}, which a float cannot hold")]
    OutOfRange { model: String, hardware_class: String, log_value: f64 },
}

/// A fitted model: the global weights, the training rows' residuals for the correction
/// and the held-out spread of each basis for the interval.
#[derive(Debug, Clone)]
pub struct Predictor {
    encoder: Encoder,
    weights: Vec<f64>,
    points: Vec<Point>,
    log_values: Vec<f64>,
    residuals: Vec<f64>,
    /// Training row indices by model, what the correction searches.
    by_model: BTreeMap<String, Vec<usize>>,
    /// ln(outcome / prediction) bounds of the interval, by
    /// `Correction::situation`.
    spreads: [(f64, f64); correction::N_SITUATIONS],
}

/// Fits a predictor to measured rows (see the module doc for the method).
pub fn fit(observations: &[Observation], options: &PredictOptions) -> Result<Predictor, PredictError> {
    check_options(options)?;
    if observations.len() < MIN_OBSERVATIONS {
        return Err(PredictError::TooFewObservations {
            n_observations: observations.len(),
            n_needed: MIN_OBSERVATIONS,
        });
    }
    if let Some(bad) = first_invalid(observations) {
        return Err(PredictError::InvalidObservation {
            observation_idx: bad.observation_idx,
            field: bad.field,
            model: bad.model,
            hardware_class: bad.hardware_class,
            value: bad.value,
        });
    }
    let points: Vec<Point> = observations.iter().map(|o| o.point.clone()).collect();
    let log_values: Vec<f64> = observations.iter().map(|o| o.value.ln()).collect();
    let encoder = Encoder::new(&points);
    let rows: Vec<Vec<f64>> = points.iter().map(|p| encoder.row(p)).collect();
    let mut equations = NormalEquations::new(encoder.width());
    for (row, &log_value) in rows.iter().zip(&log_values) {
        equations.add(row, log_value, 1.0);
    }
    let weights = equations.solve(options.ridge).ok_or(PredictError::Unsolvable { ridge: options.ridge })?;
    let residuals = residuals(&weights, &rows, &log_values);
    let by_model = by_model(&points, 0..points.len());
    let by_model = by_model.into_iter().map(|(model, idxs)| (model.to_owned(), idxs)).collect();
    let spreads = interval::spreads(&points, &rows, &log_values, &equations, options)?;
    Ok(Predictor { encoder, weights, points, log_values, residuals, by_model, spreads })
}

impl Predictor {
    /// The predicted value of `query`, its interval, and which rows corrected it.
    pub fn predict(&self, query: &Point) -> Result<Prediction, PredictError> {
        check_point(query).map_err(|(field, value)| PredictError::InvalidQuery {
            field,
            model: query.model.clone(),
            hardware_class: query.hardware_class.clone(),
            value,
        })?;
        let same_model = self.by_model.get(&query.model).map_or(&[][..], Vec::as_slice);
        let support = Support { points: &self.points, log_values: &self.log_values, residuals: &self.residuals };
        let query_fit = dot(&self.weights, &self.encoder.row(query));
        let correction = correction(&support, same_model, query, query_fit);
        let log_value = query_fit + correction.shift;
        let value = log_value.exp();
        // When the held-out errors all lean one way (extrapolating past a series' end
        // tends to err low), the interval is widened to the point rather than leave a
        // prediction outside its own interval.
        let (low, high) = self.spreads[correction.situation()];
        let (low, high) = (low.min(0.0), high.max(0.0));
        match Interval::new(value * low.exp(), value * high.exp()) {
            Some(interval) if value.is_finite() && value > 0.0 => {
                Ok(Prediction { value, interval, basis: correction.basis, n_support: correction.n_support })
            }
            _ => Err(PredictError::OutOfRange {
                model: query.model.clone(),
                hardware_class: query.hardware_class.clone(),
                log_value,
            }),
        }
    }
}

/// Whether two points are one series: they differ at most in batch.
fn same_series(a: &Point, b: &Point) -> bool {
    a.model == b.model
        && a.hardware_class == b.hardware_class
        && a.precision == b.precision
        && a.mode == b.mode
        && a.seq_len == b.seq_len
}

fn dot(weights: &[f64], row: &[f64]) -> f64 {
    weights.iter().zip(row).map(|(w, x)| w * x).sum()
}

/// ln(value) − fit of every row.
fn residuals(weights: &[f64], rows: &[Vec<f64>], log_values: &[f64]) -> Vec<f64> {
    rows.iter().zip(log_values).map(|(row, y)| y - dot(weights, row)).collect()
}

/// The row indices among `idxs`, grouped by model.
fn by_model(points: &[Point], idxs: impl Iterator<Item = usize>) -> BTreeMap<&str, Vec<usize>> {
    let mut by_model: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for idx in idxs {
        by_model.entry(points[idx].model.as_str()).or_default().push(idx);
    }
    by_model
}

fn check_options(options: &PredictOptions) -> Result<(), PredictError> {
    let refuse = |name, value: String, allowed| Err(PredictError::InvalidOption { name, value, allowed });
    if !(options.ridge.is_finite() && options.ridge > 0.0) {
        // Without a penalty the one-hots and the intercept are collinear: no unique fit.
        return refuse("ridge", options.ridge.to_string(), "it must be finite and above 0");
    }
    if options.folds < 2 {
        return refuse("folds", options.folds.to_string(), "at least 2 are needed to hold rows out");
    }
    if !(options.coverage > 0.0 && options.coverage < 1.0) {
        return refuse("coverage", options.coverage.to_string(), "it must be in (0, 1)");
    }
    Ok(())
}

/// The first observation with a field that is not finite and above 0, named.
pub(crate) struct Invalid {
    pub observation_idx: usize,
    pub field: Field,
    pub model: String,
    pub hardware_class: String,
    pub value: f64,
}

pub(crate) fn first_invalid(observations: &[Observation]) -> Option<Invalid> {
    observations.iter().enumerate().find_map(|(observation_idx, o)| {
        check_observation(o).err().map(|(field, value)| Invalid {
            observation_idx,
            field,
            model: o.point.model.clone(),
            hardware_class: o.point.hardware_class.clone(),
            value,
        })
    })
}

fn check_observation(observation: &Observation) -> Result<(), (Field, f64)> {
    check_positive(Field::Value, observation.value)?;
    check_point(&observation.point)
}

/// The first field of `point` that is not finite and above 0.
fn check_point(point: &Point) -> Result<(), (Field, f64)> {
    check_positive(Field::Batch, f64::from(point.batch))?;
    check_positive(Field::Flops, point.flops)?;
    check_positive(Field::WeightBytes, point.weight_bytes)?;
    check_positive(Field::PeakFlops, point.peak_flops)?;
    check_positive(Field::Bandwidth, point.bandwidth)
}

fn check_positive(field: Field, value: f64) -> Result<(), (Field, f64)> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err((field, value))
    }
}
