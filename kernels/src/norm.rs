//! Layer norm over the last dimension: `(x − mean) / √(var + eps) · γ + β` per row, the
//! variance the biased one (divided by the width), as PyTorch and candle compute it.

use rayon::prelude::*;

use crate::{math, run, Isa, Kernel};

/// A layer norm's parameters.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

impl LayerNorm {
    pub fn width(&self) -> usize {
        self.gamma.len()
    }

    /// Normalises every row of `x` where it is.
    pub fn in_place(&self, x: &mut [f32], threads: usize, isa: Isa) {
        let n = self.checked_width(x.len());
        let block = block_len(x.len() / n, n, threads);
        let work = |rows: &mut [f32]| run(isa, Rows { ln: self, rows });
        if threads <= 1 {
            x.chunks_mut(block).for_each(work);
        } else {
            x.par_chunks_mut(block).for_each(work);
        }
    }

    /// Writes the normalised rows of `x` to `out`, leaving `x` as it was (pre-norm
    /// transformers keep `x` for the residual).
    pub fn forward(&self, x: &[f32], out: &mut [f32], threads: usize, isa: Isa) {
        let n = self.checked_width(x.len());
        assert_eq!(out.len(), x.len(), "output is not the input's size");
        let block = block_len(x.len() / n, n, threads);
        let work = |(src, dst): (&[f32], &mut [f32])| {
            dst.copy_from_slice(src);
            run(isa, Rows { ln: self, rows: dst })
        };
        if threads <= 1 {
            x.chunks(block).zip(out.chunks_mut(block)).for_each(work);
        } else {
            x.par_chunks(block).zip(out.par_chunks_mut(block)).for_each(work);
        }
    }

    fn checked_width(&self, len: usize) -> usize {
        let n = self.width();
        assert!(n > 0 && self.beta.len() == n, "layer norm γ and β must be non-empty and equally long");
        assert_eq!(len % n, 0, "{len} values are not whole rows of {n}");
        n
    }
}

/// Normalises whole rows in place.
struct Rows<'a> {
    ln: &'a LayerNorm,
    rows: &'a mut [f32],
}

impl Kernel for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let ln = self.ln;
        let n = ln.width() as f32;
        for row in self.rows.chunks_exact_mut(ln.width()) {
            let mean = math::sum_by(row, |v| v) / n;
            let var = math::sum_by(row, |v| (v - mean) * (v - mean)) / n;
            let inv = 1.0 / (var + ln.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&ln.gamma).zip(&ln.beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

/// Values per task: whole rows, as many tasks as threads.
fn block_len(rows: usize, width: usize, threads: usize) -> usize {
    rows.div_ceil(threads.max(1)).max(1) * width
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], ln: &LayerNorm) -> Vec<f64> {
        let n = ln.width();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(n) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            for (i, &v) in row.iter().enumerate() {
                out.push((v as f64 - mean) / (var + ln.eps as f64).sqrt() * ln.gamma[i] as f64 + ln.beta[i] as f64);
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_in_place_and_out_of_place() {
        let width = 48;
        let x: Vec<f32> = (0..width * 7).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let ln = LayerNorm {
            gamma: (0..width).map(|i| 0.5 + i as f32 / 50.0).collect(),
            beta: (0..width).map(|i| i as f32 / 100.0 - 0.2).collect(),
            eps: 1e-12,
        };
        let want = reference(&x, &ln);
        for isa in [Isa::Best, Isa::Scalar] {
            for threads in [1, 2, 4] {
                let mut a = x.clone();
                ln.in_place(&mut a, threads, isa);
                let mut b = vec![0f32; x.len()];
                ln.forward(&x, &mut b, threads, isa);
                for ((ga, gb), w) in a.iter().zip(&b).zip(&want) {
                    assert!((*ga as f64 - w).abs() < 1e-5 && (*gb as f64 - w).abs() < 1e-5, "{ga} / {gb} against {w}");
                }
            }
        }
    }

    #[test]
    fn a_constant_row_becomes_beta_not_nan() {
        let ln = LayerNorm { gamma: vec![2.0; 4], beta: vec![0.5; 4], eps: 1e-5 };
        let mut x = vec![3.0f32; 8];
        ln.in_place(&mut x, 2, Isa::Best);
        assert_eq!(x, vec![0.5; 8]);
    }
}
