//! The simpler regression rules the E-divisive detector is scored against. Each looks
//! at the runs in time order as they arrive and flags a run as soon as the rule fires on
//! it, using only the runs up to it; a scorecard takes the first flag after a known
//! change as that rule's detection, and flags on a flat stretch as its false alarms.
//!
//! - [`previous_mean_rule`]: the old system's rule, a run more than 5 % slower than the
//!   mean of the previous 7 runs (one run a day: the "7-day mean").
//! - [`z_score_rule`]: a run's z-score against the mean and standard deviation of the
//!   previous runs, as conbench's lookback z-score does.
//! - [`mann_whitney_rule`]: Mann–Whitney U on pooled per-iteration samples, the recent
//!   runs against the runs before them, as asv compares two sets of samples.
//!
//! Must never: look at runs after the one it flags.

use std::num::NonZeroUsize;

use crate::bootstrap;
use crate::normal;
use crate::series::{check_option, check_run_samples, check_series, SeriesError};
use crate::Direction;

/// A run a rule fired on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flag {
    pub run_idx: usize,
    pub direction: Direction,
}

/// The old rule: flag a run slower than the mean of the `window` runs before it by more
/// than `threshold` (relative).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreviousMeanOptions {
    pub window: NonZeroUsize,
    /// In `[0, ∞)`: 0.05 flags a run above 1.05 × the mean.
    pub threshold: f64,
}

impl PreviousMeanOptions {
    pub const DEFAULT: PreviousMeanOptions =
        PreviousMeanOptions { window: NonZeroUsize::new(7).expect("7 is not zero"), threshold: 0.05 };
}

/// Flag a run whose z-score against the `window` runs before it exceeds `threshold` in
/// absolute value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZScoreOptions {
    /// At least 2, for a standard deviation.
    pub window: NonZeroUsize,
    /// In `(0, ∞)`.
    pub threshold: f64,
}

impl ZScoreOptions {
    pub const DEFAULT: ZScoreOptions =
        ZScoreOptions { window: NonZeroUsize::new(20).expect("20 is not zero"), threshold: 5.0 };
}

/// Flag the last of `recent_runs` runs when their pooled samples differ from those of
/// the `window_runs` runs before them: Mann–Whitney p-value at most `significance` and
/// the pooled medians at least `min_effect` apart (relative).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitneyOptions {
    pub recent_runs: NonZeroUsize,
    pub window_runs: NonZeroUsize,
    /// In `(0, 1)`.
    pub significance: f64,
    /// In `[0, 1)`.
    pub min_effect: f64,
}

impl MannWhitneyOptions {
    pub const DEFAULT: MannWhitneyOptions = MannWhitneyOptions {
        recent_runs: NonZeroUsize::new(1).expect("1 is not zero"),
        window_runs: NonZeroUsize::new(7).expect("7 is not zero"),
        significance: 0.01,
        min_effect: 0.02,
    };
}

/// The outcome of [`mann_whitney_u`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the second sample: the pairs (first, second) where second is larger, ties
    /// counting one half. Above `n₁·n₂/2` when the second tends larger.
    pub u: f64,
    /// The normal approximation of U, with tie and continuity corrections.
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
}

/// The old rule over `series` (run medians in time order).
pub fn previous_mean_rule(series: &[f64], options: &PreviousMeanOptions) -> Result<Vec<Flag>, SeriesError> {
    check_series(series)?;
    let threshold = options.threshold;
    check_option("threshold", threshold, threshold >= 0.0 && threshold.is_finite(), "it must be finite, at least 0")?;
    let window = options.window.get();
    let flags = (window..series.len()).filter(|&run_idx| {
        let previous_mean = series[run_idx - window..run_idx].iter().sum::<f64>() / window as f64;
        series[run_idx] > (1.0 + threshold) * previous_mean
    });
    Ok(flags.map(|run_idx| Flag { run_idx, direction: Direction::Slower }).collect())
}

/// The z-score rule over `series` (run medians in time order).
pub fn z_score_rule(series: &[f64], options: &ZScoreOptions) -> Result<Vec<Flag>, SeriesError> {
    check_series(series)?;
    let window = options.window.get();
    check_option("window", window as f64, window >= 2, "a standard deviation needs at least 2 runs")?;
    let threshold = options.threshold;
    check_option("threshold", threshold, threshold > 0.0 && threshold.is_finite(), "it must be finite, above 0")?;
    let flags = (window..series.len()).filter_map(|run_idx| {
        let z = z_score(series[run_idx], &series[run_idx - window..run_idx]);
        let direction = if z > 0.0 { Direction::Slower } else { Direction::Faster };
        (z.abs() > threshold).then_some(Flag { run_idx, direction })
    });
    Ok(flags.collect())
}

/// The Mann–Whitney rule over the raw samples of each run, runs in time order.
pub fn mann_whitney_rule<S: AsRef<[f64]>>(runs: &[S], options: &MannWhitneyOptions) -> Result<Vec<Flag>, SeriesError> {
    for (run_idx, samples) in runs.iter().enumerate() {
        check_run_samples(run_idx, samples.as_ref())?;
    }
    let significance = options.significance;
    check_option("significance", significance, significance > 0.0 && significance < 1.0, "it must be in (0, 1)")?;
    let min_effect = options.min_effect;
    check_option("min_effect", min_effect, (0.0..1.0).contains(&min_effect), "it must be in [0, 1)")?;
    let flags = pooled_comparisons(runs, options).filter_map(|comparison| {
        let direction = pooled_shift(&comparison, options)?;
        Some(Flag { run_idx: comparison.run_idx, direction })
    });
    Ok(flags.collect())
}

/// One decision of the Mann–Whitney rule, before its significance and effect are applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PooledComparison {
    /// The last of the recent runs: the run a flag would name.
    pub(crate) run_idx: usize,
    /// The recent runs' pooled samples against the window's; `None` if a side is empty.
    pub(crate) test: Option<MannWhitney>,
    /// Pooled median of the recent runs / pooled median of the window's.
    pub(crate) ratio: f64,
}

/// Every decision the Mann–Whitney rule makes over `runs`, in run order. Shared with the
/// scorecard, which calibrates the rule's effect threshold from these same numbers.
pub(crate) fn pooled_comparisons<'a, S: AsRef<[f64]>>(
    runs: &'a [S],
    options: &MannWhitneyOptions,
) -> impl Iterator<Item = PooledComparison> + 'a {
    let (recent, window) = (options.recent_runs.get(), options.window_runs.get());
    (recent + window - 1..runs.len()).map(move |run_idx| {
        let first_recent_idx = run_idx + 1 - recent;
        let reference = pooled_sorted(&runs[first_recent_idx - window..first_recent_idx]);
        let latest = pooled_sorted(&runs[first_recent_idx..=run_idx]);
        let test = mann_whitney_u(&reference, &latest);
        // An empty side has no median; its test is `None` and the rule never fires on it.
        let ratio = match (reference.is_empty(), latest.is_empty()) {
            (false, false) => {
                bootstrap::ratio(bootstrap::median_of_sorted(&latest), bootstrap::median_of_sorted(&reference))
            }
            _ => 1.0,
        };
        PooledComparison { run_idx, test, ratio }
    })
}

/// Mann–Whitney U of `second` against `first` with the normal approximation; `None` if
/// either is empty or holds a NaN.
pub fn mann_whitney_u(first: &[f64], second: &[f64]) -> Option<MannWhitney> {
    if first.is_empty() || second.is_empty() || first.iter().chain(second).any(|x| x.is_nan()) {
        return None;
    }
    let (second_rank_sum, tie_term) = second_rank_sum(first, second);
    let (n1, n2) = (first.len() as f64, second.len() as f64);
    let n = n1 + n2;
    let u = second_rank_sum - n2 * (n2 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    // Ties shrink the variance of U: each tie group of t values removes (t³ − t).
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        // Every value equal: no evidence either way.
        return Some(MannWhitney { u, z: 0.0, p_value: 1.0 });
    }
    // Continuity correction: U moves in steps of 1/2, the normal curve does not.
    let distance = ((u - mean).abs() - 0.5).max(0.0);
    let z = distance.copysign(u - mean) / variance.sqrt();
    Some(MannWhitney { u, z, p_value: normal::two_sided_p(z) })
}

/// z of `value` against `previous`; ±∞ (or 0 for an equal value) when they do not vary.
pub(crate) fn z_score(value: f64, previous: &[f64]) -> f64 {
    let n = previous.len() as f64;
    let mean = previous.iter().sum::<f64>() / n;
    let variance = previous.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    let deviation = value - mean;
    if variance == 0.0 {
        return if deviation == 0.0 { 0.0 } else { f64::INFINITY.copysign(deviation) };
    }
    deviation / variance.sqrt()
}

/// Whether a decision's recent runs moved against its window: significant and large
/// enough.
fn pooled_shift(comparison: &PooledComparison, options: &MannWhitneyOptions) -> Option<Direction> {
    let test = comparison.test?;
    if test.p_value > options.significance {
        return None;
    }
    let ratio = comparison.ratio;
    if ratio > 1.0 && ratio >= 1.0 + options.min_effect {
        Some(Direction::Slower)
    } else if ratio < 1.0 && ratio <= 1.0 - options.min_effect {
        Some(Direction::Faster)
    } else {
        None
    }
}

/// The samples of `runs`, pooled and sorted ascending.
fn pooled_sorted<S: AsRef<[f64]>>(runs: &[S]) -> Vec<f64> {
    let mut pooled: Vec<f64> = runs.iter().flat_map(|samples| samples.as_ref().iter().copied()).collect();
    pooled.sort_unstable_by(f64::total_cmp);
    pooled
}

/// The sum of the ranks of `second` in both pooled (ties get their mean rank), and the
/// tie term Σ(t³ − t) over groups of t equal values.
fn second_rank_sum(first: &[f64], second: &[f64]) -> (f64, f64) {
    let mut labelled: Vec<(f64, bool)> =
        first.iter().map(|&x| (x, false)).chain(second.iter().map(|&x| (x, true))).collect();
    labelled.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut tie_term) = (0.0, 0.0);
    let mut group_start = 0;
    while group_start < labelled.len() {
        let value = labelled[group_start].0;
        let group_len = labelled[group_start..].iter().take_while(|(x, _)| *x == value).count();
        // The group holds the 1-based ranks group_start+1 ..= group_start+group_len.
        let mean_rank = group_start as f64 + (group_len as f64 + 1.0) / 2.0;
        let n_second =
            labelled[group_start..group_start + group_len].iter().filter(|(_, is_second)| *is_second).count();
        rank_sum += mean_rank * n_second as f64;
        let t = group_len as f64;
        tie_term += t * t * t - t;
        group_start += group_len;
    }
    (rank_sum, tie_term)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-300)
    }

    fn slower(run_idx: usize) -> Flag {
        Flag { run_idx, direction: Direction::Slower }
    }

    #[test]
    fn the_old_rule_flags_a_run_above_the_mean_of_the_previous_seven() {
        // Run 7: the mean of runs 0..7 is 100 and 105 is exactly 5 % above, not more.
        // Run 8: the mean of runs 1..8 is 101, the bar 106.05, and 107 is above it.
        // Run 9: the mean of runs 2..9 is 101.71…, the bar 106.8, and 103 is below.
        let series = [98.0, 102.0, 100.0, 100.0, 99.0, 101.0, 100.0, 105.0, 107.0, 103.0];
        let flags = previous_mean_rule(&series, &PreviousMeanOptions::DEFAULT).expect("a valid series");
        assert_eq!(flags, [slower(8)]);
        assert_eq!(previous_mean_rule(&series[..7], &PreviousMeanOptions::DEFAULT), Ok(vec![]));
    }

    #[test]
    fn the_old_rule_keeps_firing_until_the_window_catches_up() {
        // With j of the 7 previous runs at 120, the bar is 1.05 × (100 + 20j/7), which
        // stays below 120 while j < 5: runs 7 to 11 are flagged, run 12 no longer.
        let mut series = vec![100.0; 7];
        series.extend([120.0; 10]);
        let flags = previous_mean_rule(&series, &PreviousMeanOptions::DEFAULT).expect("a valid series");
        assert_eq!(flags, (7..=11).map(slower).collect::<Vec<_>>());
    }

    #[test]
    fn the_z_score_rule_flags_both_ways_and_a_spike_hides_the_next_run() {
        // Twenty runs alternating 9 and 11: mean 10, sample std √(20/19) ≈ 1.026, so 16
        // and 4 are 5.85 standard deviations away.
        let steady: Vec<f64> = (0..20).map(|i| if i % 2 == 0 { 9.0 } else { 11.0 }).collect();
        let then = |next: &[f64]| [steady.as_slice(), next].concat();
        let options = ZScoreOptions::DEFAULT;
        assert_eq!(z_score_rule(&then(&[16.0]), &options), Ok(vec![slower(20)]));
        let faster = Flag { run_idx: 20, direction: Direction::Faster };
        assert_eq!(z_score_rule(&then(&[4.0]), &options), Ok(vec![faster]));
        // After the 16, the window's mean is 10.35 and its std 1.66: 4 is only 3.8 away.
        assert_eq!(z_score_rule(&then(&[16.0, 4.0]), &options), Ok(vec![slower(20)]));
        // A window that does not vary puts any other value infinitely far, an equal one at 0.
        let two_runs = ZScoreOptions { window: NonZeroUsize::MIN.saturating_add(1), threshold: 5.0 };
        assert_eq!(z_score_rule(&[3.0, 3.0, 3.0, 3.5], &two_runs), Ok(vec![slower(3)]));
    }

    #[test]
    fn mann_whitney_u_by_hand_without_ties() {
        // Every second value beats every first one: U = 6 of 6 pairs, mean 3, variance
        // 2·3·6/12 = 3, z = (6 − 3 − ½)/√3.
        let test = mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0]).expect("two samples");
        assert_eq!(test.u, 6.0);
        assert!(close(test.z, 2.5 / 3f64.sqrt()), "{test:?}");
        assert!(close(test.p_value, 0.14891467317876567), "{test:?}");
        let reversed = mann_whitney_u(&[4.0, 5.0], &[1.0, 2.0, 3.0]).expect("two samples");
        assert_eq!((reversed.u, reversed.z, reversed.p_value), (0.0, -test.z, test.p_value));
    }

    #[test]
    fn mann_whitney_u_by_hand_with_ties() {
        // Pooled 1 | 2 2 2 | 3: ranks 1, 3, 3, 3, 5. Second = {2, 3}: rank sum 8, U = 5.
        // Tie term 3³ − 3 = 24; variance 6/12 · (6 − 24/20) = 2.4; z = 1.5/√2.4.
        let test = mann_whitney_u(&[1.0, 2.0, 2.0], &[2.0, 3.0]).expect("two samples");
        assert_eq!(test.u, 5.0);
        assert!(close(test.z, 1.5 / 2.4f64.sqrt()), "{test:?}");
        assert!(close(test.p_value, 0.33292160806556603), "{test:?}");
        let all_equal = mann_whitney_u(&[2.0, 2.0], &[2.0]).expect("two samples");
        assert_eq!((all_equal.u, all_equal.p_value), (1.0, 1.0));
        assert_eq!(mann_whitney_u(&[], &[1.0]), None);
    }

    #[test]
    fn the_mann_whitney_rule_flags_the_first_shifted_run() {
        let run = |level: f64| (0..50).map(|i| level + f64::from(i % 10)).collect::<Vec<f64>>();
        let mut runs: Vec<Vec<f64>> = (0..8).map(|_| run(100.0)).collect();
        runs.push(run(110.0));
        let flags = mann_whitney_rule(&runs, &MannWhitneyOptions::DEFAULT).expect("valid runs");
        assert_eq!(flags, [slower(8)]);
        // A 1 % shift is significant with this many samples but below the 2 % effect.
        runs[8] = run(101.0);
        assert_eq!(mann_whitney_rule(&runs, &MannWhitneyOptions::DEFAULT), Ok(vec![]));
    }

    #[test]
    fn bad_samples_name_their_run() {
        let runs = [vec![1.0, 2.0], vec![1.0, f64::INFINITY]];
        assert_eq!(
            mann_whitney_rule(&runs, &MannWhitneyOptions::DEFAULT),
            Err(SeriesError::InvalidValue { run_idx: 1, value: f64::INFINITY })
        );
        let one_run_window = ZScoreOptions { window: NonZeroUsize::MIN, ..ZScoreOptions::DEFAULT };
        assert!(matches!(
            z_score_rule(&[1.0; 5], &one_run_window),
            Err(SeriesError::InvalidOption { name: "window", .. })
        ));
    }
}
