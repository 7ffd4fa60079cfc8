//! How often our answers are wrong, behind `accelbench scorecard`: three evaluations
//! that replay what `regressions`, `predict` and `recommend` answer on data where the
//! right answer is known, and count the misses.
//!
//! - [`regressions()`]: a noise study (cells measured as many separate runs) replayed as
//!   series with no change, for the detector's false alarms, and with a planted slowdown,
//!   for its power; the baseline rules beside it, each calibrated to the same false-alarm
//!   rate, and Mann–Whitney on pooled samples at its conventional setting.
//! - [`prediction()`]: the predictor refitted with whole batches, models, precisions and
//!   hardware classes held out, scored on what it never saw, beside its baselines.
//! - [`recommendation()`]: the class `recommend` would pick for a model it has never
//!   measured, against the class that measured fastest.
//!
//! Rates come with counts, so that a reader can judge them: a false-alarm rate also
//! with its Clopper–Pearson 95 % upper bound ([`clopper_pearson_upper`]).
//!
//! Must never: read a clock or entropy (every draw comes from the seed in the options,
//! so a seed gives the same scorecard bit for bit), or panic on what a caller passes;
//! every bad number is a [`ScoreError`] that names where it is.

mod prediction;
mod recommendation;
mod regressions;
mod rules;
#[cfg(test)]
mod tests;

pub use prediction::{
    prediction, BaselineError, PredictionBaseline, PredictionScore, PredictionScoreOptions, SplitScore,
};
pub use recommendation::{recommendation, PickScore, RecommendationScore, RecommendationScoreOptions};
pub use regressions::{
    regressions, DetectorScore, FalseAlarms, NoiseCell, PooledTestScore, Power, RegressionScore,
    RegressionScoreOptions, RuleScore, MIN_CELL_RUNS, RUNS_AFTER_CHANGE,
};
pub use rules::Rule;

use crate::bootstrap;
use crate::predict::{Field, PredictError};
use crate::series::SeriesError;

/// What can be wrong with a scorecard's input or options.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    #[error("the noise study has no cell")]
    EmptyStudy,
    #[error("cell {cell} has {n_runs} runs; at least {n_needed} are needed to draw series from")]
    TooFewRuns { cell: String, n_runs: usize, n_needed: usize },
    #[error("cell {cell}, run {run_idx} has no sample")]
    EmptyRun { cell: String, run_idx: usize },
    #[error("cell {cell}, run {run_idx}, sample {sample_idx} is {value}; a latency must be finite and not negative")]
    InvalidSample { cell: String, run_idx: usize, sample_idx: usize, value: f64 },
    #[error("cell {cell}: {source}")]
    Series { cell: String, source: SeriesError },
    #[error("option {name} is {value}; {allowed}")]
    InvalidOption { name: &'static str, value: String, allowed: &'static str },
    #[error("there is no {set} observation to score")]
    NoObservations { set: &'static str },
    #[error("{set} observation {observation_idx} ({model} on {hardware_class}) has {field} {value}; it must be finite and above 0")]
    InvalidObservation {
        set: &'static str,
        observation_idx: usize,
        field: Field,
        model: String,
        hardware_class: String,
        value: f64,
    },
    #[error("the memory limit of {hardware_class} is {value} bytes; it must be finite and above 0")]
    InvalidMemoryLimit { hardware_class: String, value: f64 },
    #[error("{split}, holding out {held_out}: {source}")]
    Predict { split: &'static str, held_out: String, source: PredictError },
}

/// Clopper–Pearson's exact upper 95 % bound of a rate seen `n_events` times in
/// `n_trials`: the rate p at which seeing at most `n_events` has probability 2.5 % (the
/// upper end of the two-sided 95 % interval). With no events it is 1 − 0.025^(1/n); with
/// no trials, or every trial an event, it is 1.
///
/// Exact rather than Wilson's because the rates scored here sit near 0, where Wilson's
/// bound for 0 events, 3.84/(n + 3.84), is narrower than the exact one.
pub fn clopper_pearson_upper(n_events: usize, n_trials: usize) -> f64 {
    const TAIL: f64 = 0.025;
    if n_events >= n_trials {
        return 1.0;
    }
    if n_events == 0 {
        // P(0 events) = (1 − p)^n = TAIL, solved without a search.
        return -(TAIL.ln() / n_trials as f64).exp_m1();
    }
    // P(X ≤ k) falls as p rises: bisect between the observed rate and 1.
    let (mut low, mut high) = (n_events as f64 / n_trials as f64, 1.0);
    for _ in 0..200 {
        let mid = low.midpoint(high);
        if mid <= low || mid >= high {
            break;
        }
        if binomial_cdf(n_events, n_trials, mid) > TAIL {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

/// P(X ≤ k) for X ~ Binomial(n, p), 0 < p < 1, k < n, summed in log space: (1 − p)^n
/// alone underflows for a few thousand trials.
fn binomial_cdf(k: usize, n: usize, p: f64) -> f64 {
    let log_odds = p.ln() - (-p).ln_1p();
    // ln P(X = i), from ln P(X = 0) = n ln(1 − p) by P(i+1)/P(i) = (n−i)/(i+1) · p/(1−p).
    let mut log_term = n as f64 * (-p).ln_1p();
    let mut log_terms = Vec::with_capacity(k + 1);
    for i in 0..=k {
        log_terms.push(log_term);
        log_term += ((n - i) as f64 / (i + 1) as f64).ln() + log_odds;
    }
    let largest = log_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = log_terms.iter().map(|l| (l - largest).exp()).sum();
    (largest + sum.ln()).exp().min(1.0)
}

/// `n_events / n_trials`, or 0 with no trials (the count beside it says so).
fn rate(n_events: usize, n_trials: usize) -> f64 {
    if n_trials == 0 {
        0.0
    } else {
        n_events as f64 / n_trials as f64
    }
}

/// The median of `values`, or `None` if there are none.
fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    Some(bootstrap::median_of_sorted(&sorted))
}

/// Spearman's rank correlation of paired values: Pearson's correlation of their ranks,
/// ties sharing their mean rank. `None` for fewer than 3 pairs (two points always
/// correlate ±1) or when either side has a single rank.
fn spearman(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let firsts: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let seconds: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let (x, y) = (ranks(&firsts), ranks(&seconds));
    let mean = (pairs.len() as f64 + 1.0) / 2.0;
    let covariance: f64 = x.iter().zip(&y).map(|(a, b)| (a - mean) * (b - mean)).sum();
    let spread = |r: &[f64]| r.iter().map(|a| (a - mean).powi(2)).sum::<f64>().sqrt();
    let (sx, sy) = (spread(&x), spread(&y));
    (sx > 0.0 && sy > 0.0).then(|| covariance / (sx * sy))
}

/// 1-based ranks of `values`, ties at their mean rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let tied = order[start..].iter().take_while(|&&idx| values[idx] == values[order[start]]).count().max(1);
        let mean_rank = start as f64 + (tied as f64 + 1.0) / 2.0;
        for &idx in &order[start..start + tied] {
            ranks[idx] = mean_rank;
        }
        start += tied;
    }
    ranks
}

/// Refuses an option value outside its range, saying what is allowed.
fn check_option(name: &'static str, value: f64, is_allowed: bool, allowed: &'static str) -> Result<(), ScoreError> {
    if is_allowed {
        Ok(())
    } else {
        Err(ScoreError::InvalidOption { name, value: value.to_string(), allowed })
    }
}
