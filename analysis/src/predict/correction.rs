//! The residual correction of step 2 (see the parent module): which measured rows are
//! closest to a query, and what their residuals say the global model misses there.
//!
//! Must never: use a row of another model; a model's quirks are its own.

use std::collections::BTreeMap;

use super::{same_series, Basis, Point};

/// How many kinds of evidence the interval tells apart: the four bases, with
/// [`Basis::SameSeries`] split into within the measured batches and beyond them.
pub(super) const N_SITUATIONS: usize = 5;

/// What to add to the global model's ln(value), and on what evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Correction {
    pub(super) basis: Basis,
    pub(super) shift: f64,
    pub(super) n_support: usize,
    /// The query's batch is outside the series' measured ones.
    pub(super) beyond_ends: bool,
}

impl Correction {
    /// The situation's index, nearest evidence 0. An extrapolation along a series is
    /// told from an interpolation because its errors are larger: sharing one interval
    /// would make the one too wide and the other too narrow.
    pub(super) fn situation(&self) -> usize {
        match self.basis {
            Basis::SameSeries => usize::from(self.beyond_ends),
            wider => wider.rank() + 1,
        }
    }
}

/// The correction of `query` from the rows `same_model` (indices into `points` and
/// `residuals`, all of the query's model), nearest basis first.
pub(super) fn correction(points: &[Point], residuals: &[f64], same_model: &[usize], query: &Point) -> Correction {
    let on_class: Vec<usize> =
        same_model.iter().copied().filter(|&idx| points[idx].hardware_class == query.hardware_class).collect();
    let series: Vec<usize> = on_class.iter().copied().filter(|&idx| same_series(&points[idx], query)).collect();
    if !series.is_empty() {
        along_series(points, residuals, &series, query.batch)
    } else if !on_class.is_empty() {
        mean(Basis::SameModelOnClass, residuals, &on_class)
    } else if !same_model.is_empty() {
        mean(Basis::SameModelElsewhere, residuals, same_model)
    } else {
        Correction { basis: Basis::CatalogOnly, shift: 0.0, n_support: 0, beyond_ends: false }
    }
}

fn mean(basis: Basis, residuals: &[f64], idxs: &[usize]) -> Correction {
    let shift = idxs.iter().map(|&idx| residuals[idx]).sum::<f64>() / idxs.len() as f64;
    Correction { basis, shift, n_support: idxs.len(), beyond_ends: false }
}

/// The series' residual at `batch`: a measured batch's own (the mean of its repeated
/// runs), else the line in ln(batch) through the nearest measured batches below and
/// above, else the nearest end's continued along half the slope from the batch next
/// to it (held flat when the series has one batch).
///
/// Why half the slope beyond the ends: the global model's misfit along a series is
/// curved (launch overhead at small batches, saturation at large ones), so the end's
/// residual drifts on past the end, but the slope between two noisy residuals is noise
/// over a short lever. On seeded curved series (overhead + compute + memory time, the
/// two batches at an end held out), mean absolute ln errors flat / half / full slope
/// were 0.11 / 0.065 / 0.029 at 1 % run noise, 0.11 / 0.093 / 0.11 at 5 %, and
/// 0.13 / 0.16 / 0.21 at 10 %: the half slope is the safe side of the noise of a
/// run's median, a few per cent (a test keeps the 2 % case).
fn along_series(points: &[Point], residuals: &[f64], series: &[usize], batch: u32) -> Correction {
    let measured = measured_batches(points, residuals, series);
    let first_at_or_above = measured.partition_point(|m| m.batch < batch);
    let below = first_at_or_above.checked_sub(1).and_then(|idx| measured.get(idx));
    let ((shift, n_support), beyond_ends) = match (below, measured.get(first_at_or_above)) {
        (_, Some(at)) if at.batch == batch => ((at.residual, at.n_runs), false),
        (Some(below), Some(above)) => ((on_line(below, above, batch), below.n_runs + above.n_runs), false),
        (Some(last), None) => (beyond(last, measured.iter().rev().nth(1), batch), true),
        (None, Some(first)) => (beyond(first, measured.get(1), batch), true),
        // `series` is not empty, so one side always exists.
        (None, None) => ((0.0, 0), false),
    };
    Correction { basis: Basis::SameSeries, shift, n_support, beyond_ends }
}

/// One measured batch of a series: the mean residual of its runs.
struct Measured {
    batch: u32,
    residual: f64,
    n_runs: usize,
}

/// The series' batches, ascending. Runs of a batch are averaged first, so that a batch
/// run ten times does not outweigh the batches beside it.
fn measured_batches(points: &[Point], residuals: &[f64], series: &[usize]) -> Vec<Measured> {
    let mut by_batch: BTreeMap<u32, (f64, usize)> = BTreeMap::new();
    for &idx in series {
        let (sum, n_runs) = by_batch.entry(points[idx].batch).or_insert((0.0, 0));
        *sum += residuals[idx];
        *n_runs += 1;
    }
    by_batch
        .into_iter()
        .map(|(batch, (sum, n_runs))| Measured { batch, residual: sum / n_runs as f64, n_runs })
        .collect()
}

/// The line in ln(batch) through two measured batches' residuals, at `batch`.
fn on_line(a: &Measured, b: &Measured, batch: u32) -> f64 {
    let ln = |batch: u32| f64::from(batch).ln();
    a.residual + (ln(batch) - ln(a.batch)) / (ln(b.batch) - ln(a.batch)) * (b.residual - a.residual)
}

/// The residual past the series' `end`, and the runs it rests on, from the batch
/// `inner` next to the end if there is one.
fn beyond(end: &Measured, inner: Option<&Measured>, batch: u32) -> (f64, usize) {
    match inner {
        Some(inner) => (end.residual + 0.5 * (on_line(inner, end, batch) - end.residual), end.n_runs + inner.n_runs),
        None => (end.residual, end.n_runs),
    }
}
