//! Seeded random weights for models built from their configs.
//!
//! Performance does not depend on weight values, but it does depend on them being
//! ordinary numbers: all-zero matrices would make every output degenerate and hide a
//! broken backend from the output check. So every tensor a model asks for is filled
//! from a deterministic generator keyed by `(seed, tensor name)`: the same seed gives
//! the same weights whatever order the model creates its tensors in.
//!
//! Rule (documented in docs/PERFORMANCE.md, recorded on every row as
//! `random-init:seed=<n>`):
//! - tensors of rank >= 2 (matrices, embeddings, convolutions): normal(0, 0.02), the
//!   `initializer_range` most Hugging Face configs use;
//! - rank-1 tensors whose name ends in `weight`, `gamma` or `scale` (norm gains): 1.0;
//! - other rank-1 tensors (biases): 0.0.

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarMap};
use sha2::{Digest, Sha256};

/// Standard deviation of matrix weights (Hugging Face's usual `initializer_range`).
const MATRIX_STD: f32 = 0.02;

/// A [`SimpleBackend`] that makes every requested tensor from the seed.
pub struct SeededInit {
    seed: u64,
}

impl SeededInit {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The f32 values of the tensor `name` of `shape`, per the module's rule.
    pub fn values(&self, name: &str, shape: &Shape) -> Vec<f32> {
        let n = shape.elem_count();
        if shape.rank() >= 2 {
            let mut values = vec![0f32; n];
            fill_normal(tensor_seed(self.seed, name), MATRIX_STD, &mut values);
            values
        } else {
            let gain = ["weight", "gamma", "scale"].iter().any(|s| name.ends_with(s));
            vec![if gain { 1.0 } else { 0.0 }; n]
        }
    }

    pub fn tensor(&self, name: &str, shape: &Shape, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_vec(self.values(name, shape), shape.clone(), dev)?.to_dtype(dtype)
    }
}

impl SimpleBackend for SeededInit {
    fn get(&self, s: Shape, name: &str, _h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.tensor(name, &s, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle_core::Result<Tensor> {
        // Only asked for tensors whose shape the caller does not know: a random model
        // cannot invent one, so this is a clear error rather than a guess.
        candle_core::bail!("random-init cannot provide {name} without a shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// Overwrites every variable of `varmap` with its seeded value (training builds its
/// model through a `VarMap`, whose own initialisation is not seeded).
pub fn reseed_varmap(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let init = SeededInit::new(seed);
    let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock poisoned".into()))?;
    for (name, var) in data.iter() {
        let t = init.tensor(name, var.shape(), var.dtype(), var.device())?;
        var.set(&t)?;
    }
    Ok(())
}

/// Seeded integers in `0..upper` (token ids and the like).
pub fn seeded_ids(seed: u64, name: &str, n: usize, upper: u32) -> Vec<u32> {
    let mut rng = SplitMix64::new(tensor_seed(seed, name));
    (0..n).map(|_| (rng.next_u64() % u64::from(upper.max(1))) as u32).collect()
}

/// Seeded standard-normal floats (pixels, mel frames).
pub fn seeded_normal(seed: u64, name: &str, n: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(tensor_seed(seed, name));
    (0..n).map(|_| rng.normal()).collect()
}

/// Below this many values a tensor is filled on the calling thread.
const PARALLEL_FROM: usize = 1 << 18;

/// Fills `out` with the normals a [`SplitMix64`] seeded with `seed` draws, times `scale`,
/// on every core for big tensors. The values are exactly the sequential ones: value `i`
/// uses draws `2i + 1` and `2i + 2`, and SplitMix64's state after `k` draws is
/// `seed + k·γ`, so each chunk starts its generator where the sequence would be.
fn fill_normal(seed: u64, scale: f32, out: &mut [f32]) {
    let fill = |start: usize, chunk: &mut [f32]| {
        let mut rng = SplitMix64::at(seed, 2 * start as u64);
        for v in chunk {
            *v = rng.normal() * scale;
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if out.len() < PARALLEL_FROM || threads == 1 {
        return fill(0, out);
    }
    let chunk_len = out.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (k, chunk) in out.chunks_mut(chunk_len).enumerate() {
            scope.spawn(move || fill(k * chunk_len, chunk));
        }
    });
}

fn tensor_seed(seed: u64, name: &str) -> u64 {
    let digest = Sha256::new().chain_update(seed.to_le_bytes()).chain_update(name.as_bytes()).finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b)
}

/// SplitMix64: tiny, fast, and its output is fixed by its published definition, so
/// weights are the same on every machine and every version of every crate.
struct SplitMix64(u64);

/// SplitMix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator seeded with `seed` after `draws` calls of `next_u64`.
    fn at(seed: u64, draws: u64) -> Self {
        Self(seed.wrapping_add(draws.wrapping_mul(GAMMA)))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1], never 0 so that `ln` is finite.
    fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 + 1.0) / (1u64 << 24) as f32
    }

    /// Standard normal by Box-Muller.
    fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_values_any_order() {
        let init = SeededInit::new(7);
        let s = Shape::from((4, 8));
        let a = init.values("encoder.layer.0.attention.self.query.weight", &s);
        let _ = init.values("something.else.weight", &s);
        let b = init.values("encoder.layer.0.attention.self.query.weight", &s);
        assert_eq!(a, b);
        let other = SeededInit::new(8).values("encoder.layer.0.attention.self.query.weight", &s);
        assert_ne!(a, other);
    }

    #[test]
    fn matrices_are_small_normals_and_vectors_follow_the_rule() {
        let init = SeededInit::new(1);
        let v = init.values("w", &Shape::from((256, 256)));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.001, "mean {mean}");
        assert!((var.sqrt() - MATRIX_STD).abs() < 0.001, "std {}", var.sqrt());
        assert!(v.iter().all(|x| x.is_finite()));
        assert_eq!(init.values("ln.weight", &Shape::from(3)), vec![1.0; 3]);
        assert_eq!(init.values("ln.bias", &Shape::from(3)), vec![0.0; 3]);
    }

    /// The parallel fill is the sequential definition, value for value.
    #[test]
    fn big_tensors_get_exactly_the_sequential_values() {
        let n = PARALLEL_FROM * 3 + 17;
        let got = SeededInit::new(5).values("big.weight", &Shape::from((n, 1)));
        let mut rng = SplitMix64::new(tensor_seed(5, "big.weight"));
        let want: Vec<f32> = (0..n).map(|_| rng.normal() * MATRIX_STD).collect();
        assert!(got == want, "the parallel fill differs from the sequential generator");
        // And the values are pinned: a change here changes what `random-init:seed=N` means.
        assert_eq!(
            SeededInit::new(1).values("w", &Shape::from((1, 3))),
            [-0.000_725_987_37, 0.007_304_966_4, 0.009_066_442]
        );
    }

    #[test]
    fn ids_stay_below_the_bound() {
        let ids = seeded_ids(3, "input_ids", 1000, 30522);
        assert!(ids.iter().all(|&i| i < 30522));
        assert_ne!(ids[0], ids[1]);
    }
}
