//! Regression alarms from a cell's history: the change points of its series of run
//! medians (see [`crate::changepoint`]), each measured as the ratio of the median of
//! the runs after it to the median of the runs before it (each side bounded by the
//! neighbouring change points), with a bootstrap interval of that ratio, and kept only
//! if the ratio moves by at least the minimum effect.
//!
//! A change to slower runs is an [`Alarm`] ([`detect`]); [`changes`] also reports the
//! improvements, so a report can show both from one search.
//!
//! Must never: read a clock or entropy; the seed in the options decides every draw.

use std::num::NonZeroUsize;

use crate::bootstrap::{self, Resampling};
use crate::changepoint::{e_divisive, ChangePoint, EDivisiveOptions};
use crate::rng::Rng;
use crate::series::{check_option, SeriesError};
use crate::{Direction, Interval};

/// How to detect; start from [`DetectOptions::DEFAULT`] and change what you need. The
/// change points' seed also seeds each change's interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    pub change_points: EDivisiveOptions,
    /// Smallest relative move of the median worth reporting: 0.02 keeps a change whose
    /// ratio is at least 1.02 (slower) or at most 0.98 (faster). In `[0, 1)`.
    pub min_effect: f64,
    /// Bootstrap rounds of each change's interval. 1000 by default, half of what
    /// `compare` uses: the interval here describes a change already confirmed by the
    /// permutation test rather than deciding one, 1000 rounds still leave 25 ratios in
    /// each tail, and resampling is most of the time `detect` spends on a changed series.
    pub n_resamples: NonZeroUsize,
}

impl DetectOptions {
    pub const DEFAULT: DetectOptions = DetectOptions {
        change_points: EDivisiveOptions::DEFAULT,
        min_effect: 0.02,
        n_resamples: NonZeroUsize::new(1000).expect("1000 is not zero"),
    };
}

/// A confirmed change of a series, either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// Index of the first run at the new level.
    pub first_run_idx: usize,
    pub direction: Direction,
    /// Median of the runs from the previous change point (or the start) to this one.
    pub before_median: f64,
    /// Median of the runs from this change point to the next (or the end).
    pub after_median: f64,
    /// `after_median / before_median`.
    pub ratio: f64,
    /// 95 % bootstrap interval of the ratio.
    pub ratio_ci: Interval,
    /// The permutation test's p-value of the change point.
    pub p_value: f64,
}

/// A change to slower runs: what `accelbench regressions` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alarm {
    /// Index of the first slower run.
    pub first_bad_run: usize,
    pub before_median: f64,
    pub after_median: f64,
    pub ratio: f64,
    pub ratio_ci: Interval,
    pub p_value: f64,
}

/// The regressions of `series` (run medians in time order), by first bad run.
pub fn detect(series: &[f64], options: &DetectOptions) -> Result<Vec<Alarm>, SeriesError> {
    let slower = changes(series, options)?.into_iter().filter(|change| change.direction == Direction::Slower);
    Ok(slower.map(alarm).collect())
}

/// Every change of `series` at least `min_effect` large, slower or faster, by run.
pub fn changes(series: &[f64], options: &DetectOptions) -> Result<Vec<Change>, SeriesError> {
    let min_effect = options.min_effect;
    check_option("min_effect", min_effect, (0.0..1.0).contains(&min_effect), "it must be in [0, 1)")?;
    let points = e_divisive(series, &options.change_points)?;
    // Segment bounds: the start, every change point, the end.
    let bounds: Vec<usize> =
        std::iter::once(0).chain(points.iter().map(|p| p.run_idx)).chain(std::iter::once(series.len())).collect();
    let measured = points.iter().enumerate().filter_map(|(point_idx, point)| {
        let before = &series[bounds[point_idx]..point.run_idx];
        let after = &series[point.run_idx..bounds[point_idx + 2]];
        measure(before, after, point, options)
    });
    Ok(measured.collect())
}

/// The change at `point` between the runs `before` and `after` it, or `None` if its
/// ratio moves less than the minimum effect.
fn measure(before: &[f64], after: &[f64], point: &ChangePoint, options: &DetectOptions) -> Option<Change> {
    let before_sorted = sorted(before);
    let after_sorted = sorted(after);
    let before_median = bootstrap::median_of_sorted(&before_sorted);
    let after_median = bootstrap::median_of_sorted(&after_sorted);
    let ratio = bootstrap::ratio(after_median, before_median);
    let direction = direction(ratio, options.min_effect)?;
    // Segments are at most a series long: no cap on the resample.
    let resampling = Resampling { n_resamples: options.n_resamples, resample_cap: NonZeroUsize::MAX };
    // A stream per change point, so its interval does not depend on the other points.
    let mut rng = Rng::stream(options.change_points.seed, point.run_idx as u64);
    let ratio_ci = bootstrap::ratio_interval(&before_sorted, &after_sorted, resampling, &mut rng);
    Some(Change {
        first_run_idx: point.run_idx,
        direction,
        before_median,
        after_median,
        ratio,
        ratio_ci,
        p_value: point.p_value,
    })
}

fn direction(ratio: f64, min_effect: f64) -> Option<Direction> {
    if ratio > 1.0 && ratio >= 1.0 + min_effect {
        Some(Direction::Slower)
    } else if ratio < 1.0 && ratio <= 1.0 - min_effect {
        Some(Direction::Faster)
    } else {
        None
    }
}

fn alarm(change: Change) -> Alarm {
    Alarm {
        first_bad_run: change.first_run_idx,
        before_median: change.before_median,
        after_median: change.after_median,
        ratio: change.ratio,
        ratio_ci: change.ratio_ci,
        p_value: change.p_value,
    }
}

fn sorted(runs: &[f64]) -> Vec<f64> {
    let mut sorted = runs.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::jittered as noisy;
    use proptest::prelude::*;

    fn steps(levels: &[(usize, f64)], seed: u64) -> Vec<f64> {
        let pieces = levels.iter().enumerate().map(|(idx, &(n, level))| noisy(n, level, 0.01, seed + idx as u64));
        pieces.flatten().collect()
    }

    #[test]
    fn a_step_up_is_an_alarm_at_its_first_bad_run() {
        let mut series = vec![10.0; 8];
        series.extend([12.0; 8]);
        let alarms = detect(&series, &DetectOptions::DEFAULT).expect("a valid series");
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        let alarm = alarms[0];
        assert_eq!((alarm.first_bad_run, alarm.before_median, alarm.after_median), (8, 10.0, 12.0));
        assert_eq!(alarm.ratio, 1.2);
        // Both sides constant: every resample has the same medians.
        assert_eq!(alarm.ratio_ci, Interval::new(1.2, 1.2).expect("ordered"));
        assert_eq!(alarm.p_value, 1.0 / 200.0);
    }

    #[test]
    fn a_step_down_is_an_improvement_and_no_alarm() {
        let series = steps(&[(50, 120.0), (50, 100.0)], 1);
        assert_eq!(detect(&series, &DetectOptions::DEFAULT), Ok(vec![]));
        let found = changes(&series, &DetectOptions::DEFAULT).expect("a valid series");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].first_run_idx, found[0].direction), (50, Direction::Faster));
        assert!(found[0].ratio_ci.contains(found[0].ratio) && found[0].ratio_ci.high() < 0.9, "{found:?}");
    }

    #[test]
    fn medians_are_taken_between_neighbouring_change_points() {
        let series = steps(&[(40, 100.0), (40, 110.0), (40, 130.0)], 7);
        let alarms = detect(&series, &DetectOptions::DEFAULT).expect("a valid series");
        let at: Vec<usize> = alarms.iter().map(|a| a.first_bad_run).collect();
        assert_eq!(at, [40, 80]);
        assert!((alarms[0].ratio - 1.1).abs() < 0.01 && (alarms[1].ratio - 130.0 / 110.0).abs() < 0.01, "{alarms:?}");
        assert!(alarms.iter().all(|a| a.ratio_ci.contains(a.ratio)));
    }

    #[test]
    fn flat_noise_raises_no_alarm() {
        // Noise of ±1 % may still yield the odd false change point (about one series in a
        // hundred at p <= 1 %), but its medians then differ by far less than 2 %.
        for seed in 0..20 {
            let series = noisy(300, 2e6, 0.01, seed);
            let opts = DetectOptions {
                change_points: EDivisiveOptions { seed, ..EDivisiveOptions::DEFAULT },
                ..DetectOptions::DEFAULT
            };
            assert_eq!(changes(&series, &opts), Ok(vec![]), "seed {seed}");
        }
    }

    #[test]
    fn a_change_smaller_than_the_minimum_effect_is_dropped() {
        // A 1 % step in 0.1 % noise is a real change point, but below the default 2 %.
        let series: Vec<f64> = (0..100).map(|i| if i < 50 { 1000.0 } else { 1010.0 } + (i % 3) as f64).collect();
        let points = e_divisive(&series, &EDivisiveOptions::DEFAULT).expect("a valid series");
        assert_eq!(points.iter().map(|p| p.run_idx).collect::<Vec<_>>(), [50]);
        assert_eq!(changes(&series, &DetectOptions::DEFAULT), Ok(vec![]));
        let sensitive = DetectOptions { min_effect: 0.005, ..DetectOptions::DEFAULT };
        assert_eq!(detect(&series, &sensitive).expect("a valid series").len(), 1);
    }

    #[test]
    fn errors_come_from_the_series_and_the_options() {
        assert_eq!(detect(&[1.0; 5], &DetectOptions::DEFAULT), Err(SeriesError::TooFewRuns { n_runs: 5, n_needed: 6 }));
        assert_eq!(
            detect(&[1.0, f64::NAN, 1.0], &DetectOptions::DEFAULT)
                .map_err(|e| matches!(e, SeriesError::InvalidValue { run_idx: 1, .. })),
            Err(true)
        );
        let opts = DetectOptions { min_effect: -0.1, ..DetectOptions::DEFAULT };
        assert!(matches!(detect(&[1.0; 10], &opts), Err(SeriesError::InvalidOption { name: "min_effect", .. })));
    }

    proptest! {
        #[test]
        fn detect_never_panics_on_a_finite_series(
            series in prop::collection::vec(prop_oneof![0.0f64..1e12, Just(0.0), Just(1.0)], 0..60), seed: u64,
        ) {
            let opts = DetectOptions {
                change_points: EDivisiveOptions { seed, ..EDivisiveOptions::DEFAULT },
                n_resamples: NonZeroUsize::new(100).expect("not zero"),
                ..DetectOptions::DEFAULT
            };
            match detect(&series, &opts) {
                Ok(alarms) => {
                    for alarm in alarms {
                        prop_assert!(alarm.ratio >= 1.02 && alarm.ratio_ci.contains(alarm.ratio), "{alarm:?}");
                        prop_assert!(alarm.first_bad_run >= 3 && alarm.first_bad_run <= series.len() - 3);
                    }
                }
                Err(err) => prop_assert_eq!(err, SeriesError::TooFewRuns { n_runs: series.len(), n_needed: 6 }),
            }
        }
    }
}
