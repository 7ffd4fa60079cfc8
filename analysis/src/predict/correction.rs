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

/// The rows a correction draws on: the training points, their ln(value) and their
/// residuals under the fit in use.
pub(super) struct Support<'a> {
    pub(super) points: &'a [Point],
    pub(super) log_values: &'a [f64],
    pub(super) residuals: &'a [f64],
}

/// The correction of `query`, whose global fit is `query_fit` (ln), from the rows
/// `same_model` (indices into `support`, all of the query's model), nearest basis first.
pub(super) fn correction(support: &Support<'_>, same_model: &[usize], query: &Point, query_fit: f64) -> Correction {
    let Support { points, residuals, .. } = *support;
    let on_class: Vec<usize> =
        same_model.iter().copied().filter(|&idx| points[idx].hardware_class == query.hardware_class).collect();
    let series: Vec<usize> = on_class.iter().copied().filter(|&idx| same_series(&points[idx], query)).collect();
    if !series.is_empty() {
        along_series(support, &series, query.batch, query_fit)
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

/// The series' correction at `batch`: a measured batch's own residual (the mean of its
/// repeated runs); between two measured batches, what makes the prediction the line in
/// batch through their values; past the series' ends, the nearest end's residual
/// continued along half the slope, in ln(batch), from the batch next to it (held flat
/// when the series has one batch).
///
/// Why a line in batch between measured batches: within a series, latency is close to
/// affine in batch (a fixed cost plus a cost per item) and memory too, so a line through
/// the neighbours is exact where the global model's fit in ln(batch) curves away from
/// them. Interpolating the residuals in ln(batch) instead missed by that curvature.
///
/// Why half the slope beyond the ends: the global model's misfit along a series is
/// curved (launch overhead at small batches, saturation at large ones), so the end's
/// residual drifts on past the end, but the slope between two noisy residuals is noise
/// over a short lever. On seeded curved series (overhead + compute + memory time, the
/// two batches at an end held out), mean absolute ln errors flat / half / full slope
/// were 0.11 / 0.065 / 0.029 at 1 % run noise, 0.11 / 0.093 / 0.11 at 5 %, and
/// 0.13 / 0.16 / 0.21 at 10 %: the half slope is the safe side of the noise of a
/// run's median, a few per cent (a test keeps the 2 % case).
fn along_series(support: &Support<'_>, series: &[usize], batch: u32, query_fit: f64) -> Correction {
    let measured = measured_batches(support, series);
    let first_at_or_above = measured.partition_point(|m| m.batch < batch);
    let below = first_at_or_above.checked_sub(1).and_then(|idx| measured.get(idx));
    let ((shift, n_support), beyond_ends) = match (below, measured.get(first_at_or_above)) {
        (_, Some(at)) if at.batch == batch => ((at.residual, at.n_runs), false),
        (Some(below), Some(above)) => {
            ((between(below, above, batch).ln() - query_fit, below.n_runs + above.n_runs), false)
        }
        (Some(last), None) => (beyond(last, measured.iter().rev().nth(1), batch), true),
        (None, Some(first)) => (beyond(first, measured.get(1), batch), true),
        // `series` is not empty, so one side always exists.
        (None, None) => ((0.0, 0), false),
    };
    Correction { basis: Basis::SameSeries, shift, n_support, beyond_ends }
}

/// One measured batch of a series: the mean residual and ln(value) of its runs.
struct Measured {
    batch: u32,
    residual: f64,
    log_value: f64,
    n_runs: usize,
}

/// The series' batches, ascending. Runs of a batch are averaged first, so that a batch
/// run ten times does not outweigh the batches beside it.
fn measured_batches(support: &Support<'_>, series: &[usize]) -> Vec<Measured> {
    let mut by_batch: BTreeMap<u32, (f64, f64, usize)> = BTreeMap::new();
    for &idx in series {
        let (residuals, log_values, n_runs) = by_batch.entry(support.points[idx].batch).or_insert((0.0, 0.0, 0));
        *residuals += support.residuals[idx];
        *log_values += support.log_values[idx];
        *n_runs += 1;
    }
    by_batch
        .into_iter()
        .map(|(batch, (residuals, log_values, n_runs))| {
            let n = n_runs as f64;
            Measured { batch, residual: residuals / n, log_value: log_values / n, n_runs }
        })
        .collect()
}

/// The value at `batch` on the line in batch through two measured batches' values.
fn between(a: &Measured, b: &Measured, batch: u32) -> f64 {
    let (value_a, value_b) = (a.log_value.exp(), b.log_value.exp());
    let along = (f64::from(batch) - f64::from(a.batch)) / (f64::from(b.batch) - f64::from(a.batch));
    value_a + along * (value_b - value_a)
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
