//! The measure policy: how the engine measures one cell, and its bounds, shared by a
//! spec's `[measure]` table and a local run's flags ([`check_measure`]).
//!
//! Must never: let a time past [`MAX_MEASURE_SECONDS`] through (a cell that never ends,
//! and a `Duration` that overflows).

use serde::{Deserialize, Serialize};

use super::check::Checker;
use super::raw::{RawMeasure, RawWarmup};
use crate::diagnostic::Diagnostics;

/// Most raw samples one measurement takes and one result record may carry. The
/// measurement loop stops there ([`StopReason::MaxSamples`]), and `min_iterations` may
/// not ask for more; a million samples is far beyond what any statistic needs and keeps
/// one record within one wire message.
///
/// [`StopReason::MaxSamples`]: crate::result::StopReason::MaxSamples
pub const MAX_SAMPLES: usize = 1_000_000;

/// Longest time any measure setting may ask for: a day, like the longest lease. A cell
/// that measures longer is stuck, not slow.
pub const MAX_MEASURE_SECONDS: f64 = 86_400.0;

/// How the engine measures one cell (see DESIGN.md, "Measurement").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurePolicy {
    pub warmup_iterations: u32,
    pub warmup_min_seconds: f64,
    pub min_iterations: u32,
    pub min_seconds: f64,
    pub max_seconds: f64,
    /// Stop early once half the 95% CI of the median, relative to it, is below this.
    pub target_relative_ci: f64,
}

impl Default for MeasurePolicy {
    fn default() -> MeasurePolicy {
        MeasurePolicy {
            warmup_iterations: 3,
            warmup_min_seconds: 1.0,
            min_iterations: 20,
            min_seconds: 2.0,
            max_seconds: 120.0,
            target_relative_ci: 0.02,
        }
    }
}

/// Checks a measure policy given outside a spec (a local run's flags) against the very
/// bounds a spec's `[measure]` has, every problem at once, with the spec's paths
/// (`measure.max_seconds`, …).
pub fn check_measure(policy: &MeasurePolicy) -> Result<(), Diagnostics> {
    let raw = RawMeasure {
        warmup: RawWarmup {
            iterations: Some(i64::from(policy.warmup_iterations)),
            min_seconds: Some(policy.warmup_min_seconds),
        },
        min_iterations: Some(i64::from(policy.min_iterations)),
        min_seconds: Some(policy.min_seconds),
        max_seconds: Some(policy.max_seconds),
        target_relative_ci: Some(policy.target_relative_ci),
    };
    let mut checker = Checker::default();
    checker.measure(&raw);
    if checker.diagnostics.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(checker.diagnostics))
    }
}

impl Checker {
    pub(super) fn measure(&mut self, raw: &RawMeasure) -> MeasurePolicy {
        let default = MeasurePolicy::default();
        let policy = MeasurePolicy {
            warmup_iterations: self.integer(
                "measure.warmup.iterations",
                raw.warmup.iterations,
                0,
                1_000_000,
                default.warmup_iterations,
            ),
            warmup_min_seconds: self.seconds(
                "measure.warmup.min_seconds",
                raw.warmup.min_seconds,
                false,
                default.warmup_min_seconds,
            ),
            min_iterations: self.integer(
                "measure.min_iterations",
                raw.min_iterations,
                1,
                MAX_SAMPLES as u32,
                default.min_iterations,
            ),
            min_seconds: self.seconds("measure.min_seconds", raw.min_seconds, false, default.min_seconds),
            max_seconds: self.seconds("measure.max_seconds", raw.max_seconds, true, default.max_seconds),
            target_relative_ci: self.fraction(
                "measure.target_relative_ci",
                raw.target_relative_ci,
                default.target_relative_ci,
            ),
        };
        self.min_within_max(&policy);
        policy
    }

    /// `min_seconds` may not exceed `max_seconds`.
    fn min_within_max(&mut self, policy: &MeasurePolicy) {
        if policy.min_seconds > policy.max_seconds {
            self.report(
                "measure.min_seconds",
                format!("{} (max_seconds is {})", policy.min_seconds, policy.max_seconds),
                "at most measure.max_seconds",
            );
        }
    }

    /// Finite and non-negative; `positive` also refuses 0.
    /// A time in seconds, at most [`MAX_MEASURE_SECONDS`]: larger values are not a
    /// measurement policy but a cell that never ends (and overflow a `Duration`).
    fn seconds(&mut self, path: &str, raw: Option<f64>, positive: bool, default: f64) -> f64 {
        let Some(value) = raw else { return default };
        let ok = value.is_finite() && (value > 0.0 || (!positive && value == 0.0)) && value <= MAX_MEASURE_SECONDS;
        if ok {
            return value;
        }
        let expected = if positive {
            format!("a number of seconds > 0 and <= {MAX_MEASURE_SECONDS}")
        } else {
            format!("a number of seconds >= 0 and <= {MAX_MEASURE_SECONDS}")
        };
        self.report(path, value.to_string(), expected);
        default
    }

    fn fraction(&mut self, path: &str, raw: Option<f64>, default: f64) -> f64 {
        let Some(value) = raw else { return default };
        if value > 0.0 && value < 1.0 {
            return value;
        }
        self.report(path, value.to_string(), "a number strictly between 0 and 1");
        default
    }
}
