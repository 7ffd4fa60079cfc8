//! Percentile bootstrap of the ratio of two medians, new / base: the interval behind
//! `compare` (two sample sets) and behind each change in `regressions` (the runs either
//! side of it).
//!
//! Each of `n_resamples` rounds draws a resample of each side with replacement, each side
//! independently (the two sides are independent measurements), takes the two medians and
//! their ratio; the interval runs from the 2.5th to the 97.5th percentile of those ratios.
//!
//! Cost: a median is found by selection (`select_nth_unstable`, linear) over the drawn
//! positions of the side's sorted samples, never by sorting a resample, so a round costs
//! O(m) per side for a resample of m. Each side is sorted once up front, so a median of
//! positions is a median of values and only integers are moved. A side of more than
//! `resample_cap` samples is resampled `resample_cap` at a time (the m-out-of-n bootstrap),
//! and each such median is pulled back towards the side's own median by √(m/n): a median's
//! spread shrinks as 1/√size, so a resample of m spreads √(n/m) times wider than one of n
//! would. With the defaults (2000 rounds, cap 20 000) that bounds a comparison at
//! 2 × 2000 × 20 000 draws, under a second, however many samples there are.
//!
//! Must never: sort inside the resampling loop, or divide 0 by 0 (see [`ratio`]).

use std::num::NonZeroUsize;

use crate::rng::Rng;
use crate::Interval;

/// Tail left out on each side of the interval: 2.5 % each for 95 %.
const TAIL: f64 = 0.025;

/// How many rounds, and how large a resample may be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resampling {
    pub(crate) n_resamples: NonZeroUsize,
    pub(crate) resample_cap: NonZeroUsize,
}

/// The 95 % percentile-bootstrap interval of median(new) / median(base). Both sides are
/// sorted ascending and non-empty.
pub(crate) fn ratio_interval(
    base_sorted: &[f64],
    new_sorted: &[f64],
    resampling: Resampling,
    rng: &mut Rng,
) -> Interval {
    let base_medians = resampled_medians(base_sorted, resampling, rng);
    let new_medians = resampled_medians(new_sorted, resampling, rng);
    // Pairing the i-th of each side is a fair draw: the sides were resampled apart.
    let mut ratios: Vec<f64> = new_medians.iter().zip(&base_medians).map(|(&new, &base)| ratio(new, base)).collect();
    ratios.sort_unstable_by(f64::total_cmp);
    let low = percentile_of_sorted(&ratios, TAIL);
    let high = percentile_of_sorted(&ratios, 1.0 - TAIL);
    // Percentiles of one ascending list at q <= 1 - q are ordered, and never NaN.
    debug_assert!(low <= high, "percentiles out of order: {low} > {high}");
    Interval { low, high }
}

/// Median of sorted, non-empty samples: the middle one, or the midpoint of the two
/// middle ones.
pub(crate) fn median_of_sorted(sorted: &[f64]) -> f64 {
    let mid_idx = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid_idx]
    } else {
        sorted[mid_idx - 1].midpoint(sorted[mid_idx])
    }
}

/// `new / base` for medians of latencies (never negative), with the limits spelled out:
/// 0 / 0 is 1 (nothing changed) and x / 0 is +∞ (something free became costly). A NaN
/// would poison the sort of ratios and every comparison after it.
pub(crate) fn ratio(new: f64, base: f64) -> f64 {
    if new == base {
        1.0
    } else {
        new / base
    }
}

/// `n_resamples` bootstrap medians of one side, each rescaled to the side's full size
/// when the resample was capped (see the module doc).
fn resampled_medians(sorted: &[f64], resampling: Resampling, rng: &mut Rng) -> Vec<f64> {
    let n_samples = sorted.len();
    let resample_len = n_samples.min(resampling.resample_cap.get());
    let side_median = median_of_sorted(sorted);
    let shrink = (resample_len as f64 / n_samples as f64).sqrt();
    let mut picks = vec![0usize; resample_len];
    (0..resampling.n_resamples.get())
        .map(|_| {
            picks.iter_mut().for_each(|pick| *pick = rng.below(n_samples));
            let median = median_of_picks(sorted, &mut picks);
            if resample_len == n_samples {
                median
            } else {
                side_median + shrink * (median - side_median)
            }
        })
        .collect()
}

/// Median of the values at `picks` (positions into `sorted`, non-empty) by selection.
/// Positions order as their values do because `sorted` is ascending, so selecting among
/// integers is enough.
fn median_of_picks(sorted: &[f64], picks: &mut [usize]) -> f64 {
    let mid_idx = picks.len() / 2;
    let odd = picks.len() % 2 == 1;
    let (lower_half, &mut upper_pick, _) = picks.select_nth_unstable(mid_idx);
    if odd {
        return sorted[upper_pick];
    }
    // After selection every position left of the middle is at most the middle one, so
    // the largest of them is the lower middle.
    let lower_pick = lower_half.iter().copied().max().unwrap_or(upper_pick);
    sorted[lower_pick].midpoint(sorted[upper_pick])
}

/// Percentile `q` of ascending, non-empty values with linear interpolation between
/// closest ranks (the definition `shared::stats` uses).
pub(crate) fn percentile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let below_idx = h.floor() as usize;
    let lower = sorted[below_idx];
    match sorted.get(below_idx + 1) {
        // Infinite neighbours (ratios to a zero median) have no line between them.
        Some(&upper) if upper.is_finite() && lower.is_finite() => {
            (lower + (h - below_idx as f64) * (upper - lower)).clamp(lower, upper)
        }
        Some(&upper) if h > below_idx as f64 => upper,
        _ => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resampling(n_resamples: usize, resample_cap: usize) -> Resampling {
        Resampling {
            n_resamples: NonZeroUsize::new(n_resamples).expect("test passes a positive count"),
            resample_cap: NonZeroUsize::new(resample_cap).expect("test passes a positive cap"),
        }
    }

    #[test]
    fn median_of_sorted_takes_the_middle_or_the_midpoint() {
        assert_eq!(median_of_sorted(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median_of_sorted(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        assert_eq!(median_of_sorted(&[5.0]), 5.0);
    }

    #[test]
    fn median_of_picks_agrees_with_sorting_the_resample() {
        let sorted: Vec<f64> = (0..50).map(|i| f64::from(i * i)).collect();
        let mut rng = Rng::new(11);
        for len in [1, 2, 3, 10, 11, 49] {
            let mut picks: Vec<usize> = (0..len).map(|_| rng.below(sorted.len())).collect();
            let mut values: Vec<f64> = picks.iter().map(|&p| sorted[p]).collect();
            values.sort_by(f64::total_cmp);
            assert_eq!(median_of_picks(&sorted, &mut picks), median_of_sorted(&values), "len {len}");
        }
    }

    #[test]
    fn ratio_spells_out_zero_medians() {
        assert_eq!(ratio(0.0, 0.0), 1.0);
        assert_eq!(ratio(3.0, 0.0), f64::INFINITY);
        assert_eq!(ratio(0.0, 3.0), 0.0);
        assert_eq!(ratio(3.0, 2.0), 1.5);
    }

    #[test]
    fn percentile_interpolates_between_ranks() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile_of_sorted(&sorted, 0.0), 1.0);
        assert_eq!(percentile_of_sorted(&sorted, 0.5), 3.0);
        assert_eq!(percentile_of_sorted(&sorted, 0.875), 4.5);
        assert_eq!(percentile_of_sorted(&sorted, 1.0), 5.0);
        assert_eq!(percentile_of_sorted(&[1.0, f64::INFINITY], 0.9), f64::INFINITY);
    }

    #[test]
    fn constant_equal_sides_give_the_interval_one_to_one() {
        let side = [4.0; 30];
        let interval = ratio_interval(&side, &side, resampling(200, 100), &mut Rng::new(0));
        assert_eq!((interval.low(), interval.high()), (1.0, 1.0));
    }

    #[test]
    fn capped_resamples_give_about_the_full_interval() {
        // 20 000 distinct values on each side, the new side 10 % higher: the capped
        // interval (resamples of 2 000, rescaled) must be close to the uncapped one.
        let base: Vec<f64> = (0..20_000).map(|i| 1000.0 + f64::from(i) * 0.01).collect();
        let new: Vec<f64> = base.iter().map(|x| x * 1.1).collect();
        let full = ratio_interval(&base, &new, resampling(400, 20_000), &mut Rng::new(5));
        let capped = ratio_interval(&base, &new, resampling(400, 2_000), &mut Rng::new(5));
        let width = |i: Interval| i.high() - i.low();
        assert!(full.contains(1.1) && capped.contains(1.1), "{full:?} {capped:?}");
        assert!((width(capped) / width(full) - 1.0).abs() < 0.3, "{full:?} {capped:?}");
    }
}
