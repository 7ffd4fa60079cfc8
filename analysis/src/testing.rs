//! Seeded test data shared by the unit tests: noisy runs and samples around a level.
//! Compiled for tests only.

use crate::rng::Rng;

/// `n` values around `level` with a uniform relative jitter of ±`spread`, in steps of
/// `spread/1000`, from `seed`.
pub(crate) fn jittered(n: usize, level: f64, spread: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| level * (1.0 + spread * (rng.below(2001) as f64 / 1000.0 - 1.0))).collect()
}
