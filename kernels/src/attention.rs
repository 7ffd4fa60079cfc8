//! Multi-head self-attention without padding, read straight from a fused QKV projection.
//!
//! `qkv` is `[batch·seq, 3·hidden]` row-major: each row holds the token's query, key
//! and value side by side, each `hidden = heads · head_dim` wide, heads in order inside
//! them (what [`crate::linear::Linear::concat`] of Q, K and V produces). Per (sequence,
//! head), one task computes `softmax(Q·Kᵀ / √d) · V` with two single-threaded gemm calls
//! that read Q, K and V in place through their strides and write the head's columns of
//! `out` (`[batch·seq, hidden]`) in place: no transpose, no `contiguous()` copy, and the
//! 1/√d scale folded into the softmax. Stock candle does each of those as a pass of its
//! own and splits only the GEMMs across threads, which at seq 128 are too small to split.

use rayon::prelude::*;

use crate::{math, matmul, run, Isa, Kernel, SharedMut};

/// The attention's shape.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Shape {
    pub fn hidden(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// `out = attention(qkv)`, see the module docs for the layouts. Tasks run on rayon's
/// pool when `threads > 1`.
pub fn forward(qkv: &[f32], shape: Shape, out: &mut [f32], threads: usize, isa: Isa) {
    let Shape { batch, seq, heads, head_dim } = shape;
    let hidden = shape.hidden();
    assert_eq!(qkv.len(), batch * seq * 3 * hidden, "qkv is not {batch}·{seq}×3·{hidden}");
    assert_eq!(out.len(), batch * seq * hidden, "output is not {batch}·{seq}×{hidden}");
    if out.is_empty() {
        return;
    }
    let dst = SharedMut::new(out.as_mut_ptr());
    let task = |bh: usize| {
        let (b, h) = (bh / heads, bh % heads);
        let mut scores = vec![0f32; seq * seq];
        let base = b * seq * 3 * hidden + h * head_dim;
        // SAFETY: Q, K and V of head h of sequence b are seq rows of head_dim values at
        // `base`, `base + hidden` and `base + 2·hidden` with a row stride of 3·hidden,
        // all inside qkv (its length was checked). The head's output is seq rows of
        // head_dim values at b·seq·hidden + h·head_dim with a row stride of hidden:
        // inside out, and disjoint from every other (b, h) task's, so the tasks'
        // writes through the shared pointer never overlap.
        unsafe {
            let q = qkv.as_ptr().add(base);
            let k = q.add(hidden);
            let v = q.add(2 * hidden);
            let row = 3 * hidden;
            // scores[i][j] = Σ_d Q[i][d] · K[j][d]: the right-hand side is Kᵀ, K read
            // with its rows as columns.
            let none = gemm::Parallelism::None;
            matmul((seq, seq, head_dim), scores.as_mut_ptr(), seq, (q, row, 1), (k, 1, row), none);
            let scale = 1.0 / (head_dim as f32).sqrt();
            run(isa, Softmax { scores: &mut scores, width: seq, scale });
            let o = dst.get().add(b * seq * hidden + h * head_dim);
            matmul((seq, head_dim, seq), o, hidden, (scores.as_ptr(), seq, 1), (v, row, 1), none);
        }
    };
    if threads <= 1 {
        (0..batch * heads).for_each(task);
    } else {
        (0..batch * heads).into_par_iter().for_each(task);
    }
}

/// Softmax of `scale · row` for each row of `width` values, in place.
struct Softmax<'a> {
    scores: &'a mut [f32],
    width: usize,
    scale: f32,
}

impl Kernel for Softmax<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        for row in self.scores.chunks_exact_mut(self.width) {
            let max = math::max(row);
            for v in row.iter_mut() {
                *v = math::exp((*v - max) * self.scale);
            }
            let inv = 1.0 / math::sum_by(row, |v| v);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward f64 attention over the same layout.
    fn reference(qkv: &[f32], s: Shape) -> Vec<f64> {
        let hidden = s.hidden();
        let at = |b: usize, t: usize, part: usize, h: usize, d: usize| {
            qkv[(b * s.seq + t) * 3 * hidden + part * hidden + h * s.head_dim + d] as f64
        };
        let mut out = vec![0f64; s.batch * s.seq * hidden];
        for b in 0..s.batch {
            for h in 0..s.heads {
                for i in 0..s.seq {
                    let logits: Vec<f64> = (0..s.seq)
                        .map(|j| {
                            (0..s.head_dim).map(|d| at(b, i, 0, h, d) * at(b, j, 1, h, d)).sum::<f64>()
                                / (s.head_dim as f64).sqrt()
                        })
                        .collect();
                    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..s.head_dim {
                        out[(b * s.seq + i) * hidden + h * s.head_dim + d] =
                            (0..s.seq).map(|j| e[j] / z * at(b, j, 2, h, d)).sum();
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_reference_on_every_isa_and_thread_count() {
        let shape = Shape { batch: 3, seq: 19, heads: 4, head_dim: 8 };
        let n = shape.batch * shape.seq * 3 * shape.hidden();
        let qkv: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 250.0) - 2.0).collect();
        let want = reference(&qkv, shape);
        for isa in [Isa::Best, Isa::Scalar] {
            for threads in [1, 2, 5] {
                let mut out = vec![f32::NAN; shape.batch * shape.seq * shape.hidden()];
                forward(&qkv, shape, &mut out, threads, isa);
                for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                    assert!((*g as f64 - w).abs() < 1e-5, "{isa:?} {threads} threads, element {i}: {g} against {w}");
                }
            }
        }
    }

    #[test]
    fn large_logits_stay_finite() {
        let shape = Shape { batch: 1, seq: 4, heads: 1, head_dim: 2 };
        let qkv: Vec<f32> = (0..4 * 6).map(|i| if i % 6 < 4 { 1e4 } else { 1.0 }).collect();
        let mut out = vec![0f32; 4 * 2];
        forward(&qkv, shape, &mut out, 1, Isa::Best);
        assert!(out.iter().all(|v| (v - 1.0).abs() < 1e-6), "{out:?}");
    }
}
