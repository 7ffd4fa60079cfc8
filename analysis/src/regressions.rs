//! Regression alarms from a cell's history, by two checks of its series of run medians:
//!
//! - **Change points** anywhere in the series (see [`crate::changepoint`]), each measured
//!   as the ratio of the median of the runs after it to the median of the runs before it
//!   (each side bounded by the neighbouring change points).
//! - **The latest runs** (`n_latest`, 3 by default) against the runs before them since the
//!   last change point. E-divisive's permutation test cannot confirm a change this close
//!   to the end of a short series whatever its size (see `scorecard::regressions`), and a
//!   lab wants to know within 3 runs. The test: on the logarithms of the run medians,
//!   the median of the latest runs minus the median of the history, over the standard
//!   error of that difference estimated from the history's standard deviation (the
//!   variance of a median of k normal draws is about 0.449 σ² for k = 3 and π σ²/(2k)
//!   for many), against Student's t with one degree of freedom fewer than the history
//!   has runs; one-sided in the direction the medians moved. The median of the latest
//!   runs makes one odd run among them harmless; an odd run in the history widens the
//!   standard deviation, which makes the check more cautious, never less. The t-test
//!   trusts the history's spread, which a short history of clustered runs understates
//!   (a machine that runs fast for a while, then slow): an exact rank test
//!   (Mann–Whitney) of the latest runs against the history must confirm the move too,
//!   and bounds the check's false alarms whatever the shape of the noise.
//!
//! Either check's change is kept only if the ratio moves by at least the minimum effect,
//! and comes with a bootstrap interval of that ratio and the check that found it.
//!
//! A change to slower runs is an [`Alarm`] ([`detect`]); [`changes`] also reports the
//! improvements, so a report can show both from one search.
//!
//! Must never: read a clock or entropy; the seed in the options decides every draw.

use std::num::NonZeroUsize;

use crate::bootstrap::{self, Resampling};
use crate::changepoint::{e_divisive, EDivisiveOptions};
use crate::rng::Rng;
use crate::series::{check_option, SeriesError};
use crate::student_t;
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
    /// The check of the latest runs; `None` leaves only the change points.
    pub latest: Option<LatestOptions>,
}

impl DetectOptions {
    pub const DEFAULT: DetectOptions = DetectOptions {
        change_points: EDivisiveOptions::DEFAULT,
        min_effect: 0.02,
        n_resamples: NonZeroUsize::new(1000).expect("1000 is not zero"),
        latest: Some(LatestOptions::DEFAULT),
    };
}

/// How to check the latest runs (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatestOptions {
    /// Latest runs tested together, in [1, 10]. 3 answers "slower within 3 runs".
    pub n_latest: usize,
    /// Fewest runs before them, since the last change point, for the check to run; at
    /// least 3 (a standard deviation from fewer is no estimate of the noise).
    pub min_history: usize,
    /// Largest one-sided p-value of the t-test that confirms a move, in (0, 1).
    pub significance: f64,
    /// Largest one-sided p-value of the exact rank test that must confirm it too, in
    /// (0, 1): under no change every order of the runs is equally likely, so this bounds
    /// the check's false alarms whatever the noise's shape.
    pub rank_significance: f64,
}

impl LatestOptions {
    /// 9 runs of history, t-test p ≤ 0.001 and rank test p ≤ 0.005: a 5 % step in 1 %
    /// run-to-run noise is about 5 standard errors, above the 4.5 that Student's t with 8
    /// degrees of freedom needs, and 3 runs above all 9 before them have a rank p-value
    /// of 1/C(12, 3) = 0.0045.
    pub const DEFAULT: LatestOptions =
        LatestOptions { n_latest: 3, min_history: 9, significance: 0.001, rank_significance: 0.005 };
}

/// Which check found a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// A change point of the whole series (E-divisive means, permutation test).
    ChangePoint,
    /// The latest runs against the runs before them (t-test on log medians).
    LatestRuns,
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
    /// The p-value of the check that found it: the permutation test's for a change
    /// point, the one-sided t-test's for the latest runs.
    pub p_value: f64,
    pub found_by: FoundBy,
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
    pub found_by: FoundBy,
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
    if let Some(latest) = &options.latest {
        check_latest_options(latest)?;
    }
    let points = e_divisive(series, &options.change_points)?;
    // Segment bounds: the start, every change point, the end.
    let bounds: Vec<usize> =
        std::iter::once(0).chain(points.iter().map(|p| p.run_idx)).chain(std::iter::once(series.len())).collect();
    let measured = points.iter().enumerate().filter_map(|(point_idx, point)| {
        let before = &series[bounds[point_idx]..point.run_idx];
        let after = &series[point.run_idx..bounds[point_idx + 2]];
        measure(before, after, point.run_idx, point.p_value, FoundBy::ChangePoint, options)
    });
    let mut found: Vec<Change> = measured.collect();
    if let Some(latest) = &options.latest {
        let segment_start = points.last().map_or(0, |point| point.run_idx);
        found.extend(latest_change(series, segment_start, latest, options));
    }
    Ok(found)
}

fn check_latest_options(latest: &LatestOptions) -> Result<(), SeriesError> {
    let n_latest = latest.n_latest;
    // The rank test's table grows with the square of n_latest; "latest" means a few runs.
    check_option("n_latest", n_latest as f64, (1..=MAX_LATEST).contains(&n_latest), "it must be in [1, 10]")?;
    check_option(
        "min_history",
        latest.min_history as f64,
        latest.min_history >= 3,
        "the history's spread needs at least 3 runs",
    )?;
    let significance = latest.significance;
    check_option("significance", significance, significance > 0.0 && significance < 1.0, "it must be in (0, 1)")?;
    let rank = latest.rank_significance;
    check_option("rank_significance", rank, rank > 0.0 && rank < 1.0, "it must be in (0, 1)")
}

/// The change of the latest runs of `series` against the runs before them from
/// `segment_start` on, if the t-test confirms it (see the module doc).
fn latest_change(
    series: &[f64],
    segment_start: usize,
    latest: &LatestOptions,
    options: &DetectOptions,
) -> Option<Change> {
    let latest_start = series.len().checked_sub(latest.n_latest)?;
    let history = series.get(segment_start..latest_start)?;
    let recent = &series[latest_start..];
    // The test is on logarithms: a run of 0 ns has none, and says nothing about noise.
    if history.len() < latest.min_history || history.iter().chain(recent).any(|&x| x <= 0.0) {
        return None;
    }
    let history_median = bootstrap::median_of_sorted(&sorted(history));
    let ratio = bootstrap::ratio(bootstrap::median_of_sorted(&sorted(recent)), history_median);
    let direction = direction(ratio, options.min_effect)?;
    let log_history: Vec<f64> = history.iter().map(|x| x.ln()).collect();
    let log_recent: Vec<f64> = recent.iter().map(|x| x.ln()).collect();
    let shift = bootstrap::median_of_sorted(&sorted(&log_recent)) - bootstrap::median_of_sorted(&sorted(&log_history));
    let n_history = history.len() as f64;
    let standard_error = standard_deviation(&log_history)
        * (median_variance_factor(recent.len()) + std::f64::consts::FRAC_PI_2 / n_history).sqrt();
    // A history without spread: any move past the minimum effect is beyond its noise.
    let t = if standard_error > 0.0 { shift / standard_error } else { shift.signum() * f64::INFINITY };
    let toward = if direction == Direction::Slower { t } else { -t };
    let p_value = student_t::upper_tail(toward, history.len() - 1);
    if p_value > latest.significance || rank_p_value(history, recent, direction) > latest.rank_significance {
        return None;
    }
    // The first bad run: the first of the latest runs past the minimum effect, in the
    // direction of the change (the median of the latest runs is, so one of them is).
    let past = |x: &f64| self::direction(bootstrap::ratio(*x, history_median), options.min_effect) == Some(direction);
    let first_bad = latest_start + recent.iter().position(past).unwrap_or(0);
    measure(history, recent, first_bad, p_value, FoundBy::LatestRuns, options)
}

/// Most latest runs one check tests together.
pub const MAX_LATEST: usize = 10;

/// Runs of history the rank test looks back over at most: enough for p-values far
/// below any significance in use (1/C(53, 3) ≈ 4e-5), and its table stays small.
const RANK_HISTORY: usize = 50;

/// One-sided exact p-value of the Mann–Whitney statistic of the `recent` runs against
/// the last [`RANK_HISTORY`] runs of `history`: U counts the (history, recent) pairs in
/// which the recent run is strictly beyond the history's in `direction`, and its null
/// distribution is that of every split of the pooled runs being equally likely. A tie
/// counts against the change: the test stays exact or errs cautious.
fn rank_p_value(history: &[f64], recent: &[f64], direction: Direction) -> f64 {
    let history = &history[history.len().saturating_sub(RANK_HISTORY)..];
    let beyond = |r: f64, h: f64| if direction == Direction::Slower { r > h } else { r < h };
    let u = recent.iter().map(|&r| history.iter().filter(|&&h| beyond(r, h)).count()).sum::<usize>();
    let counts = rank_sum_counts(recent.len(), history.len());
    let total: f64 = counts.iter().sum();
    counts[u..].iter().sum::<f64>() / total
}

/// How many of the C(m + n, m) orders of m recent and n earlier runs give each value of
/// U, by the recursion on whether the largest of all runs is a recent one (adding n to
/// U) or an earlier one: f(u; m, n) = f(u − n; m − 1, n) + f(u; m, n − 1).
fn rank_sum_counts(m: usize, n: usize) -> Vec<f64> {
    // table[i][j][u] for i recent and j earlier runs; counts fit a float exactly here.
    let mut table = vec![vec![Vec::<f64>::new(); n + 1]; m + 1];
    for i in 0..=m {
        for j in 0..=n {
            let mut counts = vec![0.0; i * j + 1];
            if i == 0 || j == 0 {
                counts[0] = 1.0;
            } else {
                for (u, count) in counts.iter_mut().enumerate() {
                    let with_recent = u.checked_sub(j).and_then(|v| table[i - 1][j].get(v)).copied().unwrap_or(0.0);
                    let with_earlier = table[i][j - 1].get(u).copied().unwrap_or(0.0);
                    *count = with_recent + with_earlier;
                }
            }
            table[i][j] = counts;
        }
    }
    std::mem::take(&mut table[m][n])
}

/// Sample standard deviation (n − 1); 0 for fewer than 2 values.
fn standard_deviation(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// Variance of the median of `k` standard normal draws: exact for k ≤ 3, the large-k
/// approximation π/(2k) beyond (which overstates it a little for small k: cautious).
fn median_variance_factor(k: usize) -> f64 {
    match k {
        0 | 1 => 1.0,
        2 => 0.5,
        3 => 0.4487,
        _ => std::f64::consts::FRAC_PI_2 / k as f64,
    }
}

/// The change from the runs `before` to the runs `after`, its first run at
/// `first_run_idx`, or `None` if its ratio moves less than the minimum effect.
fn measure(
    before: &[f64],
    after: &[f64],
    first_run_idx: usize,
    p_value: f64,
    found_by: FoundBy,
    options: &DetectOptions,
) -> Option<Change> {
    let before_sorted = sorted(before);
    let after_sorted = sorted(after);
    let before_median = bootstrap::median_of_sorted(&before_sorted);
    let after_median = bootstrap::median_of_sorted(&after_sorted);
    let ratio = bootstrap::ratio(after_median, before_median);
    let direction = direction(ratio, options.min_effect)?;
    // Segments are at most a series long: no cap on the resample.
    let resampling = Resampling { n_resamples: options.n_resamples, resample_cap: NonZeroUsize::MAX };
    // A stream per change, so its interval does not depend on the other changes.
    let mut rng = Rng::stream(options.change_points.seed, first_run_idx as u64);
    let ratio_ci = bootstrap::ratio_interval(&before_sorted, &after_sorted, resampling, &mut rng);
    Some(Change { first_run_idx, direction, before_median, after_median, ratio, ratio_ci, p_value, found_by })
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
        found_by: change.found_by,
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

    /// 10 runs of history whose logarithms are ±1 % around ln(100), then `recent`.
    fn after_history(recent: &[f64]) -> Vec<f64> {
        let mut series: Vec<f64> = (0..10).map(|i| 100.0 * if i % 2 == 0 { 0.01f64 } else { -0.01 }.exp()).collect();
        series.extend_from_slice(recent);
        series
    }

    /// The check of the latest runs alone, over the whole series (E-divisive confirms a
    /// clean step this short too, which would hide the check behind it).
    fn latest(series: &[f64]) -> Option<Change> {
        latest_change(series, 0, &LatestOptions::DEFAULT, &DetectOptions::DEFAULT)
    }

    #[test]
    fn the_latest_runs_are_tested_against_the_history_by_hand() {
        // History logs ±0.01 around ln 100: median ln 100, standard deviation
        // 0.01·√(10/9) = 0.0105409. Latest runs 5 % up: shift ln 1.05 = 0.0487902, standard
        // error 0.0105409·√(0.4487 + π/20) = 0.0082042, t = 5.94698 on 9 degrees of freedom.
        let change = latest(&after_history(&[105.0; 3])).expect("a 5 % step");
        assert_eq!(
            (change.found_by, change.direction, change.first_run_idx),
            (FoundBy::LatestRuns, Direction::Slower, 10)
        );
        // The medians reported are of the runs themselves: (100·e^0.01 + 100·e^−0.01) / 2.
        assert!((change.before_median - 100.005).abs() < 1e-4 && change.after_median == 105.0, "{change:?}");
        let want_p = student_t::upper_tail(5.94698, 9);
        assert!((change.p_value / want_p - 1.0).abs() < 1e-4, "{} vs {want_p}", change.p_value);
        assert!(change.p_value < 0.001 && change.p_value > 1e-5, "{}", change.p_value);
        assert!(change.ratio_ci.contains(change.ratio));
    }

    #[test]
    fn the_rank_test_counts_orders_exactly() {
        // 3 runs above all 10 before them: 1 order of C(13, 3) = 286.
        assert_eq!(rank_p_value(&after_history(&[])[..], &[105.0; 3], Direction::Slower), 1.0 / 286.0);
        // Below all of them, looking for slower: every order is at least as extreme.
        assert_eq!(rank_p_value(&after_history(&[])[..], &[95.0; 3], Direction::Slower), 1.0);
        // One recent run of 2 against 2 earlier runs, U = 1: orders (r e e), (e r e),
        // (e e r) give U = 0, 1, 2, so P(U ≥ 1) = 2/3. A tie counts against the change.
        assert_eq!(rank_p_value(&[1.0, 3.0], &[2.0], Direction::Slower), 2.0 / 3.0);
        assert_eq!(rank_p_value(&[1.0, 2.0], &[2.0], Direction::Slower), 2.0 / 3.0);
        assert_eq!(rank_p_value(&[1.0, 3.0], &[2.0], Direction::Faster), 2.0 / 3.0);
        let counts = rank_sum_counts(3, 10);
        assert_eq!((counts.len(), counts.iter().sum::<f64>()), (31, 286.0));
        assert!(counts.iter().zip(counts.iter().rev()).all(|(a, b)| a == b), "U is symmetric");
    }

    #[test]
    fn clustered_noise_that_fools_the_t_test_is_stopped_by_the_rank_test() {
        // 10 runs in the fast cluster, then 2 of 3 in the slow one: the history's spread
        // says nothing of the slow cluster, so the t-test is sure; the ranks are not.
        let series = after_history(&[140.0, 100.0, 140.0]);
        let (history, recent) = series.split_at(10);
        assert!(rank_p_value(history, recent, Direction::Slower) > 0.005);
        assert_eq!(latest(&series), None);
        let without_ranks = LatestOptions { rank_significance: 0.99, ..LatestOptions::DEFAULT };
        assert!(latest_change(&series, 0, &without_ranks, &DetectOptions::DEFAULT).is_some());
    }

    #[test]
    fn the_first_bad_run_is_the_first_latest_run_past_the_minimum_effect() {
        // 101.8 is above every run before it but under the 2 % minimum effect.
        let change = latest(&after_history(&[101.8, 106.0, 106.0])).expect("3 runs above all 10");
        assert_eq!(change.first_run_idx, 11);
        assert_eq!(latest(&after_history(&[100.0, 100.0, 140.0])), None, "one odd run");
    }

    #[test]
    fn the_latest_runs_need_their_history_their_effect_and_their_p_value() {
        assert_eq!(latest(&after_history(&[105.0; 3])[2..]), None, "8 runs of history");
        // 1.5 % is under the minimum effect, however certain.
        assert_eq!(latest(&after_history(&[101.5; 3])), None);
        // 3 % is 3.6 standard errors: p ≈ 0.003, not below 0.001.
        assert_eq!(latest(&after_history(&[103.0; 3])), None);
        let faster = latest(&after_history(&[95.0; 3])).expect("a 5 % step down");
        assert_eq!(faster.direction, Direction::Faster);
        // A history without spread, or a run of 0 ns, which has no logarithm.
        let flat: Vec<f64> = [100.0; 10].into_iter().chain([103.0; 3]).collect();
        assert_eq!(latest(&flat).map(|c| c.p_value), Some(0.0));
        let zero: Vec<f64> = [0.0].into_iter().chain(after_history(&[105.0; 3])).collect();
        assert_eq!(latest(&zero), None);
    }

    #[test]
    fn the_latest_runs_are_checked_after_the_last_change_point() {
        // A step at run 20, then the 3 latest runs 5 % slower still: E-divisive finds the
        // first step (its segments need 4 runs here, so it cannot place one 3 runs from
        // the end); the latest runs are tested against the 20 runs since it.
        let mut series = steps(&[(20, 100.0), (20, 120.0)], 3);
        series.extend([126.0, 126.5, 126.0]);
        let options = DetectOptions {
            change_points: EDivisiveOptions { min_segment: 4, ..EDivisiveOptions::DEFAULT },
            ..DetectOptions::DEFAULT
        };
        let found = changes(&series, &options).expect("a valid series");
        let summary: Vec<(usize, FoundBy)> = found.iter().map(|c| (c.first_run_idx, c.found_by)).collect();
        assert_eq!(summary, [(20, FoundBy::ChangePoint), (40, FoundBy::LatestRuns)], "{found:?}");
        assert!((found[1].ratio - 1.05).abs() < 0.01, "{found:?}");
        let off = DetectOptions { latest: None, ..options };
        assert_eq!(changes(&series, &off).expect("a valid series").len(), 1);
    }

    #[test]
    fn latest_options_out_of_range_are_named() {
        for (latest, name) in [
            (LatestOptions { n_latest: 0, ..LatestOptions::DEFAULT }, "n_latest"),
            (LatestOptions { n_latest: MAX_LATEST + 1, ..LatestOptions::DEFAULT }, "n_latest"),
            (LatestOptions { min_history: 2, ..LatestOptions::DEFAULT }, "min_history"),
            (LatestOptions { significance: 1.0, ..LatestOptions::DEFAULT }, "significance"),
            (LatestOptions { rank_significance: 0.0, ..LatestOptions::DEFAULT }, "rank_significance"),
        ] {
            let opts = DetectOptions { latest: Some(latest), ..DetectOptions::DEFAULT };
            assert!(
                matches!(detect(&[1.0; 20], &opts), Err(SeriesError::InvalidOption { name: n, .. }) if n == name),
                "{name}"
            );
        }
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
                        prop_assert!(alarm.first_bad_run >= 3 && alarm.first_bad_run < series.len());
                    }
                }
                Err(err) => prop_assert_eq!(err, SeriesError::TooFewRuns { n_runs: series.len(), n_needed: 6 }),
            }
        }
    }
}
