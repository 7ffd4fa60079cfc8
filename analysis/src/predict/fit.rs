//! Ridge least squares through the normal equations, solved by Cholesky: minimises
//! Σ (y − x·w)² + penalty · Σ_{j ≥ 1} w_j², column 0 being the unpenalised intercept.
//! There are a few tens of columns, so forming XᵀX (p² a row) and factoring it (p³/3)
//! is cheap, and a penalty above 0 makes the matrix positive definite whenever the
//! intercept column is not all zeros, so Cholesky needs no pivoting. The sums can also
//! be taken back out row by row, which is how a fold's fit is had without re-summing.
//!
//! Must never: return weights from a factorisation that met a non-positive or
//! non-finite pivot.

/// Below this fraction of its diagonal entry a pivot is rounding, not information: the
/// system is singular in that direction.
const PIVOT_FLOOR: f64 = 1e-13;

/// XᵀX (lower triangle, row-major) and Xᵀy of the rows added so far.
#[derive(Debug, Clone)]
pub(super) struct NormalEquations {
    width: usize,
    gram: Vec<f64>,
    moment: Vec<f64>,
}

impl NormalEquations {
    pub(super) fn new(width: usize) -> NormalEquations {
        NormalEquations { width, gram: vec![0.0; width * width], moment: vec![0.0; width] }
    }

    /// Adds a row (`weight` 1) or takes an added one back out (`weight` −1). `row` must
    /// be `width` long.
    pub(super) fn add(&mut self, row: &[f64], y: f64, weight: f64) {
        for (i, &xi) in row.iter().enumerate() {
            self.moment[i] += weight * xi * y;
            let gram_row = &mut self.gram[i * self.width..=i * self.width + i];
            for (entry, &xj) in gram_row.iter_mut().zip(row) {
                *entry += weight * xi * xj;
            }
        }
    }

    /// The minimising weights, or `None` when the penalised system is singular.
    pub(super) fn solve(&self, penalty: f64) -> Option<Vec<f64>> {
        let mut factor = self.gram.clone();
        for j in 1..self.width {
            factor[j * self.width + j] += penalty;
        }
        cholesky_in_place(&mut factor, self.width)?;
        Some(solve_factored(&factor, self.width, &self.moment))
    }
}

/// Overwrites the lower triangle of the `n`×`n` matrix `a` with L, where a = L Lᵀ.
fn cholesky_in_place(a: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let diagonal = a[j * n + j];
        let pivot = diagonal - (0..j).map(|k| a[j * n + k].powi(2)).sum::<f64>();
        if !(pivot.is_finite() && pivot > PIVOT_FLOOR * diagonal.abs()) {
            return None;
        }
        let root = pivot.sqrt();
        a[j * n + j] = root;
        for i in j + 1..n {
            let dot: f64 = (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum();
            a[i * n + j] = (a[i * n + j] - dot) / root;
        }
    }
    Some(())
}

/// Solves L Lᵀ w = b by substitution forwards then backwards.
fn solve_factored(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; n];
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[i * n + k] * z[k]).sum();
        z[i] = (b[i] - dot) / l[i * n + i];
    }
    let mut w = vec![0.0; n];
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[k * n + i] * w[k]).sum();
        w[i] = (z[i] - dot) / l[i * n + i];
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equations(xs: &[f64], ys: &[f64]) -> NormalEquations {
        let mut eq = NormalEquations::new(2);
        for (&x, &y) in xs.iter().zip(ys) {
            eq.add(&[1.0, x], y, 1.0);
        }
        eq
    }

    #[test]
    fn an_exact_line_is_recovered_without_a_penalty() {
        let xs = [0.0, 1.0, 2.0, 5.0];
        let ys: Vec<f64> = xs.iter().map(|x| 2.0 + 3.0 * x).collect();
        let w = equations(&xs, &ys).solve(0.0).expect("two distinct x values");
        assert!((w[0] - 2.0).abs() < 1e-12 && (w[1] - 3.0).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn the_penalty_shrinks_the_slope_but_not_the_intercept() {
        // x = -1, 0, 1 and y = 2 + 3x: XᵀX = [[3, 0], [0, 2]], Xᵀy = [6, 6], so the
        // intercept is 6/3 = 2 at any penalty and the slope 6/(2 + penalty): 2 at 1.
        let eq = equations(&[-1.0, 0.0, 1.0], &[-1.0, 2.0, 5.0]);
        let w = eq.solve(1.0).expect("positive definite");
        assert!((w[0] - 2.0).abs() < 1e-12 && (w[1] - 2.0).abs() < 1e-12, "{w:?}");
        let w = eq.solve(4.0).expect("positive definite");
        assert!((w[1] - 1.0).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn a_row_taken_back_out_leaves_the_fit_of_the_others() {
        let mut eq = equations(&[0.0, 1.0, 2.0], &[2.0, 5.0, 8.0]);
        eq.add(&[1.0, 3.0], 100.0, 1.0);
        eq.add(&[1.0, 3.0], 100.0, -1.0);
        let w = eq.solve(0.0).expect("two distinct x values");
        assert!((w[0] - 2.0).abs() < 1e-12 && (w[1] - 3.0).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn collinear_columns_are_singular_without_a_penalty_and_solvable_with_one() {
        // One x value only: the slope is not determined by the data.
        let eq = equations(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]);
        assert_eq!(eq.solve(0.0), None);
        let w = eq.solve(1.0).expect("the penalty makes it definite");
        assert!(w.iter().all(|x| x.is_finite()), "{w:?}");
        assert_eq!(NormalEquations::new(3).solve(1.0), None, "no rows: the intercept is free");
    }
}
