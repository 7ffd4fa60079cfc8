//! The simpler predictors [`super::fit`] is scored against, each without an interval:
//!
//! - [`nearest_neighbour`]: the value of the closest measured row.
//! - [`linear_in_batch`]: a least-squares line in batch through the query's series.
//! - [`roofline`]: the larger of the compute and the memory time, measuring nothing.
//!
//! Must never: panic on what a caller passes; a row with a bad number is compared like
//! any other (its distance sorts last when it is NaN), and a query no rule covers gets
//! `None`.

use super::{same_series, Observation, Point};

/// The value of the row of the query's series (model, class, precision, mode and
/// sequence length) nearest in ln(batch); else of the row of the query's family on its
/// class nearest in ln(flops); else `None`. Ties go to the earlier row.
pub fn nearest_neighbour(train: &[Observation], query: &Point) -> Option<f64> {
    let batch_distance = |o: &Observation| (f64::from(o.point.batch).ln() - f64::from(query.batch).ln()).abs();
    let in_series = train.iter().filter(|o| same_series(&o.point, query));
    if let Some(nearest) = nearest_by(in_series, batch_distance) {
        return Some(nearest.value);
    }
    let flops_distance = |o: &Observation| (o.point.flops.ln() - query.flops.ln()).abs();
    let in_family =
        train.iter().filter(|o| o.point.family == query.family && o.point.hardware_class == query.hardware_class);
    nearest_by(in_family, flops_distance).map(|o| o.value)
}

/// The least-squares line value = a + b · batch through the query's series, at the
/// query's batch; `None` unless the series has at least two distinct batches.
pub fn linear_in_batch(train: &[Observation], query: &Point) -> Option<f64> {
    let series: Vec<(f64, f64)> =
        train.iter().filter(|o| same_series(&o.point, query)).map(|o| (f64::from(o.point.batch), o.value)).collect();
    let n = series.len() as f64;
    let mean_batch = series.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_value = series.iter().map(|s| s.1).sum::<f64>() / n;
    let spread: f64 = series.iter().map(|s| (s.0 - mean_batch).powi(2)).sum();
    // Empty (NaN means and spread) or one batch only: no slope.
    if spread.is_nan() || spread == 0.0 {
        return None;
    }
    let slope = series.iter().map(|s| (s.0 - mean_batch) * (s.1 - mean_value)).sum::<f64>() / spread;
    Some(mean_value + slope * (f64::from(query.batch) - mean_batch))
}

/// The pure roofline time of one iteration, in seconds: max(flops / peak_flops,
/// weight_bytes / bandwidth). A latency, not a memory: it has nothing to say of bytes.
pub fn roofline(query: &Point) -> f64 {
    (query.flops / query.peak_flops).max(query.weight_bytes / query.bandwidth)
}

fn nearest_by<'a>(
    rows: impl Iterator<Item = &'a Observation>,
    distance: impl Fn(&Observation) -> f64,
) -> Option<&'a Observation> {
    // `min_by` keeps the first of equal minima, and `total_cmp` sorts NaN last.
    rows.min_by(|a, b| distance(a).total_cmp(&distance(b)))
}
