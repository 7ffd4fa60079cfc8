//! Summary statistics over the raw per-iteration samples of one result (nanoseconds,
//! usually): mean, sample standard deviation, percentiles, coefficient of variation and
//! the 95% confidence interval of the median that drives early stopping.
//!
//! Everything is computed from the sorted samples, so the summary does not depend on the
//! order the samples arrived in, bit for bit.
//!
//! Must never: do I/O, read the clock, or panic on any input (bad input gives `None`).

use serde::{Deserialize, Serialize};

/// Two-sided 95% quantile of the standard normal distribution.
const Z_95: f64 = 1.959_963_984_540_054;

/// Derived statistics of one sample set. A stored format: results carry it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: u64,
    pub mean: f64,
    /// Sample standard deviation (divides by `n - 1`); 0 for a single sample.
    pub std: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Coefficient of variation, `std / |mean|`; `None` when the mean is 0.
    pub cv: Option<f64>,
    /// 95% confidence interval of the median, see [`summarize`].
    pub median_ci_low: f64,
    pub median_ci_high: f64,
}

/// Summarises `samples`; `None` when there are none or any is NaN or infinite.
///
/// Percentiles use linear interpolation between closest ranks (numpy's default,
/// `method="linear"`): over the sorted samples `x[0..n]`, percentile `q` sits at
/// fractional index `h = (n - 1)·q`, and is `x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋])`.
///
/// The 95% confidence interval of the median is distribution-free, from order
/// statistics: the number of samples below the true median is Binomial(n, ½), which
/// the normal approximation turns into the 1-based ranks
/// `⌊n/2 - 1.96·√n/2⌋` and `⌈1 + n/2 + 1.96·√n/2⌉`, clamped to `[1, n]`. For n = 100
/// that gives ranks 40 and 61, as in the published tables. Below about 6 samples the
/// interval is simply `[min, max]`.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let mean = mean_of_sorted(&sorted);
    let std = sample_std(&sorted, mean);
    let (median_ci_low, median_ci_high) = median_ci(&sorted);
    Some(Summary {
        n: sorted.len() as u64,
        mean,
        std,
        min,
        p50: percentile_of_sorted(&sorted, 0.50),
        p90: percentile_of_sorted(&sorted, 0.90),
        p95: percentile_of_sorted(&sorted, 0.95),
        p99: percentile_of_sorted(&sorted, 0.99),
        max,
        cv: (mean != 0.0).then(|| std / mean.abs()),
        median_ci_low,
        median_ci_high,
    })
}

impl Summary {
    /// Half the width of the median's 95% CI relative to the median: the early-stopping
    /// criterion (`target_relative_ci`). Infinite when the median is 0 and the interval
    /// is not, so that such a run never counts as converged.
    pub fn relative_ci_half_width(&self) -> f64 {
        let half_width = (self.median_ci_high - self.median_ci_low) / 2.0;
        if half_width == 0.0 {
            0.0
        } else if self.p50 == 0.0 {
            f64::INFINITY
        } else {
            half_width / self.p50.abs()
        }
    }
}

/// Percentile `q` (in `[0, 1]`) of samples, by the same definition as [`summarize`];
/// `None` for no samples, a non-finite sample or `q` outside `[0, 1]`.
pub fn percentile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(percentile_of_sorted(&sorted, q))
}

/// `sorted` is non-empty and ascending; `q` in `[0, 1]`.
fn percentile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let below = h.floor() as usize;
    let Some(&upper) = sorted.get(below + 1) else {
        return sorted[sorted.len() - 1];
    };
    let lower = sorted[below];
    // Clamped: rounding in `lower + t·(upper - lower)` may step just outside the pair,
    // and the percentiles must stay ordered and within [min, max].
    (lower + (h - below as f64) * (upper - lower)).clamp(lower, upper)
}

/// Summed in ascending order (deterministic); clamped because rounding can put the
/// mean of equal values one ulp outside them.
fn mean_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len() as f64;
    let mean = sorted.iter().map(|x| x / n).sum::<f64>();
    mean.clamp(sorted[0], sorted[sorted.len() - 1])
}

/// Two-pass sample standard deviation (stable: no `Σx² - n·mean²` cancellation).
fn sample_std(sorted: &[f64], mean: f64) -> f64 {
    if sorted.len() < 2 {
        return 0.0;
    }
    let squares: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
    (squares / (sorted.len() - 1) as f64).sqrt()
}

/// Order-statistic 95% CI of the median; see [`summarize`] for the ranks.
fn median_ci(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len() as f64;
    let spread = Z_95 * n.sqrt() / 2.0;
    let low_rank = (n / 2.0 - spread).floor().max(1.0);
    let high_rank = (1.0 + n / 2.0 + spread).ceil().min(n);
    // Ranks are 1-based; both are within [1, n] after clamping.
    (sorted[low_rank as usize - 1], sorted[high_rank as usize - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn summary(samples: &[f64]) -> Summary {
        summarize(samples).expect("finite, non-empty samples")
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn four_samples_by_hand() {
        let s = summary(&[4.0, 1.0, 3.0, 2.0]);
        expect_test::expect![[r#"
            Summary {
                n: 4,
                mean: 2.5,
                std: 1.2909944487358056,
                min: 1.0,
                p50: 2.5,
                p90: 3.7,
                p95: 3.8499999999999996,
                p99: 3.9699999999999998,
                max: 4.0,
                cv: Some(
                    0.5163977794943222,
                ),
                median_ci_low: 1.0,
                median_ci_high: 4.0,
            }"#]]
        .assert_eq(&format!("{s:#?}"));
    }

    #[test]
    fn median_ci_of_one_hundred_uses_ranks_40_and_61() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summary(&samples);
        assert_eq!((s.median_ci_low, s.median_ci_high), (40.0, 61.0));
        assert_eq!(s.p50, 50.5);
        assert!(close(s.p99, 99.01));
        assert!(close(s.relative_ci_half_width(), 10.5 / 50.5));
    }

    #[test]
    fn single_sample_has_zero_spread() {
        let s = summary(&[7.0]);
        assert_eq!((s.std, s.min, s.p50, s.p99, s.max), (0.0, 7.0, 7.0, 7.0, 7.0));
        assert_eq!((s.median_ci_low, s.median_ci_high), (7.0, 7.0));
        assert_eq!(s.cv, Some(0.0));
        assert_eq!(s.relative_ci_half_width(), 0.0);
    }

    #[test]
    fn empty_or_non_finite_samples_have_no_summary() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[1.0, f64::NAN]), None);
        assert_eq!(summarize(&[f64::INFINITY]), None);
        assert_eq!(percentile(&[1.0], 1.5), None);
    }

    #[test]
    fn zero_mean_has_no_cv_and_zero_median_never_converges() {
        let s = summary(&[-1.0, 0.0, 1.0]);
        assert_eq!(s.cv, None);
        assert_eq!(s.relative_ci_half_width(), f64::INFINITY);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([10, 20, 30, 40, 50], [0, 25, 33, 100]) = [10, 20, 23.2, 50]
        let xs = [50.0, 10.0, 40.0, 20.0, 30.0];
        assert_eq!(percentile(&xs, 0.0), Some(10.0));
        assert_eq!(percentile(&xs, 0.25), Some(20.0));
        assert!(close(percentile(&xs, 0.33).expect("valid"), 23.2));
        assert_eq!(percentile(&xs, 1.0), Some(50.0));
    }

    #[test]
    fn summary_round_trips_through_json() {
        let s = summary(&[3.0, 1.0, 2.0]);
        let json = serde_json::to_string(&s).expect("serialises");
        assert_eq!(serde_json::from_str::<Summary>(&json).expect("parses"), s);
    }

    fn samples() -> impl Strategy<Value = Vec<f64>> {
        prop_oneof![
            prop::collection::vec(1.0e3..1.0e10f64, 1..200),
            prop::collection::vec(-1.0e6..1.0e6f64, 1..50),
            // Many ties, as with coarse timers.
            prop::collection::vec((0u32..5).prop_map(f64::from), 1..50),
        ]
    }

    proptest! {
        #[test]
        fn order_does_not_matter(shuffled in samples().prop_flat_map(|v| {
            (Just(v.clone()), Just(v).prop_shuffle())
        })) {
            let (original, shuffled) = shuffled;
            prop_assert_eq!(summarize(&original), summarize(&shuffled));
        }

        #[test]
        fn statistics_are_ordered_and_bounded(xs in samples()) {
            let s = summary(&xs);
            prop_assert!(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p95);
            prop_assert!(s.p95 <= s.p99 && s.p99 <= s.max);
            prop_assert!(s.min <= s.mean && s.mean <= s.max);
            prop_assert!(s.std >= 0.0);
            prop_assert!(s.min <= s.median_ci_low && s.median_ci_low <= s.p50);
            prop_assert!(s.p50 <= s.median_ci_high && s.median_ci_high <= s.max);
            prop_assert!(s.relative_ci_half_width() >= 0.0);
            prop_assert_eq!(s.n, xs.len() as u64);
        }

        #[test]
        fn scaling_samples_scales_statistics(xs in samples(), c in 1.0e-3..1.0e3f64) {
            let s = summary(&xs);
            let scaled: Vec<f64> = xs.iter().map(|x| x * c).collect();
            let t = summary(&scaled);
            let pairs = [
                (s.mean, t.mean), (s.std, t.std), (s.min, t.min), (s.p50, t.p50),
                (s.p90, t.p90), (s.p95, t.p95), (s.p99, t.p99), (s.max, t.max),
                (s.median_ci_low, t.median_ci_low), (s.median_ci_high, t.median_ci_high),
            ];
            for (before, after) in pairs {
                // Absolute slack for values that cancel to about zero (std of ties).
                let slack = 1e-9 * (s.max.abs().max(s.min.abs()) * c);
                let error = (before * c - after).abs();
                prop_assert!(error <= slack, "{} * {} != {}", before, c, after);
            }
        }
    }
}
