//! The baseline rules of [`crate::baselines`] as the regression scorecard runs them:
//! each with one threshold that the scorecard calibrates, so that the rule raises false
//! alarms on no-change series as often as the detector does, and the two are compared by
//! power alone.
//!
//! Calibration is exact, not a search: for each no-change series the rule's critical
//! score is its largest statistic over the series (for the mean rule a run's excess over
//! the mean before it, for the z-score a run's z, for Mann–Whitney the excess of the
//! recent runs' pooled median over the window's where the test is significant), so the
//! series is flagged exactly when the threshold is below that score. Sorting the scores
//! gives the loosest threshold that flags at most the allowed number of series. Which
//! threshold is calibrated, and why: the relative excess of the mean rule, the z of the
//! z-score rule, and the minimum effect, not the significance, of Mann–Whitney: on pooled
//! samples a wobble from run to run makes nearly every p-value tiny, so no significance
//! level brings its false alarms down, while the effect gate can.
//!
//! Must never: report a rate from the scores; the false alarms and the power come from
//! running the rule itself at the calibrated threshold, so a score computed apart from
//! the rule can move the threshold by a rounding at most, never the result.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroUsize;

use crate::baselines::{
    self, mann_whitney_rule, previous_mean_rule, z_score_rule, MannWhitneyOptions, PreviousMeanOptions, ZScoreOptions,
};
use crate::bootstrap;
use crate::series::SeriesError;
use crate::Direction;

/// A threshold sits this far (relative, or absolute below 1) above the critical score it
/// must not reach: far below any noise, far above the rounding by which a rule computing
/// its statistic its own way could land on the other side of it.
const MARGIN: f64 = 1e-9;

/// A baseline regression rule (see [`crate::baselines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The old system's rule: a run slower than the mean of the previous runs.
    PreviousMean,
    /// A run's z-score against the previous runs.
    ZScore,
    /// Mann–Whitney U on the pooled per-iteration samples of recent against earlier runs.
    MannWhitney,
}

impl Rule {
    pub const ALL: [Rule; 3] = [Rule::PreviousMean, Rule::ZScore, Rule::MannWhitney];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::PreviousMean => "previous-mean",
            Rule::ZScore => "z-score",
            Rule::MannWhitney => "mann-whitney-pooled",
        }
    }

    /// The range of the calibrated threshold the rule accepts.
    fn threshold_bounds(self) -> (f64, f64) {
        match self {
            Rule::PreviousMean => (0.0, f64::MAX),
            Rule::ZScore => (f64::MIN_POSITIVE, f64::MAX),
            Rule::MannWhitney => (0.0, 1.0 - f64::EPSILON),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings of the three rules that are not calibrated: their windows, and the
/// Mann–Whitney test's shape and significance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RuleShapes {
    pub(super) previous_mean_window: NonZeroUsize,
    pub(super) z_score_window: NonZeroUsize,
    pub(super) mann_whitney: MannWhitneyOptions,
}

/// One series as the rules see it: its run medians and each run's samples.
pub(super) struct SeriesView<'a> {
    pub(super) medians: &'a [f64],
    pub(super) samples: &'a [Cow<'a, [f64]>],
}

/// A rule with its threshold set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Configured {
    PreviousMean(PreviousMeanOptions),
    ZScore(ZScoreOptions),
    MannWhitney(MannWhitneyOptions),
}

impl Configured {
    pub(super) fn new(rule: Rule, shapes: &RuleShapes, threshold: f64) -> Configured {
        match rule {
            Rule::PreviousMean => {
                Configured::PreviousMean(PreviousMeanOptions { window: shapes.previous_mean_window, threshold })
            }
            Rule::ZScore => Configured::ZScore(ZScoreOptions { window: shapes.z_score_window, threshold }),
            Rule::MannWhitney => {
                Configured::MannWhitney(MannWhitneyOptions { min_effect: threshold, ..shapes.mann_whitney })
            }
        }
    }

    /// The runs the rule flags as slower; a flag the other way is no regression alarm.
    pub(super) fn slower_flags(&self, view: &SeriesView<'_>) -> Result<Vec<usize>, SeriesError> {
        let flags = match self {
            Configured::PreviousMean(options) => previous_mean_rule(view.medians, options)?,
            Configured::ZScore(options) => z_score_rule(view.medians, options)?,
            Configured::MannWhitney(options) => mann_whitney_rule(view.samples, options)?,
        };
        Ok(flags.into_iter().filter(|flag| flag.direction == Direction::Slower).map(|flag| flag.run_idx).collect())
    }
}

/// The largest statistic of `rule` over the series: the rule flags a run as slower
/// when its threshold is below this (see the module doc); −∞ when nothing can be flagged.
pub(super) fn critical_score(rule: Rule, shapes: &RuleShapes, view: &SeriesView<'_>) -> f64 {
    let scores: Vec<f64> = match rule {
        Rule::PreviousMean => previous_mean_excesses(view.medians, shapes.previous_mean_window.get()),
        Rule::ZScore => z_scores(view.medians, shapes.z_score_window.get()),
        Rule::MannWhitney => pooled_excesses(view.samples, &shapes.mann_whitney),
    };
    // A NaN statistic flags nothing in its rule: it must not decide the threshold either.
    scores.into_iter().filter(|s| !s.is_nan()).fold(f64::NEG_INFINITY, f64::max)
}

/// The loosest threshold of `rule` under which at most `n_allowed` of the series with
/// these critical scores are flagged, within the range the rule accepts.
pub(super) fn calibrated_threshold(rule: Rule, mut scores: Vec<f64>, n_allowed: usize) -> f64 {
    let (lowest, highest) = rule.threshold_bounds();
    scores.sort_unstable_by(|a, b| b.total_cmp(a));
    // The largest score that must stay unflagged; with room for every series, none.
    let Some(&unflagged) = scores.get(n_allowed) else {
        return lowest;
    };
    if !unflagged.is_finite() {
        return if unflagged > 0.0 { highest } else { lowest };
    }
    (unflagged + MARGIN * unflagged.abs().max(1.0)).clamp(lowest, highest)
}

/// Each run's excess over the mean of the `window` runs before it, as the mean rule
/// computes that mean.
fn previous_mean_excesses(medians: &[f64], window: usize) -> Vec<f64> {
    let excess = |run_idx: usize| {
        let previous_mean = medians[run_idx - window..run_idx].iter().sum::<f64>() / window as f64;
        bootstrap::ratio(medians[run_idx], previous_mean) - 1.0
    };
    (window..medians.len()).map(excess).collect()
}

/// Each run's z against the `window` runs before it.
fn z_scores(medians: &[f64], window: usize) -> Vec<f64> {
    if window < 2 {
        // The rule refuses such a window; the scorecard reports that error when it runs it.
        return Vec::new();
    }
    (window..medians.len())
        .map(|run_idx| baselines::z_score(medians[run_idx], &medians[run_idx - window..run_idx]))
        .collect()
}

/// Each significant decision's excess of the recent pooled median over the window's.
fn pooled_excesses(samples: &[Cow<'_, [f64]>], options: &MannWhitneyOptions) -> Vec<f64> {
    let significant = baselines::pooled_comparisons(samples, options)
        .filter(|c| c.test.is_some_and(|test| test.p_value <= options.significance) && c.ratio > 1.0);
    significant.map(|c| c.ratio - 1.0).collect()
}
