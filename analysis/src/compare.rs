//! Comparing two sets of raw latency samples of one cell (a base and a new run, in
//! nanoseconds): the ratio of their medians, new / base, its 95 % confidence interval and
//! a verdict against a threshold.
//!
//! Method: the interval is a percentile bootstrap. Each of `n_resamples` rounds (2000 by
//! default) resamples each side independently with replacement, takes both medians and
//! their ratio; the interval runs from the 2.5th to the 97.5th percentile of the ratios.
//! The median, not the mean, because latency samples have long right tails (a GC pause, a
//! page fault) that move a mean far more than they move what a user sees. The bootstrap
//! assumes nothing about the shape of either distribution, only that the samples of a
//! side are independent draws from one. Medians are found by selection, and a side of
//! more than `resample_cap` samples is resampled that many at a time with the spread
//! rescaled (`bootstrap`'s module doc has the cost): 10 000 samples a side take
//! about a tenth of a second, a million a side well under a second.
//!
//! The verdict reads only the interval, so a noisy comparison says "inconclusive" rather
//! than guess: see [`verdict`].
//!
//! Must never: read a clock or entropy; the seed in the options decides every draw.

use std::fmt;
use std::num::NonZeroUsize;

use crate::bootstrap::{self, Resampling};
use crate::rng::Rng;
use crate::Interval;

/// How to compare; start from [`CompareOptions::DEFAULT`] and change what you need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// Relative change the user does not care about: 0.02 means ±2 % counts as the same.
    /// In `[0, 1)`.
    pub threshold: f64,
    /// Bootstrap rounds.
    pub n_resamples: NonZeroUsize,
    /// Largest resample drawn from one side; larger sides are resampled m-out-of-n.
    pub resample_cap: NonZeroUsize,
    pub seed: u64,
}

impl CompareOptions {
    pub const DEFAULT: CompareOptions = CompareOptions {
        threshold: 0.02,
        n_resamples: NonZeroUsize::new(2000).expect("2000 is not zero"),
        resample_cap: NonZeroUsize::new(20_000).expect("20 000 is not zero"),
        seed: 0,
    };
}

/// What a comparison says about new against base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The whole interval is below `1 - threshold`.
    Faster,
    /// The whole interval is above `1 + threshold`.
    Slower,
    /// The whole interval is within `[1 - threshold, 1 + threshold]`.
    Same,
    /// The interval straddles a threshold: more samples might decide it.
    Inconclusive,
}

/// The outcome of [`ratio_of_medians`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub base_median: f64,
    pub new_median: f64,
    /// `new_median / base_median`.
    pub ratio: f64,
    /// 95 % bootstrap confidence interval of the ratio.
    pub ratio_ci: Interval,
    pub verdict: Verdict,
}

/// Which of the two sample sets a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Base,
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CompareError {
    #[error("the {side} side has {n_samples} samples; a comparison needs at least 2 on each side")]
    TooFewSamples { side: Side, n_samples: usize },
    #[error("sample {sample_idx} of the {side} side is {value}; latencies must be finite and not negative")]
    InvalidSample { side: Side, sample_idx: usize, value: f64 },
    #[error("the median of the {side} side is 0; a ratio of medians needs both above 0")]
    ZeroMedian { side: Side },
    #[error("threshold {threshold} is outside [0, 1)")]
    InvalidThreshold { threshold: f64 },
}

/// Compares `new` against `base`: the ratio of their medians, its interval and the
/// verdict (see the module doc for the method).
pub fn ratio_of_medians(base: &[f64], new: &[f64], options: &CompareOptions) -> Result<Comparison, CompareError> {
    check_threshold(options.threshold)?;
    let base_sorted = sorted_side(base, Side::Base)?;
    let new_sorted = sorted_side(new, Side::New)?;
    let base_median = bootstrap::median_of_sorted(&base_sorted);
    let new_median = bootstrap::median_of_sorted(&new_sorted);
    let resampling = Resampling { n_resamples: options.n_resamples, resample_cap: options.resample_cap };
    let ratio_ci = bootstrap::ratio_interval(&base_sorted, &new_sorted, resampling, &mut Rng::new(options.seed));
    Ok(Comparison {
        base_median,
        new_median,
        ratio: new_median / base_median,
        ratio_ci,
        verdict: verdict(ratio_ci, options.threshold),
    })
}

/// The verdict of an interval of new / base against `threshold` (see [`Verdict`]).
/// A bound exactly on `1 ± threshold` counts as inside.
pub fn verdict(ratio_ci: Interval, threshold: f64) -> Verdict {
    let (same_low, same_high) = (1.0 - threshold, 1.0 + threshold);
    if ratio_ci.low() > same_high {
        Verdict::Slower
    } else if ratio_ci.high() < same_low {
        Verdict::Faster
    } else if same_low <= ratio_ci.low() && ratio_ci.high() <= same_high {
        Verdict::Same
    } else {
        Verdict::Inconclusive
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Base => "base",
            Side::New => "new",
        })
    }
}

fn check_threshold(threshold: f64) -> Result<(), CompareError> {
    if (0.0..1.0).contains(&threshold) {
        Ok(())
    } else {
        Err(CompareError::InvalidThreshold { threshold })
    }
}

/// The side's samples, checked and sorted ascending, with a median above 0.
fn sorted_side(samples: &[f64], side: Side) -> Result<Vec<f64>, CompareError> {
    if samples.len() < 2 {
        return Err(CompareError::TooFewSamples { side, n_samples: samples.len() });
    }
    if let Some((sample_idx, &value)) = samples.iter().enumerate().find(|(_, x)| !(x.is_finite() && **x >= 0.0)) {
        return Err(CompareError::InvalidSample { side, sample_idx, value });
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    if bootstrap::median_of_sorted(&sorted) == 0.0 {
        return Err(CompareError::ZeroMedian { side });
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::jittered;
    use proptest::prelude::*;

    fn interval(low: f64, high: f64) -> Interval {
        Interval::new(low, high).expect("test passes an ordered interval")
    }

    fn compare(base: &[f64], new: &[f64]) -> Comparison {
        ratio_of_medians(base, new, &CompareOptions::DEFAULT).expect("valid samples")
    }

    #[test]
    fn verdict_reads_the_whole_interval_against_the_threshold() {
        assert_eq!(verdict(interval(1.03, 1.10), 0.02), Verdict::Slower);
        assert_eq!(verdict(interval(0.90, 0.97), 0.02), Verdict::Faster);
        assert_eq!(verdict(interval(0.99, 1.01), 0.02), Verdict::Same);
        assert_eq!(verdict(interval(0.98, 1.02), 0.02), Verdict::Same);
        assert_eq!(verdict(interval(1.01, 1.05), 0.02), Verdict::Inconclusive);
        assert_eq!(verdict(interval(0.95, 1.05), 0.02), Verdict::Inconclusive);
        assert_eq!(verdict(interval(1.0, 1.0), 0.0), Verdict::Same);
    }

    #[test]
    fn identical_constant_samples_are_the_same_with_interval_one_to_one() {
        let c = compare(&[100.0; 20], &[100.0; 20]);
        assert_eq!((c.base_median, c.new_median, c.ratio), (100.0, 100.0, 1.0));
        assert_eq!(c.ratio_ci, interval(1.0, 1.0));
        assert_eq!(c.verdict, Verdict::Same);
    }

    #[test]
    fn a_ten_percent_slowdown_is_slower_and_its_interval_holds_one_point_one() {
        let base = jittered(500, 1e6, 0.01, 1);
        let new: Vec<f64> = jittered(500, 1.1e6, 0.01, 2);
        let c = compare(&base, &new);
        assert_eq!(c.verdict, Verdict::Slower);
        assert!(c.ratio_ci.contains(1.1) || (c.ratio - 1.1).abs() < 0.002, "{c:?}");
        assert!(c.ratio_ci.high() - c.ratio_ci.low() < 0.01, "{c:?}");
        let reversed = compare(&new, &base);
        assert_eq!(reversed.verdict, Verdict::Faster);
    }

    #[test]
    fn the_same_distribution_twice_is_the_same() {
        let c = compare(&jittered(2000, 5e5, 0.05, 3), &jittered(2000, 5e5, 0.05, 4));
        assert_eq!(c.verdict, Verdict::Same, "{c:?}");
        assert!(c.ratio_ci.contains(1.0), "{c:?}");
    }

    #[test]
    fn a_handful_of_noisy_samples_is_inconclusive() {
        let c = compare(&[100.0, 140.0, 90.0], &[105.0, 150.0, 85.0]);
        assert_eq!(c.verdict, Verdict::Inconclusive, "{c:?}");
    }

    #[test]
    fn the_seed_decides_the_interval() {
        let (base, new) = (jittered(300, 1e3, 0.2, 5), jittered(300, 1e3, 0.2, 6));
        let with_seed = |seed| ratio_of_medians(&base, &new, &CompareOptions { seed, ..CompareOptions::DEFAULT });
        assert_eq!(with_seed(9), with_seed(9));
        assert_ne!(with_seed(9), with_seed(10));
    }

    #[test]
    fn bad_input_names_the_side_and_the_sample() {
        let opts = CompareOptions::DEFAULT;
        assert_eq!(
            ratio_of_medians(&[1.0], &[1.0, 2.0], &opts),
            Err(CompareError::TooFewSamples { side: Side::Base, n_samples: 1 })
        );
        assert_eq!(
            ratio_of_medians(&[1.0, 2.0], &[], &opts),
            Err(CompareError::TooFewSamples { side: Side::New, n_samples: 0 })
        );
        let err = ratio_of_medians(&[1.0, 2.0], &[1.0, f64::NAN], &opts).expect_err("NaN is refused");
        assert!(matches!(err, CompareError::InvalidSample { side: Side::New, sample_idx: 1, value } if value.is_nan()));
        assert_eq!(
            ratio_of_medians(&[1.0, -2.0], &[1.0, 2.0], &opts),
            Err(CompareError::InvalidSample { side: Side::Base, sample_idx: 1, value: -2.0 })
        );
        assert_eq!(
            ratio_of_medians(&[0.0, 0.0, 5.0], &[1.0, 2.0], &opts),
            Err(CompareError::ZeroMedian { side: Side::Base })
        );
        let opts = CompareOptions { threshold: 1.5, ..opts };
        assert_eq!(
            ratio_of_medians(&[1.0, 2.0], &[1.0, 2.0], &opts),
            Err(CompareError::InvalidThreshold { threshold: 1.5 })
        );
    }

    #[test]
    fn errors_read_as_sentences_without_a_full_stop() {
        let err = CompareError::TooFewSamples { side: Side::New, n_samples: 1 };
        assert_eq!(err.to_string(), "the new side has 1 samples; a comparison needs at least 2 on each side");
    }

    fn samples() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(1.0f64..1e9, 2..60)
    }

    fn fast_options(seed: u64) -> CompareOptions {
        CompareOptions { n_resamples: NonZeroUsize::new(300).expect("not zero"), seed, ..CompareOptions::DEFAULT }
    }

    proptest! {
        #[test]
        fn the_interval_holds_the_point_estimate(base in samples(), new in samples(), seed: u64) {
            let c = ratio_of_medians(&base, &new, &fast_options(seed)).expect("valid samples");
            prop_assert!(c.ratio_ci.contains(c.ratio), "{c:?}");
        }

        #[test]
        fn scaling_both_sides_by_a_power_of_two_changes_nothing_but_the_medians(
            base in samples(), new in samples(), seed: u64, exponent in -20i32..20,
        ) {
            // Multiplying by 2^k is exact in floating point, so every median, ratio and
            // percentile must come out the same, bit for bit.
            let scale = 2f64.powi(exponent);
            let scaled = |xs: &[f64]| xs.iter().map(|x| x * scale).collect::<Vec<_>>();
            let plain = ratio_of_medians(&base, &new, &fast_options(seed)).expect("valid samples");
            let both = ratio_of_medians(&scaled(&base), &scaled(&new), &fast_options(seed)).expect("valid samples");
            prop_assert_eq!(plain.ratio_ci, both.ratio_ci);
            prop_assert_eq!(plain.verdict, both.verdict);
            prop_assert_eq!(plain.base_median * scale, both.base_median);
        }

        #[test]
        fn scaling_both_sides_by_any_factor_keeps_the_interval(
            base in samples(), new in samples(), seed: u64, scale in 1e-3f64..1e3,
        ) {
            // Any other factor rounds, so the bounds may move in the last bits only.
            let scaled = |xs: &[f64]| xs.iter().map(|x| x * scale).collect::<Vec<_>>();
            let plain = ratio_of_medians(&base, &new, &fast_options(seed)).expect("valid samples");
            let both = ratio_of_medians(&scaled(&base), &scaled(&new), &fast_options(seed)).expect("valid samples");
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
            prop_assert!(close(plain.ratio_ci.low(), both.ratio_ci.low()), "{plain:?} {both:?}");
            prop_assert!(close(plain.ratio_ci.high(), both.ratio_ci.high()), "{plain:?} {both:?}");
        }
    }
}
