//! The interval of step 3 (see the parent module): held-out errors ln(outcome) −
//! ln(prediction), grouped by the basis the held-out row got, and their percentiles.
//! [`Basis::SameSeries`] is split in two: a batch within the measured ones, and one
//! beyond them (see `Correction::situation`).
//!
//! Each basis is measured in a pass of its own that holds out what a query of that
//! basis lacks: single rows for [`Basis::SameSeries`], whole series for
//! [`Basis::SameModelOnClass`], a model's rows on one class for
//! [`Basis::SameModelElsewhere`], and a model's every row for [`Basis::CatalogOnly`].
//! Groups go to folds by a seeded shuffle; each fold's rows are predicted by a refit
//! without them and corrected from the remaining rows only, as a query would be. A
//! pass keeps the errors of the rows that got its basis (a row with no series
//! neighbours, say, gets a wider one and is left to that basis's pass); every error
//! of every pass also goes to a pooled set, the fallback of a situation with fewer
//! than [`MIN_ERRORS`].
//!
//! Must never: let a held-out row's own value into its prediction.

use std::collections::BTreeMap;

use super::correction::{correction, Support, N_SITUATIONS};
use super::fit::NormalEquations;
use super::{by_model, residuals, Basis, Point, PredictError, PredictOptions};
use crate::bootstrap::percentile_of_sorted;
use crate::rng::Rng;

/// Up to this many groups each is its own fold: the refits are cheap, and each then
/// sees all but one group, as the final fit sees all.
pub(super) const LEAVE_ONE_OUT_UP_TO: usize = 50;

/// A situation with fewer held-out errors than this borrows the pooled ones.
pub(super) const MIN_ERRORS: usize = 8;

/// The ln bounds (low, high) of the interval of each situation, by
/// `Correction::situation`.
pub(super) fn spreads(
    points: &[Point],
    rows: &[Vec<f64>],
    log_values: &[f64],
    equations: &NormalEquations,
    options: &PredictOptions,
) -> Result<[(f64, f64); N_SITUATIONS], PredictError> {
    let mut by_situation: [Vec<f64>; N_SITUATIONS] = Default::default();
    let mut pooled = Vec::new();
    for basis in Basis::ALL {
        let (group_of_row, n_groups) = groups(points, basis);
        let (fold_of_group, n_folds) = folds(n_groups, options, Rng::stream(options.seed, basis.rank() as u64));
        for fold in 0..n_folds {
            let held_out: Vec<usize> =
                (0..points.len()).filter(|&idx| fold_of_group[group_of_row[idx]] == fold).collect();
            let mut kept = equations.clone();
            for &idx in &held_out {
                kept.add(&rows[idx], log_values[idx], -1.0);
            }
            let weights = kept.solve(options.ridge).ok_or(PredictError::Unsolvable { ridge: options.ridge })?;
            let residuals = residuals(&weights, rows, log_values);
            let training = by_model(points, (0..points.len()).filter(|&idx| fold_of_group[group_of_row[idx]] != fold));
            for &idx in &held_out {
                let query = &points[idx];
                let same_model = training.get(query.model.as_str()).map_or(&[][..], Vec::as_slice);
                let support = Support { points, log_values, residuals: &residuals };
                let query_fit = log_values[idx] - residuals[idx];
                let correction = correction(&support, same_model, query, query_fit);
                let error = residuals[idx] - correction.shift;
                pooled.push(error);
                if correction.basis == basis {
                    by_situation[correction.situation()].push(error);
                }
            }
        }
    }
    Ok(bounds(by_situation, pooled, options.coverage))
}

/// Each row's group for `basis`'s pass, numbered in order of first appearance, and
/// how many groups there are.
fn groups(points: &[Point], basis: Basis) -> (Vec<usize>, usize) {
    if basis == Basis::SameSeries {
        return ((0..points.len()).collect(), points.len());
    }
    let mut ids: BTreeMap<(&str, &str, &str, &str, u32), usize> = BTreeMap::new();
    let group_of_row = points
        .iter()
        .map(|p| {
            let key = match basis {
                Basis::SameModelOnClass => (&*p.model, &*p.hardware_class, &*p.precision, &*p.mode, p.seq_len),
                Basis::SameModelElsewhere => (&*p.model, &*p.hardware_class, "", "", 0),
                _ => (&*p.model, "", "", "", 0),
            };
            let next_id = ids.len();
            *ids.entry(key).or_insert(next_id)
        })
        .collect();
    (group_of_row, ids.len())
}

/// The fold of each of `n_groups` groups, and how many folds: one group a fold up to
/// [`LEAVE_ONE_OUT_UP_TO`] groups, else `options.folds` folds dealt round a shuffle.
fn folds(n_groups: usize, options: &PredictOptions, mut rng: Rng) -> (Vec<usize>, usize) {
    if n_groups < 2 {
        // Holding out the only group would leave nothing to fit from: no folds.
        return (vec![0; n_groups], 0);
    }
    let n_folds = if n_groups <= LEAVE_ONE_OUT_UP_TO { n_groups } else { options.folds.min(n_groups) };
    let mut order: Vec<usize> = (0..n_groups).collect();
    rng.shuffle(&mut order);
    let mut fold_of_group = vec![0; n_groups];
    for (position, &group) in order.iter().enumerate() {
        fold_of_group[group] = position % n_folds;
    }
    (fold_of_group, n_folds)
}

/// The percentile bounds of each situation's errors, or of the pooled ones where a
/// situation has too few, widened by the nearest wider situation that has enough: a
/// situation seldom seen is at least as uncertain as the pooled rows, and no more
/// certain than the next coarser evidence. With no errors at all, the interval is
/// unbounded.
fn bounds(
    mut by_situation: [Vec<f64>; N_SITUATIONS],
    mut pooled: Vec<f64>,
    coverage: f64,
) -> [(f64, f64); N_SITUATIONS] {
    let tail = (1.0 - coverage) / 2.0;
    let percentiles = |errors: &mut Vec<f64>| {
        errors.sort_unstable_by(f64::total_cmp);
        if errors.is_empty() {
            (f64::NEG_INFINITY, f64::INFINITY)
        } else {
            (percentile_of_sorted(errors, tail), percentile_of_sorted(errors, 1.0 - tail))
        }
    };
    let pooled = percentiles(&mut pooled);
    let own: Vec<Option<(f64, f64)>> =
        by_situation.iter_mut().map(|errors| (errors.len() >= MIN_ERRORS).then(|| percentiles(errors))).collect();
    let mut spreads = [pooled; N_SITUATIONS];
    for (situation, spread) in spreads.iter_mut().enumerate() {
        *spread = match own[situation] {
            Some(own) => own,
            None => match own[situation + 1..].iter().flatten().next() {
                Some(&(low, high)) => (pooled.0.min(low), pooled.1.max(high)),
                None => pooled,
            },
        };
    }
    spreads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close((low, high): (f64, f64), (expected_low, expected_high): (f64, f64)) {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(low, expected_low) && close(high, expected_high), "({low}, {high})");
    }

    #[test]
    fn a_situation_with_few_errors_takes_the_pooled_bounds_widened_by_the_next_wider() {
        let tens: Vec<f64> = (0..10).map(f64::from).collect();
        let by_situation = [tens.clone(), vec![-50.0, 50.0], tens.iter().map(|e| e - 1.0).collect(), vec![], vec![]];
        let pooled: Vec<f64> = (0..=100).map(f64::from).collect();
        let spreads = bounds(by_situation, pooled, 0.8);
        // Ten errors 0..9: the 10th percentile sits 0.9 of the way up, the 90th 8.1.
        assert_close(spreads[0], (0.9, 8.1));
        // Two errors are too few: the pooled 10..90, widened by situation 2's -0.1..7.1.
        assert_close(spreads[1], (-0.1, 90.0));
        assert_close(spreads[2], (-0.1, 7.1));
        // Nothing wider has enough: the pooled bounds alone.
        assert_close(spreads[3], (10.0, 90.0));
        assert_eq!(bounds(Default::default(), vec![], 0.8)[0], (f64::NEG_INFINITY, f64::INFINITY));
    }

    #[test]
    fn few_groups_are_held_out_one_at_a_time_and_many_dealt_round_the_folds() {
        let options = PredictOptions::DEFAULT;
        let (fold_of_group, n_folds) = folds(7, &options, Rng::new(1));
        assert_eq!(n_folds, 7);
        let mut sorted = fold_of_group.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..7).collect::<Vec<_>>());
        let (fold_of_group, n_folds) = folds(95, &options, Rng::new(1));
        assert_eq!(n_folds, 10);
        let sizes: Vec<usize> = (0..10).map(|fold| fold_of_group.iter().filter(|&&f| f == fold).count()).collect();
        assert_eq!(sizes, [10, 10, 10, 10, 10, 9, 9, 9, 9, 9]);
        assert_eq!(folds(1, &options, Rng::new(1)).1, 0, "a lone group is never held out");
    }
}
