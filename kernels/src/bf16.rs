//! bf16 matrix products with AVX-512 BF16 (`vdpbf16ps`): bf16 inputs, f32 sums.
//!
//! gemm has no bf16 kernel, so candle's CPU bf16 matmul falls back to a generic loop
//! and runs slower than its f32 one. `vdpbf16ps` multiplies pairs of bf16 values and
//! adds both products to an f32 lane: 32 multiply-adds per instruction where an f32 FMA
//! does 16.
//!
//! [`Panels`] holds the weights (`k × n`, used as `x · W`) in panels of 32 columns; in a
//! panel, each pair of rows `(2p, 2p+1)` is 32 u32 words, word `c` holding
//! `W[2p][c]` in its low half and `W[2p+1][c]` in its high half — two 512-bit loads.
//! The activations are rounded to bf16 the same way, a row's pair `(x[2p], x[2p+1])` in
//! one u32 broadcast to every lane, so one `vdpbf16ps` adds `x[2p]·W[2p][c] +
//! x[2p+1]·W[2p+1][c]` into column `c`'s lane, for 16 columns. A task computes
//! [`ROWS`] rows × 32 columns with 16 accumulators held in registers for the whole `k`.
//!
//! Rounding: round-to-nearest-even from f32 (what PyTorch and oneDNN do); the sums stay
//! in f32. The scalar path ([`Isa::Scalar`], and CPUs without AVX-512 BF16) computes
//! the same products in f32 from the same bf16 values.

use half::bf16;
use rayon::prelude::*;

use crate::Isa;

/// Columns per panel: two 512-bit registers of f32.
pub const PANEL: usize = 32;
/// Rows of `x` per task: 8 rows × 2 registers = 16 accumulators.
pub const ROWS: usize = 8;

/// A `k × n` weight matrix in bf16, laid out as the module docs say.
#[derive(Clone, Debug)]
pub struct Panels {
    k: usize,
    n: usize,
    /// `n.div_ceil(32)` panels of `k.div_ceil(2) × 32` words.
    words: Vec<u32>,
}

/// Two bf16 values in one word: `lo` in the low half.
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(bf16::from_f32(lo).to_bits()) | (u32::from(bf16::from_f32(hi).to_bits()) << 16)
}

impl Panels {
    /// From `w`, `k × n` row-major f32, each value rounded to bf16.
    pub fn from_f32(w: &[f32], k: usize, n: usize) -> Panels {
        assert_eq!(w.len(), k * n, "weight is not {k}×{n}");
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(PANEL);
        let mut words = vec![0u32; panels * pairs * PANEL];
        let at = |r: usize, c: usize| if r < k && c < n { w[r * n + c] } else { 0.0 };
        for panel in 0..panels {
            for p in 0..pairs {
                for c in 0..PANEL {
                    let col = panel * PANEL + c;
                    words[(panel * pairs + p) * PANEL + c] = pair(at(2 * p, col), at(2 * p + 1, col));
                }
            }
        }
        Panels { k, n, words }
    }

    /// `(k, n)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Whether this CPU has the AVX-512 BF16 kernel (without it, bf16 is computed by
    /// the scalar reference: correct, not fast).
    pub fn fast_path_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// `out = x · W` for `m` rows of `x` (`m × k`) into `out` (`m × n`), overwriting it.
    pub fn matmul(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        assert!(
            x.len() == m * k && out.len() == m * n,
            "x is {} and out {} values for {m} rows of {k}×{n}",
            x.len(),
            out.len()
        );
        if m == 0 || n == 0 {
            return;
        }
        let pairs = k.div_ceil(2);
        // The activations as bf16 pairs, one row of `pairs` words each.
        let fast = isa == Isa::Best && Self::fast_path_available();
        let mut xs = vec![0u32; m * pairs];
        xs.par_chunks_mut(pairs).zip(x.par_chunks(k)).for_each(|(words, row)| {
            // The bulk 16 values at a time by the CPU's own rounding instruction (the
            // software rounding took as long as the products), the rest here.
            let done = if fast {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX-512 F and BF16 (checked above).
                unsafe {
                    avx512::to_pairs(row, words)
                }
                #[cfg(not(target_arch = "x86_64"))]
                0
            } else {
                0
            };
            for (p, w) in words.iter_mut().enumerate().skip(done) {
                *w = pair(row[2 * p], row.get(2 * p + 1).copied().unwrap_or(0.0));
            }
        });
        let panels = n.div_ceil(PANEL);
        let row_blocks = m.div_ceil(ROWS);
        // One task per (row block, panel); each writes its own rows × columns of `out`,
        // gathered through a pointer since the columns of a panel are not a sub-slice.
        let out_ptr = crate::SharedMut::new(out.as_mut_ptr());
        (0..row_blocks * panels).into_par_iter().for_each(|task| {
            let (block, panel) = (task / panels, task % panels);
            let first = block * ROWS;
            let rows = ROWS.min(m - first);
            let cols = PANEL.min(n - panel * PANEL);
            let w = &self.words[panel * pairs * PANEL..(panel + 1) * pairs * PANEL];
            let a = &xs[first * pairs..(first + rows) * pairs];
            let mut tile = [0f32; ROWS * PANEL];
            if fast {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX-512 F and BF16 (checked above); `w` is a whole
                // panel, `a` whole rows, `tile` ROWS × PANEL.
                unsafe {
                    avx512::tile(w, a, pairs, rows, &mut tile)
                };
            } else {
                tile_scalar(w, a, pairs, rows, &mut tile);
            }
            for r in 0..rows {
                let dst = (first + r) * n + panel * PANEL;
                // SAFETY: row `first + r` < m and columns `panel*32 .. +cols` < n: inside
                // `out`, and no other task writes this (row, panel) rectangle.
                unsafe { std::ptr::copy_nonoverlapping(tile[r * PANEL..].as_ptr(), out_ptr.get().add(dst), cols) };
            }
        });
    }
}

/// The bf16 value in the low (`hi == false`) or high half of a word, as f32.
fn half_of(word: u32, hi: bool) -> f32 {
    f32::from_bits(if hi { word & 0xFFFF_0000 } else { word << 16 })
}

/// The portable kernel: the same bf16 products summed in f32.
fn tile_scalar(w: &[u32], a: &[u32], pairs: usize, rows: usize, tile: &mut [f32]) {
    for r in 0..rows {
        for c in 0..PANEL {
            let mut acc = 0f32;
            for p in 0..pairs {
                let (x, y) = (a[r * pairs + p], w[p * PANEL + c]);
                acc += half_of(x, false) * half_of(y, false) + half_of(x, true) * half_of(y, true);
            }
            tile[r * PANEL + c] = acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PANEL, ROWS};

    /// Rounds `row` to bf16 into `words` (two values a word, in order) 16 values at a
    /// time; returns how many words it filled (the rest is the caller's).
    ///
    /// # Safety
    /// The CPU must have AVX-512 F and BF16; `words` must hold `row.len().div_ceil(2)`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn to_pairs(row: &[f32], words: &mut [u32]) -> usize {
        assert!(words.len() >= row.len() / 2);
        let chunks = row.len() / 16;
        // SAFETY: chunk `c` reads row[16c..16c+16] and writes words[8c..8c+8], both in
        // bounds by the division above and the assertion.
        unsafe {
            for c in 0..chunks {
                let v = _mm512_loadu_ps(row.as_ptr().add(16 * c));
                let b: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
                _mm256_storeu_si256(words.as_mut_ptr().add(8 * c).cast(), b);
            }
        }
        chunks * 8
    }

    /// `rows` (≤ 8) rows of bf16 pairs `a` against one panel `w`, into `tile` (8 × 32).
    ///
    /// # Safety
    /// The CPU must have AVX-512 F and BF16; `w` must hold `pairs × 32` words, `a`
    /// `rows × pairs`, `tile` `8 × 32` values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile(w: &[u32], a: &[u32], pairs: usize, rows: usize, tile: &mut [f32]) {
        assert!(rows <= ROWS && w.len() >= pairs * PANEL && a.len() >= rows * pairs && tile.len() >= ROWS * PANEL);
        // SAFETY: the caller guarantees the CPU features; every offset below stays
        // within the lengths asserted above.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
            for p in 0..pairs {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(w.as_ptr().add(p * PANEL).cast()));
                let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(w.as_ptr().add(p * PANEL + 16).cast()));
                for (r, acc) in acc.iter_mut().enumerate().take(rows) {
                    let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.get_unchecked(r * pairs + p) as i32));
                    acc[0] = _mm512_dpbf16_ps(acc[0], x, b0);
                    acc[1] = _mm512_dpbf16_ps(acc[1], x, b1);
                }
            }
            for (r, acc) in acc.iter().enumerate().take(rows) {
                _mm512_storeu_ps(tile.as_mut_ptr().add(r * PANEL), acc[0]);
                _mm512_storeu_ps(tile.as_mut_ptr().add(r * PANEL + 16), acc[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded as values;

    /// Against f64 sums of the same bf16-rounded values: equal up to f32 summation.
    #[test]
    fn the_product_is_that_of_the_rounded_values() {
        for (m, k, n) in [(1, 2, 1), (3, 7, 33), (8, 64, 32), (9, 130, 70), (20, 768, 96)] {
            let (x, w) = (values(m * k, 1), values(k * n, 2));
            let p = Panels::from_f32(&w, k, n);
            let round = |v: f32| bf16::from_f32(v).to_f32();
            for isa in [Isa::Best, Isa::Scalar] {
                let mut out = vec![f32::NAN; m * n];
                p.matmul(isa, &x, m, &mut out);
                for i in 0..m {
                    for j in 0..n {
                        let exact: f64 =
                            (0..k).map(|t| f64::from(round(x[i * k + t])) * f64::from(round(w[t * n + j]))).sum();
                        let got = f64::from(out[i * n + j]);
                        assert!(
                            (got - exact).abs() <= 1e-5 * (k as f64).sqrt(),
                            "{isa:?} {m}×{k}×{n} [{i},{j}]: {got} vs {exact}"
                        );
                    }
                }
            }
        }
    }

    /// bf16 keeps 8 bits of mantissa: the product is within the rounding of the inputs
    /// of the f32 one (a relative 2⁻⁸ per input, so about k · 2⁻⁸ of Σ|x·w| at most).
    #[test]
    fn the_product_is_close_to_f32() {
        let (m, k, n) = (4, 256, 40);
        let (x, w) = (values(m * k, 3), values(k * n, 4));
        let mut out = vec![0f32; m * n];
        Panels::from_f32(&w, k, n).matmul(Isa::Best, &x, m, &mut out);
        for i in 0..m {
            for j in 0..n {
                let exact: f32 = (0..k).map(|t| x[i * k + t] * w[t * n + j]).sum();
                let scale: f32 = (0..k).map(|t| (x[i * k + t] * w[t * n + j]).abs()).sum();
                assert!((out[i * n + j] - exact).abs() <= scale / 128.0, "[{i},{j}] {} vs {exact}", out[i * n + j]);
            }
        }
    }

    #[test]
    fn empty_shapes_do_nothing() {
        let p = Panels::from_f32(&[], 0, 0);
        p.matmul(Isa::Best, &[], 3, &mut []);
        assert_eq!(p.shape(), (0, 0));
    }
}
