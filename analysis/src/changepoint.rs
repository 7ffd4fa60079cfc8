//! Change points in a series of run medians by E-divisive means (Matteson and James,
//! "A Nonparametric Approach for Multiple Change Point Analysis of Multivariate Data",
//! JASA 2014), the detector MongoDB's signal processing, Hunter and Apache Otava run
//! over performance history.
//!
//! The divergence of a split of a segment into a left part X (m runs) and a right part Y
//! (k runs) is, with α = 1,
//!
//! ```text
//! Ê = 2/(m·k) Σ|x−y| − Σ_{i<j}|x_i−x_j| / C(m,2) − Σ_{i<j}|y_i−y_j| / C(k,2)
//! q = m·k/(m+k) · Ê
//! ```
//!
//! an energy distance between the parts, scaled by their sizes: it grows when runs are
//! far from the other side and close to their own. α = 1 makes it sensitive to any change
//! of distribution, not only of the mean, and robust to the odd outlier run.
//!
//! Recursive bisection: the series starts as one segment. Each round scans every segment
//! for its split with the largest q (each part at least `min_segment` runs, the right part
//! running to the segment's end: the paper also searches the end point κ, the
//! implementations for performance history fix it there), takes the strongest split of all, and tests it. A
//! significant split becomes a change point and its two parts segments of their own; the
//! first split that is not significant ends the search.
//!
//! Significance is a permutation test, seeded: shuffle the runs within each segment
//! (which keeps the change points already found and destroys any order inside a segment),
//! rescan, and count the shuffles whose strongest split reaches the observed q. The
//! p-value is (count + 1) / (permutations + 1). The test stops as soon as the count makes
//! p ≤ `significance` impossible: the decision is the one the full test would make, and
//! on a series without a change it costs a handful of shuffles instead of 199.
//!
//! Complexity: a scan of a segment of N runs costs O(N log N), not O(N²). For α = 1 in
//! one dimension, the distance sum from a run to a set of runs is a count and a sum of the
//! runs below it and above it; a Fenwick tree over the segment's value ranks keeps those
//! for the growing left part, and the distance sums to the whole segment are prefix sums
//! over its sorted values, computed once per segment (a shuffle moves runs, not values).
//! A round costs O(P · n log n) for P permutations over a series of n runs; a series with
//! c change points costs O((c + 1) · P · n log n) at most. For n = 500 a scan is tens of
//! microseconds.
//!
//! Must never: read a clock or entropy; the seed in the options decides every shuffle.

use std::num::NonZeroUsize;

use crate::rng::Rng;
use crate::series::{check_option, check_series, SeriesError};

/// How to search; start from [`EDivisiveOptions::DEFAULT`] and change what you need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EDivisiveOptions {
    /// Fewest runs on each side of a change point; at least 2.
    pub min_segment: usize,
    /// Shuffles of the permutation test.
    pub n_permutations: NonZeroUsize,
    /// Largest p-value that confirms a change point, in (0, 1) and reachable:
    /// at least 1 / (n_permutations + 1).
    pub significance: f64,
    pub seed: u64,
}

impl EDivisiveOptions {
    pub const DEFAULT: EDivisiveOptions = EDivisiveOptions {
        min_segment: 3,
        n_permutations: NonZeroUsize::new(199).expect("199 is not zero"),
        // The smallest p 199 shuffles can give. With the latest runs' check at 0.001 the
        // detector's two checks stay within a 0.5 % false-alarm rate on no-change
        // series (docs/ANALYSIS.md).
        significance: 0.005,
        seed: 0,
    };
}

/// A confirmed change point: the runs from `run_idx` on differ from the runs before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// Index of the first run after the change.
    pub run_idx: usize,
    /// The permutation test's p-value when the point was confirmed.
    pub p_value: f64,
}

/// The change points of `series` (run medians in time order), ascending by run.
pub fn e_divisive(series: &[f64], options: &EDivisiveOptions) -> Result<Vec<ChangePoint>, SeriesError> {
    check_options(options)?;
    check_series(series)?;
    let n_needed = 2 * options.min_segment;
    if series.len() < n_needed {
        return Err(SeriesError::TooFewRuns { n_runs: series.len(), n_needed });
    }
    let mut search = Search::new(series, options);
    let mut points = Vec::new();
    while let Some(point) = search.next_change_point() {
        points.push(point);
    }
    points.sort_by_key(|point| point.run_idx);
    Ok(points)
}

fn check_options(options: &EDivisiveOptions) -> Result<(), SeriesError> {
    let min_segment = options.min_segment;
    check_option("min_segment", min_segment as f64, min_segment >= 2, "a segment needs at least 2 runs")?;
    let significance = options.significance;
    let smallest_p = 1.0 / (options.n_permutations.get() + 1) as f64;
    let reachable = significance < 1.0 && significance >= smallest_p;
    check_option("significance", significance, reachable, "it must be below 1 and at least 1/(n_permutations+1)")
}

/// The state of one search: the segments so far and the generator of the shuffles.
struct Search<'a> {
    series: &'a [f64],
    options: &'a EDivisiveOptions,
    segments: Vec<Segment>,
    rng: Rng,
    tree: RankTree,
}

impl<'a> Search<'a> {
    fn new(series: &'a [f64], options: &'a EDivisiveOptions) -> Search<'a> {
        let mut tree = RankTree::with_capacity(series.len());
        let whole = Segment::new(0, series, options.min_segment, &mut tree);
        Search { series, options, segments: vec![whole], rng: Rng::new(options.seed), tree }
    }

    /// Tests the strongest split of all segments; if it is significant, splits its
    /// segment there and returns it.
    fn next_change_point(&mut self) -> Option<ChangePoint> {
        let (segment_idx, split) = self.strongest_split()?;
        let p_value = self.permutation_p_value(split.q)?;
        let segment = self.segments.swap_remove(segment_idx);
        let run_idx = segment.start + split.left_len;
        let min_segment = self.options.min_segment;
        let left = Segment::new(segment.start, &self.series[segment.start..run_idx], min_segment, &mut self.tree);
        let right_runs = &self.series[run_idx..segment.start + segment.len()];
        let right = Segment::new(run_idx, right_runs, min_segment, &mut self.tree);
        self.segments.extend([left, right]);
        Some(ChangePoint { run_idx, p_value })
    }

    fn strongest_split(&self) -> Option<(usize, Split)> {
        let candidates = self.segments.iter().enumerate().filter_map(|(idx, s)| Some((idx, s.observed?)));
        candidates.fold(None, |best, (idx, split)| match best {
            Some((_, best_split)) if best_split.q >= split.q => best,
            _ => Some((idx, split)),
        })
    }

    /// The permutation p-value of `observed_q`, or `None` once it cannot be significant.
    fn permutation_p_value(&mut self, observed_q: f64) -> Option<f64> {
        let n_permutations = self.options.n_permutations.get();
        let p_value = |n_reaching: usize| (n_reaching + 1) as f64 / (n_permutations + 1) as f64;
        let mut n_reaching = 0;
        for _ in 0..n_permutations {
            if self.shuffled_split_reaches(observed_q) {
                n_reaching += 1;
                if p_value(n_reaching) > self.options.significance {
                    return None;
                }
            }
        }
        Some(p_value(n_reaching))
    }

    /// Shuffles each segment that can split and says whether any reaches `observed_q`.
    fn shuffled_split_reaches(&mut self, observed_q: f64) -> bool {
        // A tie counts as reaching (conservative); the tolerance keeps splits equal in
        // exact arithmetic equal after the rounding of a different summation order.
        let reach = observed_q - 1e-9 * observed_q.abs();
        let min_segment = self.options.min_segment;
        for segment in self.segments.iter_mut().filter(|s| s.observed.is_some()) {
            self.rng.shuffle(&mut segment.shuffled_ranks);
            let split = best_split(segment, &segment.shuffled_ranks, min_segment, &mut self.tree);
            if split.is_some_and(|split| split.q >= reach) {
                return true;
            }
        }
        false
    }
}

/// A split of a segment after its first `left_len` runs, and its divergence.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Split {
    left_len: usize,
    q: f64,
}

/// One segment of the series, prepared once for scans of its runs in any order.
struct Segment {
    /// Index of its first run in the series.
    start: usize,
    /// Its values minus its smallest, ascending. Shifting changes no distance and keeps
    /// the sums small, so nothing large is subtracted from something large.
    sorted: Vec<f64>,
    /// By rank: the sum of distances from that value to every value of the segment.
    distance_sums: Vec<f64>,
    /// The sum of distances over all pairs of runs.
    total_distance: f64,
    /// The rank of each run's value, runs in time order (equal values ranked by time).
    ranks: Vec<usize>,
    /// A copy of `ranks` the permutation test shuffles in place.
    shuffled_ranks: Vec<usize>,
    /// The best split of the runs as they happened; `None` if too short to split.
    observed: Option<Split>,
}

impl Segment {
    fn new(start: usize, runs: &[f64], min_segment: usize, tree: &mut RankTree) -> Segment {
        let mut by_value: Vec<usize> = (0..runs.len()).collect();
        // Stable, so equal values rank in time order.
        by_value.sort_by(|&a, &b| runs[a].total_cmp(&runs[b]));
        let mut ranks = vec![0; runs.len()];
        for (rank, &run_pos) in by_value.iter().enumerate() {
            ranks[run_pos] = rank;
        }
        let smallest = by_value.first().map_or(0.0, |&run_pos| runs[run_pos]);
        let sorted: Vec<f64> = by_value.iter().map(|&run_pos| runs[run_pos] - smallest).collect();
        let distance_sums = distance_sums(&sorted);
        let total_distance = distance_sums.iter().sum::<f64>() / 2.0;
        let mut segment = Segment {
            start,
            sorted,
            distance_sums,
            total_distance,
            shuffled_ranks: ranks.clone(),
            ranks,
            observed: None,
        };
        if runs.len() >= 2 * min_segment {
            segment.observed = best_split(&segment, &segment.ranks, min_segment, tree);
        }
        segment
    }

    fn len(&self) -> usize {
        self.sorted.len()
    }
}

/// For each value of ascending `sorted`, the sum of its distances to all of them: the
/// ones below contribute `value·count − their sum`, the ones above `their sum −
/// value·count`, both from prefix sums.
fn distance_sums(sorted: &[f64]) -> Vec<f64> {
    let n = sorted.len();
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for &value in sorted {
        prefix.push(prefix[prefix.len() - 1] + value);
    }
    let total = prefix[n];
    let sums = sorted.iter().enumerate().map(|(rank, &value)| {
        let below = value * rank as f64 - prefix[rank];
        let above = (total - prefix[rank + 1]) - value * (n - 1 - rank) as f64;
        below + above
    });
    sums.collect()
}

/// The split of `segment` with the largest q when its runs come in the order `ranks`
/// (one rank per run, a permutation of the segment's ranks); the earliest on a tie.
///
/// Walks the split point from left to right, moving one run at a time from the right
/// part to the left part and updating the within-part distance sums: the moved run's
/// distance to the left part comes from the tree (count and sum of the left runs below
/// its rank), its distance to the right part is its distance to all minus that.
fn best_split(segment: &Segment, ranks: &[usize], min_segment: usize, tree: &mut RankTree) -> Option<Split> {
    let n_runs = ranks.len();
    tree.clear(n_runs);
    let (mut within_left, mut within_right, mut left_sum) = (0.0, segment.total_distance, 0.0);
    let mut best: Option<Split> = None;
    for (moved_idx, &rank) in ranks[..n_runs - min_segment].iter().enumerate() {
        let value = segment.sorted[rank];
        let (n_below, sum_below) = tree.below(rank);
        let (n_above, sum_above) = (moved_idx - n_below, left_sum - sum_below);
        let to_left = value * n_below as f64 - sum_below + sum_above - value * n_above as f64;
        within_left += to_left;
        within_right -= segment.distance_sums[rank] - to_left;
        tree.add(rank, value);
        left_sum += value;
        let left_len = moved_idx + 1;
        if left_len < min_segment {
            continue;
        }
        let q = divergence(left_len, n_runs - left_len, within_left, within_right, segment.total_distance);
        if best.is_none_or(|best| q > best.q) {
            best = Some(Split { left_len, q });
        }
    }
    best
}

/// q of a split into `m` and `k` runs (both at least 2) from the within-part distance
/// sums and the total: the formula of the module doc with the size factor multiplied in.
fn divergence(m: usize, k: usize, within_left: f64, within_right: f64, total: f64) -> f64 {
    let between = total - within_left - within_right;
    let (m, k) = (m as f64, k as f64);
    (2.0 * between - 2.0 * k * within_left / (m - 1.0) - 2.0 * m * within_right / (k - 1.0)) / (m + k)
}

/// A Fenwick (binary indexed) tree over value ranks holding, for the runs added so far,
/// how many there are and the sum of their values: both prefix queries in O(log n).
struct RankTree {
    /// Index 0 unused; node i covers the ranks i − lowbit(i) to i − 1.
    nodes: Vec<(usize, f64)>,
}

impl RankTree {
    fn with_capacity(n_ranks: usize) -> RankTree {
        RankTree { nodes: vec![(0, 0.0); n_ranks + 1] }
    }

    /// Empties the tree and sizes it for ranks `0..n_ranks`.
    fn clear(&mut self, n_ranks: usize) {
        self.nodes.clear();
        self.nodes.resize(n_ranks + 1, (0, 0.0));
    }

    fn add(&mut self, rank: usize, value: f64) {
        let mut node_idx = rank + 1;
        while node_idx < self.nodes.len() {
            let node = &mut self.nodes[node_idx];
            node.0 += 1;
            node.1 += value;
            node_idx += node_idx & node_idx.wrapping_neg();
        }
    }

    /// Count and sum of the added values whose rank is below `rank`.
    fn below(&self, rank: usize) -> (usize, f64) {
        let (mut count, mut sum) = (0, 0.0);
        let mut node_idx = rank;
        while node_idx > 0 {
            let (node_count, node_sum) = self.nodes[node_idx];
            count += node_count;
            sum += node_sum;
            node_idx &= node_idx - 1;
        }
        (count, sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::jittered as noisy;
    use proptest::prelude::*;

    const STEP: [f64; 10] = [10.0, 10.0, 10.0, 10.0, 10.0, 12.0, 12.0, 12.0, 12.0, 12.0];

    /// q of every split straight from the definition, O(n²) per split: the reference the
    /// fast scan is checked against.
    fn divergence_by_definition(left: &[f64], right: &[f64]) -> f64 {
        let pairs_within = |xs: &[f64]| {
            let mut sum = 0.0;
            for (i, a) in xs.iter().enumerate() {
                sum += xs[i + 1..].iter().map(|b| (a - b).abs()).sum::<f64>();
            }
            sum / (xs.len() * (xs.len() - 1) / 2) as f64
        };
        let between: f64 = left.iter().map(|a| right.iter().map(|b| (a - b).abs()).sum::<f64>()).sum();
        let (m, k) = (left.len() as f64, right.len() as f64);
        let energy = 2.0 * between / (m * k) - pairs_within(left) - pairs_within(right);
        m * k / (m + k) * energy
    }

    fn observed_split(runs: &[f64], min_segment: usize) -> Option<Split> {
        Segment::new(0, runs, min_segment, &mut RankTree::with_capacity(runs.len())).observed
    }

    fn options(significance: f64, seed: u64) -> EDivisiveOptions {
        EDivisiveOptions { significance, seed, ..EDivisiveOptions::DEFAULT }
    }

    #[test]
    fn the_step_series_splits_at_five_with_q_ten() {
        // Split at 5: no distance within either part, 25 pairs 2 apart between them, so
        // Ê = 2·50/25 = 4 and q = 25/10 · 4 = 10.
        assert_eq!(observed_split(&STEP, 3), Some(Split { left_len: 5, q: 10.0 }));
        assert_eq!(divergence_by_definition(&STEP[..5], &STEP[5..]), 10.0);
    }

    #[test]
    fn the_step_series_is_a_change_at_run_five() {
        // Only 2 of the C(10,5) = 252 orders of these runs reach q = 10, so the exact
        // p-value is 2/252 ≈ 0.008 and 199 shuffles estimate it near 0.013: a series
        // this short is at the resolution of the test, which confirms it at 5 %.
        let points = e_divisive(&STEP, &options(0.05, 0)).expect("a valid series");
        assert_eq!(points.len(), 1, "{points:?}");
        assert_eq!(points[0].run_idx, 5);
        assert!(points[0].p_value <= 0.05, "{points:?}");
    }

    #[test]
    fn a_longer_step_is_confirmed_at_the_default_one_percent() {
        let mut series = vec![10.0; 8];
        series.extend([12.0; 8]);
        let points = e_divisive(&series, &EDivisiveOptions::DEFAULT).expect("a valid series");
        assert_eq!(points, [ChangePoint { run_idx: 8, p_value: 1.0 / 200.0 }]);
    }

    #[test]
    fn two_steps_in_noise_are_both_found() {
        let mut series = noisy(60, 100.0, 0.01, 1);
        series.extend(noisy(40, 110.0, 0.01, 2));
        series.extend(noisy(50, 104.0, 0.01, 3));
        let points = e_divisive(&series, &EDivisiveOptions::DEFAULT).expect("a valid series");
        let at: Vec<usize> = points.iter().map(|p| p.run_idx).collect();
        assert_eq!(at, [60, 100]);
        assert!(points.iter().all(|p| p.p_value <= 0.01));
    }

    #[test]
    fn flat_noise_has_a_change_point_about_as_often_as_the_significance_says() {
        // Every change point in flat noise is a false one; at p <= 1 % a round of the
        // test should confirm one in about a hundred series. More than 4 of 100 would
        // happen by chance with probability 0.3 %.
        let n_with_points = (0..100)
            .filter(|&seed| {
                let series = noisy(200, 1e6, 0.03, seed);
                !e_divisive(&series, &options(0.01, seed)).expect("a valid series").is_empty()
            })
            .count();
        assert!(n_with_points <= 4, "{n_with_points} of 100 flat series have a change point");
    }

    #[test]
    fn a_constant_series_has_no_change_point() {
        assert_eq!(e_divisive(&[5.0; 30], &EDivisiveOptions::DEFAULT), Ok(vec![]));
    }

    #[test]
    fn too_few_runs_for_the_minimum_segment_is_an_error() {
        let opts = EDivisiveOptions { min_segment: 4, ..EDivisiveOptions::DEFAULT };
        assert_eq!(e_divisive(&[1.0; 7], &opts), Err(SeriesError::TooFewRuns { n_runs: 7, n_needed: 8 }));
        assert_eq!(e_divisive(&[1.0; 8], &opts), Ok(vec![]));
    }

    #[test]
    fn bad_values_and_options_are_errors() {
        let opts = EDivisiveOptions::DEFAULT;
        let mut series = vec![1.0; 10];
        series[4] = f64::INFINITY;
        assert_eq!(e_divisive(&series, &opts), Err(SeriesError::InvalidValue { run_idx: 4, value: f64::INFINITY }));
        let unreachable = EDivisiveOptions { significance: 0.001, ..opts };
        assert!(matches!(
            e_divisive(&[1.0; 10], &unreachable),
            Err(SeriesError::InvalidOption { name: "significance", .. })
        ));
        let tiny = EDivisiveOptions { min_segment: 1, ..opts };
        assert!(matches!(e_divisive(&[1.0; 10], &tiny), Err(SeriesError::InvalidOption { name: "min_segment", .. })));
    }

    #[test]
    fn distance_sums_match_the_definition() {
        let sorted = [0.0, 1.0, 1.0, 4.0, 9.0];
        let by_definition: Vec<f64> = sorted.iter().map(|a: &f64| sorted.iter().map(|b| (a - b).abs()).sum()).collect();
        assert_eq!(distance_sums(&sorted), by_definition);
    }

    #[test]
    fn the_rank_tree_counts_and_sums_below_a_rank() {
        let mut tree = RankTree::with_capacity(6);
        for (rank, value) in [(4, 40.0), (1, 10.0), (5, 50.0), (2, 20.0)] {
            tree.add(rank, value);
        }
        assert_eq!(tree.below(0), (0, 0.0));
        assert_eq!(tree.below(2), (1, 10.0));
        assert_eq!(tree.below(5), (3, 70.0));
        assert_eq!(tree.below(6), (4, 120.0));
    }

    proptest! {
        #[test]
        fn the_fast_scan_finds_the_split_the_definition_does(
            runs in prop::collection::vec(0.0f64..1000.0, 6..40), min_segment in 2usize..4,
        ) {
            let by_definition = (min_segment..=runs.len() - min_segment)
                .map(|left_len| (left_len, divergence_by_definition(&runs[..left_len], &runs[left_len..])))
                .fold((0, f64::NEG_INFINITY), |best, split| if split.1 > best.1 + 1e-9 * best.1.abs() { split } else { best });
            let fast = observed_split(&runs, min_segment).expect("long enough to split");
            prop_assert!((fast.q - by_definition.1).abs() <= 1e-9 * by_definition.1.abs().max(1.0), "{fast:?} {by_definition:?}");
        }

        #[test]
        fn any_finite_series_gives_sorted_points_or_a_clear_error(
            series in prop::collection::vec(prop_oneof![0.0f64..1e12, Just(0.0), Just(7.0)], 0..80), seed: u64,
        ) {
            match e_divisive(&series, &options(0.01, seed)) {
                Ok(points) => {
                    prop_assert!(points.windows(2).all(|w| w[1].run_idx - w[0].run_idx >= 3));
                    prop_assert!(points.iter().all(|p| p.run_idx >= 3 && p.run_idx <= series.len() - 3));
                    prop_assert!(points.iter().all(|p| p.p_value > 0.0 && p.p_value <= 0.01));
                }
                Err(err) => prop_assert_eq!(err, SeriesError::TooFewRuns { n_runs: series.len(), n_needed: 6 }),
            }
        }
    }
}
