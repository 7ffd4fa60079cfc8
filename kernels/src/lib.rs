//! accelbench's CPU kernels: the pieces of a transformer encoder that stock candle runs
//! as many single-threaded passes, done in fewer passes, on all cores, with the SIMD
//! width the CPU has.
//!
//! Everything here works on row-major `f32` slices and knows nothing of tensors: the
//! engine (`agent::engine::fused`) owns the model and its weights and calls in here.
//!
//! - [`math`]: `exp`, `erf` and GELU that vectorise.
//! - [`linear`]: `x · W + b` through gemm, with the bias, GELU or residual applied in the
//!   same pass over the output (the "epilogue").
//! - [`norm`]: layer norm, in place or into another buffer.
//! - [`bf16`]: bf16 × bf16 → f32 products with AVX-512 BF16 (`vdpbf16ps`).
//! - [`quant`]: 4-bit (GGML q4_0 / q4_1) weight × activation products with AVX-512 VNNI.
//! - [`random`]: seeded uniforms and normals (random-init weights), the same bit for bit
//!   on every machine and instruction set.
//! - [`attention`]: multi-head self-attention straight from a fused QKV projection, one
//!   task per (sequence, head), no transposes or copies of Q, K or V.
//!
//! Instruction sets: loops run under [`pulp::Arch::dispatch`], which picks AVX-512
//! (x86-64-v4), AVX2+FMA (v3) or plain scalar code once per call from what the CPU
//! reports, so one binary runs on any x86-64 and uses AVX-512 where it exists; the
//! tests run each kernel under the scalar path too ([`Isa::Scalar`]) and compare.
//!
//! Must never: read or write outside the slices it is given (every length is checked
//! up front and a mismatch is a panic with the shapes, a bug in the caller), or change
//! the result with the thread count beyond f32 summation order.

pub mod attention;
pub mod bf16;
pub mod linear;
pub mod math;
pub mod norm;
pub mod quant;
pub mod random;

use pulp::{Arch, Simd, WithSimd};

/// Which instruction set a kernel runs under: the best one the CPU has, or the portable
/// fallback (for tests, and to measure what the dispatch is worth).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Best,
    Scalar,
}

impl Isa {
    /// What `Best` resolves to on this CPU, for the bench's and the docs' headers.
    pub fn best_name() -> &'static str {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return "avx512 (x86-64-v4)";
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return "avx2+fma (x86-64-v3)";
            }
        }
        "scalar"
    }
}

/// A loop to compile once per instruction set. `call` must be `#[inline(always)]` (and
/// so must what it calls): it is then compiled inside pulp's `#[target_feature]`
/// function and vectorised for that instruction set. A closure would not do: LLVM
/// declines to inline a large closure body there, and it stays baseline x86-64 code
/// (measured: no faster than the scalar build).
pub(crate) trait Kernel {
    type Output;
    fn call(self) -> Self::Output;
}

/// Runs `kernel` compiled for the instruction set `isa` names.
#[inline(always)]
pub(crate) fn run<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    struct Op<K>(K);
    impl<K: Kernel> WithSimd for Op<K> {
        type Output = K::Output;
        #[inline(always)]
        fn with_simd<S: Simd>(self, _simd: S) -> K::Output {
            self.0.call()
        }
    }
    match isa {
        Isa::Best => Arch::new().dispatch(Op(kernel)),
        Isa::Scalar => Op(kernel).with_simd(pulp::Scalar::new()),
    }
}

/// `dst = lhs · rhs` for an `m×k` by `k×n` product, every matrix addressed by its row
/// and column strides in elements; `dst`'s columns are contiguous.
///
/// # Safety
/// Each pointer must address its whole matrix at those strides, and `dst` must not
/// overlap `lhs` or `rhs` nor be written by anyone else meanwhile.
pub(crate) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
    (rhs, rhs_rs, rhs_cs): (*const f32, usize, usize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: forwarded from the caller; read_dst is false, so dst is only written.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The gemm parallelism for `threads` worker threads.
pub(crate) fn parallelism(threads: usize) -> gemm::Parallelism {
    if threads <= 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    }
}

/// A raw pointer that rayon tasks may share because each writes a disjoint part of the
/// buffer behind it (checked by the caller's indexing, documented where it is used).
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(*mut f32);

impl SharedMut {
    pub(crate) fn new(p: *mut f32) -> Self {
        SharedMut(p)
    }

    /// The pointer. A method, not the field: a closure that reads `.0` captures the
    /// bare pointer (which is not `Sync`) rather than this wrapper.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: only used for writes to disjoint regions, see `attention::attention`.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

/// Deterministic test values in [-1, 1) from `seed` (a small LCG: no dependency).
#[cfg(test)]
pub(crate) fn seeded(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}
