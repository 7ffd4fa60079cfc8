//! A point's row of the global model: the intercept, four standardised continuous
//! columns and the one-hots of its family, precision, mode and hardware class.
//!
//! Must never: depend on the order of the training rows; categories are kept sorted.

use super::Point;

const N_CONTINUOUS: usize = 4;

/// A continuous column whose standard deviation (of logs) is below this never varied;
/// scaling it up would turn rounding into a feature.
const MIN_SPREAD: f64 = 1e-9;

/// The column layout learnt from the training points.
#[derive(Debug, Clone)]
pub(super) struct Encoder {
    means: [f64; N_CONTINUOUS],
    scales: [f64; N_CONTINUOUS],
    /// Sorted distinct family, precision, mode and class values of training.
    categories: [Vec<String>; 4],
}

impl Encoder {
    /// `points` must not be empty.
    pub(super) fn new(points: &[Point]) -> Encoder {
        let raw: Vec<[f64; N_CONTINUOUS]> = points.iter().map(continuous).collect();
        let n = raw.len().max(1) as f64;
        let mut means = [0.0; N_CONTINUOUS];
        let mut scales = [1.0; N_CONTINUOUS];
        for col in 0..N_CONTINUOUS {
            let mean = raw.iter().map(|r| r[col]).sum::<f64>() / n;
            let sd = (raw.iter().map(|r| (r[col] - mean).powi(2)).sum::<f64>() / n).sqrt();
            means[col] = mean;
            // A constant column then stays all zeros after centring, and the ridge
            // gives it weight 0: it says nothing, at fit or at predict time.
            scales[col] = if sd > MIN_SPREAD { sd } else { 1.0 };
        }
        let categories = [0, 1, 2, 3].map(|kind| {
            let mut values: Vec<String> = points.iter().map(|p| categories(p)[kind].to_owned()).collect();
            values.sort_unstable();
            values.dedup();
            values
        });
        Encoder { means, scales, categories }
    }

    pub(super) fn width(&self) -> usize {
        1 + N_CONTINUOUS + self.categories.iter().map(Vec::len).sum::<usize>()
    }

    /// The row of `point`; a category value not seen in training gets no 1 at all.
    pub(super) fn row(&self, point: &Point) -> Vec<f64> {
        let mut row = Vec::with_capacity(self.width());
        row.push(1.0);
        let raw = continuous(point);
        row.extend((0..N_CONTINUOUS).map(|col| (raw[col] - self.means[col]) / self.scales[col]));
        for (values, value) in self.categories.iter().zip(categories(point)) {
            let hit = values.binary_search_by(|v| v.as_str().cmp(value)).ok();
            row.extend((0..values.len()).map(|idx| if hit == Some(idx) { 1.0 } else { 0.0 }));
        }
        row
    }
}

/// ln(flops/peak_flops), ln(weight_bytes/bandwidth), ln(batch), ln(flops/batch), as
/// differences of logs: finite for any finite positive inputs, where a ratio can
/// overflow.
fn continuous(point: &Point) -> [f64; N_CONTINUOUS] {
    let flops = point.flops.ln();
    let batch = f64::from(point.batch).ln();
    [flops - point.peak_flops.ln(), point.weight_bytes.ln() - point.bandwidth.ln(), batch, flops - batch]
}

fn categories(point: &Point) -> [&str; 4] {
    [&point.family, &point.precision, &point.mode, &point.hardware_class]
}
