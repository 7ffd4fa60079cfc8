//! Quantized matrix products (GGML's q4_0, q4_1 and q8_0 weights) with AVX-512 VNNI.
//!
//! The weights of a linear layer, `n` rows of `k` values, come in GGML blocks of 32
//! values: an f16 scale `d`, for q4_1 an f16 offset `m`, and the quants — 16 bytes of
//! nibbles for the 4-bit types (byte `i` holds value `i` in its low nibble and value
//! `i + 16` in its high one), 32 signed bytes for q8_0. A value is `d·(q − 8)` in q4_0,
//! `d·q + m` in q4_1 and `d·q` in q8_0.
//!
//! [`Matrix`] keeps them repacked for one kernel: rows in tiles of 16, and per tile and
//! block 64-byte words where word `u` holds, for row `j` at bytes `4j..4j+4`, the
//! block's quant bytes `4u..4u+4`. For the 4-bit types one 512-bit load then gives,
//! after masking the low nibbles, values `4u..4u+4` of all 16 rows, and after a shift
//! the values `16+4u..`; q8_0's bytes (stored `+128`, unsigned) need no unpacking.
//! `vpdpbusd` multiplies such a register (unsigned bytes) with four activation bytes
//! broadcast to every lane (signed) and adds each lane's four products: eight of them
//! make a whole block's dot product for 16 rows at once, one row per 32-bit lane, so the
//! result of a tile is 16 consecutive outputs — stored with one write, no reductions.
//!
//! Activations are quantized per row and block of 32 as llama.cpp does for these types
//! (q8_0: `d = max|x| / 127`, `q = round(x / d)`), keeping `d` in f32. A block's dot
//! product is then `d_w·d_x·Σ q_w·q_x + m_w·d_x·Σ q_x`, where `m_w = −8·d_w` for q4_0
//! and `−128·d_w` for q8_0: the unsigned quants go straight into `vpdpbusd` and the
//! offset becomes one fused multiply-add per block with the activation block's
//! precomputed `d_x·Σ q_x`.
//!
//! Work is split over rayon's pool by tiles of 16 weight rows; within a tile, up to
//! [`ROWS_PER_PASS`] activation rows share each load of the weights (prompt processing),
//! while a single row (decoding one token) streams the weights once.
//!
//! The portable [`Isa::Scalar`] path computes the same integers per block, so both
//! agree up to f32 summation order; machines without AVX-512 VNNI should keep their
//! existing kernels ([`Matrix::fast_path_available`] says which).

use half::f16;
use rayon::prelude::*;

use crate::Isa;

/// Values per GGML block.
pub const BLOCK: usize = 32;
/// Weight rows per tile: one per 32-bit lane of a 512-bit register.
pub const TILE: usize = 16;
/// Activation rows that share one pass over a tile's weights.
pub const ROWS_PER_PASS: usize = 8;
/// Which GGML type the weights were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `d·(q − 8)`, 4-bit `q`: 18 bytes a block.
    Q4_0,
    /// `d·q + m`, 4-bit `q`: 20 bytes a block.
    Q4_1,
    /// `d·q`, signed 8-bit `q`: 34 bytes a block. Kept as `q + 128` (unsigned, for
    /// `vpdpbusd`), so its value is `d·(q' − 128)`, the offset `−128·d`.
    Q8_0,
}

impl Format {
    /// Bytes of one block in a GGML file.
    pub fn block_bytes(self) -> usize {
        match self {
            Format::Q4_0 => 2 + BLOCK / 2,
            Format::Q4_1 => 4 + BLOCK / 2,
            Format::Q8_0 => 2 + BLOCK,
        }
    }

    /// Bytes of one tile's quants per block: 16 rows of 32 nibbles or bytes.
    fn tile_block_bytes(self) -> usize {
        match self {
            Format::Q4_0 | Format::Q4_1 => TILE * BLOCK / 2,
            Format::Q8_0 => TILE * BLOCK,
        }
    }
}

/// A quantized weight matrix (`rows × cols`, used as `x · Wᵀ`) in the tiled layout above.
#[derive(Clone, Debug)]
pub struct Matrix {
    format: Format,
    rows: usize,
    cols: usize,
    /// Per tile, per block: 256 bytes of nibbles (q4) or 512 of bytes (q8_0).
    quants: Vec<u8>,
    /// Per tile, per block: 16 f16 scales (rows past `rows` have scale 0).
    scales: Vec<f16>,
    /// q4_1 only, laid out as `scales`: the offsets.
    offsets: Vec<f16>,
}

impl Matrix {
    /// Repacks `rows × cols` weights given as GGML blocks, row after row.
    pub fn from_ggml(format: Format, rows: usize, cols: usize, raw: &[u8]) -> Result<Self, String> {
        if cols == 0 || !cols.is_multiple_of(BLOCK) {
            return Err(format!("a row of {cols} values is not a whole number of {BLOCK}-value blocks"));
        }
        let blocks = cols / BLOCK;
        let expected = rows
            .checked_mul(blocks)
            .and_then(|b| b.checked_mul(format.block_bytes()))
            .ok_or_else(|| format!("{rows}×{cols} is too large"))?;
        if raw.len() != expected {
            return Err(format!("{rows}×{cols} {format:?} weights take {expected} bytes, got {}", raw.len()));
        }
        let tiles = rows.div_ceil(TILE);
        let mut m = Matrix {
            format,
            rows,
            cols,
            quants: vec![0; tiles * blocks * format.tile_block_bytes()],
            scales: vec![f16::ZERO; tiles * blocks * TILE],
            offsets: match format {
                Format::Q4_0 | Format::Q8_0 => Vec::new(),
                Format::Q4_1 => vec![f16::ZERO; tiles * blocks * TILE],
            },
        };
        for (r, row) in raw.chunks_exact(blocks * format.block_bytes()).enumerate() {
            let (tile, lane) = (r / TILE, r % TILE);
            for (b, block) in row.chunks_exact(format.block_bytes()).enumerate() {
                let at = (tile * blocks + b) * TILE + lane;
                m.scales[at] = f16::from_le_bytes([block[0], block[1]]);
                let base = (tile * blocks + b) * format.tile_block_bytes();
                // Word `u` of a tile's block holds, for each row, bytes 4u..4u+4 of its
                // quants: nibble pairs as GGML stores them, or q8_0's bytes made unsigned.
                let (qs, words) = match format {
                    Format::Q4_0 => (&block[2..], 4),
                    Format::Q4_1 => {
                        m.offsets[at] = f16::from_le_bytes([block[2], block[3]]);
                        (&block[4..], 4)
                    }
                    Format::Q8_0 => (&block[2..], 8),
                };
                for u in 0..words {
                    let dst = base + u * 4 * TILE + lane * 4;
                    for i in 0..4 {
                        let q = qs[4 * u + i];
                        m.quants[dst + i] = if format == Format::Q8_0 { q ^ 0x80 } else { q };
                    }
                }
            }
        }
        Ok(m)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Bytes held (the weights' share of a cell's memory).
    pub fn size_in_bytes(&self) -> usize {
        self.quants.len() + 2 * (self.scales.len() + self.offsets.len())
    }

    /// Whether this CPU has the AVX-512 VNNI kernel; without it the caller is better off
    /// with the kernels it had (the scalar path here is the reference, not a fast path).
    pub fn fast_path_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Row `r` as f32 values (`out.len() == cols`), exactly GGML's dequantization.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.rows && out.len() == self.cols, "row {r} of {}×{}", self.rows, self.cols);
        let blocks = self.cols / BLOCK;
        let (tile, lane) = (r / TILE, r % TILE);
        for (b, values) in out.chunks_exact_mut(BLOCK).enumerate() {
            let at = (tile * blocks + b) * TILE + lane;
            let d = self.scales[at].to_f32();
            let m = self.offset(at);
            for (e, v) in values.iter_mut().enumerate() {
                *v = d * f32::from(self.quant(tile * blocks + b, lane, e)) + m;
            }
        }
    }

    /// The unsigned quant of value `e` of row `lane` in tile-block `tb` (tile × blocks + b).
    fn quant(&self, tb: usize, lane: usize, e: usize) -> u8 {
        let base = tb * self.format.tile_block_bytes() + lane * 4;
        match self.format {
            Format::Q8_0 => self.quants[base + (e / 4) * 4 * TILE + e % 4],
            Format::Q4_0 | Format::Q4_1 => {
                let byte = self.quants[base + ((e % 16) / 4) * 4 * TILE + e % 4];
                if e < 16 {
                    byte & 0x0F
                } else {
                    byte >> 4
                }
            }
        }
    }

    /// The offset `m` of the block at `at` (q4_0's is `−8·d`, q8_0's `−128·d`).
    fn offset(&self, at: usize) -> f32 {
        match self.format {
            Format::Q4_0 => -8.0 * self.scales[at].to_f32(),
            Format::Q4_1 => self.offsets[at].to_f32(),
            Format::Q8_0 => -128.0 * self.scales[at].to_f32(),
        }
    }

    /// `out = x · selfᵀ` for `m` rows of `x` (`m × cols`, row-major) into `out`
    /// (`m × rows`), activations quantized per block as the module docs say.
    pub fn matmul_t(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        assert!(
            x.len() == m * self.cols && out.len() == m * self.rows,
            "x is {} values and out {} for {m} rows through {}×{}",
            x.len(),
            out.len(),
            self.rows,
            self.cols
        );
        if m == 0 || self.rows == 0 {
            return;
        }
        let acts = Activations::quantize(x, m, self.cols);
        let fast = isa == Isa::Best && Self::fast_path_available();
        let tiles = self.rows.div_ceil(TILE);
        // Each task owns its tile's outputs for all m rows: `m × 16` values, copied into
        // `out` afterwards (the last tile may be wider than the rows left).
        let mut tiled = vec![0f32; tiles * m * TILE];
        tiled.par_chunks_mut(m * TILE).enumerate().for_each(|(tile, dst)| {
            for first in (0..m).step_by(ROWS_PER_PASS) {
                let count = ROWS_PER_PASS.min(m - first);
                let dst = &mut dst[first * TILE..(first + count) * TILE];
                if fast {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX-512 F/BW/VNNI (checked above); the tile, rows
                    // and destination are in bounds by construction of the loops.
                    unsafe {
                        match self.format {
                            Format::Q8_0 => avx512::tile::<true>(self, tile, &acts, first, count, dst),
                            _ => avx512::tile::<false>(self, tile, &acts, first, count, dst),
                        }
                    };
                } else {
                    self.tile_scalar(tile, &acts, first, count, dst);
                }
            }
        });
        for (tile, chunk) in tiled.chunks_exact(m * TILE).enumerate() {
            let width = TILE.min(self.rows - tile * TILE);
            for (row, values) in chunk.chunks_exact(TILE).enumerate() {
                let at = row * self.rows + tile * TILE;
                out[at..at + width].copy_from_slice(&values[..width]);
            }
        }
    }

    /// The portable kernel: same integers, same per-block scaling as the AVX-512 one.
    fn tile_scalar(&self, tile: usize, acts: &Activations, first: usize, count: usize, dst: &mut [f32]) {
        let blocks = self.cols / BLOCK;
        for c in 0..count {
            let row = first + c;
            for lane in 0..TILE {
                let mut acc = 0f32;
                for b in 0..blocks {
                    let at = (tile * blocks + b) * TILE + lane;
                    let xq = &acts.q[row * self.cols + b * BLOCK..][..BLOCK];
                    let dot: i32 =
                        (0..BLOCK).map(|e| i32::from(self.quant(tile * blocks + b, lane, e)) * i32::from(xq[e])).sum();
                    let xb = row * blocks + b;
                    acc += dot as f32 * (self.scales[at].to_f32() * acts.d[xb]);
                    acc += self.offset(at) * acts.sum[xb];
                }
                dst[c * TILE + lane] = acc;
            }
        }
    }
}

/// Activations quantized to 8 bits per block of 32, with what the kernels need per block.
struct Activations {
    cols: usize,
    /// `m × cols` quantized values.
    q: Vec<i8>,
    /// Per row and block: the scale `d`.
    d: Vec<f32>,
    /// Per row and block: `d · Σ q`, for the weights' offset term.
    sum: Vec<f32>,
}

impl Activations {
    fn quantize(x: &[f32], m: usize, cols: usize) -> Self {
        let blocks = m * cols / BLOCK;
        let mut a = Activations { cols, q: vec![0; m * cols], d: vec![0.0; blocks], sum: vec![0.0; blocks] };
        let per_task = (4096 / cols).max(1) * cols;
        a.q.par_chunks_mut(per_task)
            .zip(x.par_chunks(per_task))
            .zip(a.d.par_chunks_mut(per_task / BLOCK).zip(a.sum.par_chunks_mut(per_task / BLOCK)))
            .for_each(|((q, x), (d, sum))| {
                for (((q, x), d), sum) in q.chunks_exact_mut(BLOCK).zip(x.chunks_exact(BLOCK)).zip(d).zip(sum) {
                    (*d, *sum) = quantize_block(x, q);
                }
            });
        debug_assert_eq!(a.q.len(), m * a.cols);
        a
    }
}

/// One block of 32: returns `(d, d · Σ q)`. Written so that LLVM vectorises it.
#[inline]
fn quantize_block(x: &[f32], q: &mut [i8]) -> (f32, f32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut total = 0i32;
    for (q, x) in q.iter_mut().zip(x) {
        // Half away from zero, as `round` does, but without its libm call: this loop
        // then vectorises (|x · inv| ≤ 127, so the sum cannot lose the half).
        let scaled = x * inv;
        let v = (scaled + 0.5f32.copysign(scaled)) as i32;
        *q = v as i8;
        total += v;
    }
    (d, d * total as f32)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Activations, Format, Matrix, BLOCK, TILE};

    /// One tile of 16 weight rows against `count` (≤ 8) activation rows from `first`.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI; `tile`, `first + count` and `dst` (at
    /// least `count × 16` values) must be in bounds of the matrix and activations.
    /// Blocks ahead to prefetch (a hint: past the end it is harmless).
    const PREFETCH: usize = 8;

    /// `BYTES`: the weights are q8_0's bytes (eight words a block) rather than nibbles.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile<const BYTES: bool>(
        w: &Matrix,
        tile: usize,
        acts: &Activations,
        first: usize,
        count: usize,
        dst: &mut [f32],
    ) {
        // SAFETY: the caller guarantees the CPU features; every pointer below is
        // offset within the slices taken first, which are bounds-checked.
        unsafe {
            assert!(count <= super::ROWS_PER_PASS && dst.len() >= count * TILE);
            let blocks = w.cols / BLOCK;
            let per_block = w.format.tile_block_bytes();
            let quants = &w.quants[tile * blocks * per_block..][..blocks * per_block];
            let scales = &w.scales[tile * blocks * TILE..][..blocks * TILE];
            let offsets = match w.format {
                Format::Q4_1 => Some(&w.offsets[tile * blocks * TILE..][..blocks * TILE]),
                Format::Q4_0 | Format::Q8_0 => None,
            };
            let xq = &acts.q[first * w.cols..(first + count) * w.cols];
            let xd = &acts.d[first * blocks..(first + count) * blocks];
            let xs = &acts.sum[first * blocks..(first + count) * blocks];
            let low = _mm512_set1_epi8(0x0F);
            // The offset per unit of scale where it is implied: −8 (q4_0), −128 (q8_0).
            let implied = _mm512_set1_ps(if BYTES { -128.0 } else { -8.0 });
            let mut acc = [_mm512_setzero_ps(); super::ROWS_PER_PASS];
            for b in 0..blocks {
                let wq = quants.as_ptr().add(b * per_block);
                // q[t]: values 4t..4t+4 of all 16 rows, as unsigned bytes.
                let mut q = [_mm512_setzero_si512(); 8];
                if BYTES {
                    for (t, q) in q.iter_mut().enumerate() {
                        _mm_prefetch::<_MM_HINT_T0>(wq.wrapping_add(PREFETCH * per_block + t * 64).cast());
                        *q = _mm512_loadu_si512(wq.add(t * 64).cast());
                    }
                } else {
                    for u in 0..4 {
                        _mm_prefetch::<_MM_HINT_T0>(wq.wrapping_add(PREFETCH * per_block + u * 64).cast());
                        let raw = _mm512_loadu_si512(wq.add(u * 64).cast());
                        q[u] = _mm512_and_si512(raw, low);
                        q[u + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
                    }
                }
                let d = _mm512_cvtph_ps(_mm256_loadu_si256(scales.as_ptr().add(b * TILE).cast()));
                let m = match offsets {
                    None => _mm512_mul_ps(d, implied),
                    Some(o) => _mm512_cvtph_ps(_mm256_loadu_si256(o.as_ptr().add(b * TILE).cast())),
                };
                for (c, acc) in acc.iter_mut().enumerate().take(count) {
                    let x = xq.as_ptr().add(c * w.cols + b * BLOCK).cast::<i32>();
                    // Two independent chains of four: vpdpbusd's latency, not its
                    // throughput, bounds one chain of eight when a single row decodes.
                    let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                    for t in 0..4 {
                        lo = _mm512_dpbusd_epi32(lo, q[t], _mm512_set1_epi32(x.add(t).read_unaligned()));
                        hi = _mm512_dpbusd_epi32(hi, q[t + 4], _mm512_set1_epi32(x.add(t + 4).read_unaligned()));
                    }
                    let dot = _mm512_add_epi32(lo, hi);
                    let xb = c * blocks + b;
                    let scale = _mm512_mul_ps(d, _mm512_set1_ps(*xd.get_unchecked(xb)));
                    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, *acc);
                    *acc = _mm512_fmadd_ps(m, _mm512_set1_ps(*xs.get_unchecked(xb)), *acc);
                }
            }
            for (c, acc) in acc.iter().enumerate().take(count) {
                _mm512_storeu_ps(dst.as_mut_ptr().add(c * TILE), *acc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::seeded(n, seed as u32)
    }

    /// GGML's own quantizers (q4_0: the value of largest magnitude maps to -8; q4_1:
    /// min and max span 0..15), written out here to make test files.
    fn to_ggml(format: Format, x: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        for block in x.chunks_exact(BLOCK) {
            let (d, m, q): (f32, f32, Vec<u8>) = match format {
                Format::Q4_0 => {
                    let max = block.iter().fold(0f32, |a, &v| if v.abs() > a.abs() { v } else { a });
                    let d = max / -8.0;
                    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                    (d, 0.0, block.iter().map(|v| ((v * id + 8.5) as u8).min(15)).collect())
                }
                Format::Q4_1 => {
                    let (lo, hi) = block.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
                    let d = (hi - lo) / 15.0;
                    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                    (d, lo, block.iter().map(|v| (((v - lo) * id + 0.5) as u8).min(15)).collect())
                }
                Format::Q8_0 => {
                    let d = block.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
                    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                    (d, 0.0, block.iter().map(|v| (v * id).round() as i8 as u8).collect())
                }
            };
            out.extend(f16::from_f32(d).to_le_bytes());
            match format {
                Format::Q8_0 => out.extend(&q),
                Format::Q4_1 => {
                    out.extend(f16::from_f32(m).to_le_bytes());
                    out.extend((0..16).map(|i| q[i] | (q[i + 16] << 4)));
                }
                Format::Q4_0 => out.extend((0..16).map(|i| q[i] | (q[i + 16] << 4))),
            }
        }
        out
    }

    /// GGML's dequantization of the raw blocks, straight from the file layout.
    fn dequantize_ggml(format: Format, raw: &[u8]) -> Vec<f32> {
        let mut out = Vec::new();
        for block in raw.chunks_exact(format.block_bytes()) {
            let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
            let (m, qs) = match format {
                Format::Q4_0 => (-8.0 * d, &block[2..]),
                Format::Q4_1 => (f16::from_le_bytes([block[2], block[3]]).to_f32(), &block[4..]),
                Format::Q8_0 => {
                    out.extend(block[2..].iter().map(|&q| d * f32::from(q as i8)));
                    continue;
                }
            };
            let mut values = [0f32; BLOCK];
            for (i, byte) in qs.iter().enumerate() {
                values[i] = d * f32::from(byte & 0x0F) + m;
                values[i + 16] = d * f32::from(byte >> 4) + m;
            }
            out.extend(values);
        }
        out
    }

    fn matrix(format: Format, rows: usize, cols: usize, seed: u64) -> (Matrix, Vec<f32>) {
        let raw = to_ggml(format, &values(rows * cols, seed));
        let w = Matrix::from_ggml(format, rows, cols, &raw).expect("repacks");
        (w, dequantize_ggml(format, &raw))
    }

    #[test]
    fn repacking_keeps_every_value() {
        for format in [Format::Q4_0, Format::Q4_1, Format::Q8_0] {
            let (rows, cols) = (37, 96);
            let (w, reference) = matrix(format, rows, cols, 3);
            let mut row = vec![0f32; cols];
            for r in 0..rows {
                w.dequantize_row(r, &mut row);
                assert_eq!(row, reference[r * cols..(r + 1) * cols], "{format:?} row {r}");
            }
            assert_eq!(w.shape(), (rows, cols));
        }
    }

    /// The product is the dequantized weights times the activations, up to the
    /// activations' 8-bit rounding (at most half a step of max|x|/127 per value).
    #[test]
    fn the_product_matches_the_dequantized_weights() {
        for format in [Format::Q4_0, Format::Q4_1, Format::Q8_0] {
            for (rows, cols, m) in [(16, 32, 1), (40, 128, 3), (33, 64, 9), (64, 256, 17)] {
                let (w, wf) = matrix(format, rows, cols, rows as u64);
                let x = values(m * cols, 7 + m as u64);
                for isa in [Isa::Best, Isa::Scalar] {
                    let mut out = vec![f32::NAN; m * rows];
                    w.matmul_t(isa, &x, m, &mut out);
                    for i in 0..m {
                        for r in 0..rows {
                            let wr = &wf[r * cols..(r + 1) * cols];
                            let xr = &x[i * cols..(i + 1) * cols];
                            let exact: f64 = wr.iter().zip(xr).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
                            let bound: f64 = wr.iter().map(|a| f64::from(a.abs())).sum::<f64>() * 0.5 / 127.0 + 1e-4;
                            let got = f64::from(out[i * rows + r]);
                            assert!(
                                (got - exact).abs() <= bound,
                                "{format:?} {isa:?} {rows}x{cols} m={m} [{i},{r}]: {got} vs {exact} (bound {bound})"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The AVX-512 kernel computes the scalar kernel's integers: equal up to f32
    /// summation order. (Where the CPU lacks VNNI both runs are the scalar one.)
    #[test]
    fn the_vector_kernel_agrees_with_the_scalar_one() {
        for format in [Format::Q4_0, Format::Q4_1, Format::Q8_0] {
            let (rows, cols, m) = (48, 2048, 11);
            let (w, _) = matrix(format, rows, cols, 5);
            let x: Vec<f32> = values(m * cols, 6).iter().map(|v| v * 30.0).collect();
            let (mut fast, mut slow) = (vec![0f32; m * rows], vec![0f32; m * rows]);
            w.matmul_t(Isa::Best, &x, m, &mut fast);
            w.matmul_t(Isa::Scalar, &x, m, &mut slow);
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{format:?} [{i}]: {a} vs {b}");
            }
        }
    }

    #[test]
    fn zero_activations_give_zero() {
        let (w, _) = matrix(Format::Q4_0, 16, 64, 1);
        let mut out = vec![f32::NAN; 2 * 16];
        w.matmul_t(Isa::Best, &[0.0; 128], 2, &mut out);
        assert!(out.iter().all(|v| *v == 0.0), "{out:?}");
    }

    #[test]
    fn malformed_weights_are_refused_naming_the_shape() {
        let raw = to_ggml(Format::Q4_0, &values(64, 1));
        let why = Matrix::from_ggml(Format::Q4_0, 2, 64, &raw).expect_err("too short");
        assert_eq!(why, "2×64 Q4_0 weights take 72 bytes, got 36");
        let why = Matrix::from_ggml(Format::Q4_1, 1, 48, &raw).expect_err("not whole blocks");
        assert!(why.contains("48 values"), "{why}");
        assert!(Matrix::from_ggml(Format::Q4_0, usize::MAX, 64, &raw).is_err());
    }
}
