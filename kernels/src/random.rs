//! Seeded random numbers for the engine's random-init weights and synthetic inputs:
//! SplitMix64 uniforms and Box–Muller normals, the same bit for bit on every machine
//! and at every SIMD width, and fast enough that building a model from its seed is not
//! what a small cell spends its time on.
//!
//! Why not libm: `logf`/`cosf` are one call per value (no loop vectorises through them),
//! and glibc picks an FMA or a non-FMA variant by CPU, whose results may differ in the
//! last bit, so "the same seed, the same weights" held only per CPU. Here `ln` and `cos`
//! are polynomials in IEEE basic operations (add, multiply, divide, sqrt, each rounded
//! once, never fused), whose results no instruction set can change.
//!
//! The definition (docs/PERFORMANCE.md's random-init rule relies on it):
//! - SplitMix64 seeded with `s`: draw `k` (from 1) is `mix(s + k·γ)`, so any draw is
//!   reachable without the ones before it, and any range of values can be filled alone;
//! - a uniform is `((draw >> 40) + 1) / 2²⁴`, in (0, 1], never 0 so that `ln` is finite;
//! - normal value `i` (from 0) takes draws `2i + 1` and `2i + 2` as `u₁`, `u₂` and is
//!   `√(−2 ln u₁) · cos(2π u₂)`.

use rayon::prelude::*;

use crate::{run, Isa, Kernel};

/// SplitMix64's increment (the golden ratio in 64 bits).
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Draw `k` (from 1) of SplitMix64 seeded with `seed`.
#[inline(always)]
pub fn draw(seed: u64, k: u64) -> u64 {
    mix(seed.wrapping_add(k.wrapping_mul(GAMMA)))
}

/// SplitMix64's output function of its state (a stateful generator adds [`GAMMA`] to
/// its state, then mixes it).
#[inline(always)]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A draw as a uniform in (0, 1]: its top 24 bits, plus one, over 2²⁴ (exact in f32).
#[inline(always)]
fn unit(bits: u64) -> f32 {
    ((bits >> 40) as f32 + 1.0) / (1u64 << 24) as f32
}

/// Normal value `i` of the sequence seeded with `seed`, times `scale`.
#[inline(always)]
pub fn normal_at(seed: u64, i: u64, scale: f32) -> f32 {
    let u1 = unit(draw(seed, 2 * i + 1));
    let u2 = unit(draw(seed, 2 * i + 2));
    (-2.0 * ln_unit(u1)).sqrt() * cos_turns(u2) * scale
}

/// Below this many values a fill stays on the calling thread.
const PARALLEL_FROM: usize = 1 << 16;

/// Writes normal values `first..first + out.len()` of the sequence seeded with `seed`,
/// each times `scale`, on rayon's threads for big slices. The values do not depend on
/// `isa` or on how the slice is split.
pub fn fill_normal(seed: u64, first: u64, scale: f32, out: &mut [f32], isa: Isa) {
    let work = |(k, chunk): (usize, &mut [f32])| {
        let first = first + (k * PARALLEL_FROM) as u64;
        run(isa, Normals { seed, first, scale, out: chunk })
    };
    if out.len() < 2 * PARALLEL_FROM {
        work((0, out));
    } else {
        out.par_chunks_mut(PARALLEL_FROM).enumerate().for_each(work);
    }
}

struct Normals<'a> {
    seed: u64,
    first: u64,
    scale: f32,
    out: &'a mut [f32],
}

impl Kernel for Normals<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        for (i, v) in self.out.iter_mut().enumerate() {
            *v = normal_at(self.seed, self.first + i as u64, self.scale);
        }
    }
}

/// ln(u) for a normal positive `u` ≤ 1 (every uniform [`unit`] makes): u = m·2ᵉ with m
/// in [√½, √2), ln m = 2·atanh(s) with s = (m − 1)/(m + 1), |s| ≤ 0.172, whose odd
/// series to s⁹ is within 2e-9 of it.
#[inline(always)]
fn ln_unit(u: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let bits = u.to_bits();
    let mut e = ((bits >> 23) as i32) - 127;
    let mut m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
    let big = m > std::f32::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e += i32::from(big);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0))));
    let e = e as f32;
    e * LN2_HI + (2.0 * s * series + e * LN2_LO)
}

/// cos(2π·u) for u in [0, 1]: with t = |u − ½| (exact), cos(2πu) = −cos(2πt) =
/// sin(2π(t − ¼)), an angle within ±π/2 where sin's Taylor series to z¹¹ is within 6e-8.
#[inline(always)]
fn cos_turns(u: f32) -> f32 {
    let z = std::f32::consts::TAU * ((u - 0.5).abs() - 0.25);
    let z2 = z * z;
    let p = 1.0 / 362_880.0 + z2 * (-1.0 / 39_916_800.0);
    let p = -1.0 / 5_040.0 + z2 * p;
    let p = 1.0 / 120.0 + z2 * p;
    let p = -1.0 / 6.0 + z2 * p;
    z + z * z2 * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_and_cos_are_close_to_f64() {
        let mut worst_ln = 0f64;
        let mut worst_cos = 0f64;
        for k in (0..(1u64 << 24)).step_by(97) {
            let u = ((k + 1) as f32) / (1u64 << 24) as f32;
            let want = (u as f64).ln();
            worst_ln = worst_ln.max((ln_unit(u) as f64 - want).abs() / want.abs().max(1.0));
            let want = (std::f64::consts::TAU * u as f64).cos();
            worst_cos = worst_cos.max((cos_turns(u) as f64 - want).abs());
        }
        assert!(worst_ln < 3e-7, "ln: worst error {worst_ln}");
        assert!(worst_cos < 3e-7, "cos: worst error {worst_cos}");
        assert_eq!(ln_unit(1.0), 0.0);
        assert!((cos_turns(0.5) + 1.0).abs() < 2e-7 && (cos_turns(1.0) - 1.0).abs() < 2e-7);
        assert!(cos_turns(0.75).abs() < 1e-7);
    }

    /// Every instruction set and every split gives the scalar definition, bit for bit.
    #[test]
    fn fills_are_the_definition_whatever_the_isa_and_split() {
        let n = 2 * PARALLEL_FROM + 1234;
        let want: Vec<f32> = (0..n as u64).map(|i| normal_at(42, i, 0.02)).collect();
        for isa in [Isa::Best, Isa::Scalar] {
            let mut got = vec![0f32; n];
            fill_normal(42, 0, 0.02, &mut got, isa);
            assert!(got == want, "{isa:?} differs from the definition");
            let mut tail = vec![0f32; 1000];
            fill_normal(42, 5000, 0.02, &mut tail, isa);
            assert!(tail[..] == want[5000..6000], "{isa:?}: a fill from value 5000 differs");
        }
    }

    #[test]
    fn normals_have_mean_zero_and_unit_variance() {
        let mut v = vec![0f32; 1 << 20];
        fill_normal(7, 0, 1.0, &mut v, Isa::Best);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let beyond_3 = v.iter().filter(|x| x.abs() > 3.0).count() as f64 / n;
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((var - 1.0).abs() < 0.005, "variance {var}");
        // P(|Z| > 3) = 0.0027 for a standard normal.
        assert!((beyond_3 - 0.0027).abs() < 0.0005, "tail mass {beyond_3}");
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn draws_are_splitmix64() {
        // SplitMix64 seeded with 0: its published first outputs.
        assert_eq!(draw(0, 1), 0xE220_A839_7B1D_CDAF);
        assert_eq!(draw(0, 2), 0x6E78_9E6A_A1B9_65F4);
    }
}
