//! Seeded test data shared by the unit tests: noisy runs and samples around a level,
//! normal draws.
//! Compiled for tests only.

use crate::rng::Rng;

/// `n` values around `level` with a uniform relative jitter of ±`spread`, in steps of
/// `spread/1000`, from `seed`.
pub(crate) fn jittered(n: usize, level: f64, spread: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| level * (1.0 + spread * (rng.below(2001) as f64 / 1000.0 - 1.0))).collect()
}

/// A standard normal draw (Box–Muller, cosine branch only: simple over fast).
pub(crate) fn gaussian(rng: &mut Rng) -> f64 {
    // 53 random bits, shifted off zero so that the logarithm stays finite.
    let unit = |rng: &mut Rng| ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let (u1, u2) = (unit(rng), unit(rng));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
