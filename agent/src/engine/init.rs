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
//!
//! The normals are `kernels::random`'s: SplitMix64 and Box–Muller in IEEE basic operations,
//! the same bit for bit on every machine (before, libm's `logf`/`cosf` made them, whose FMA
//! and plain variants may differ in the last bit, one value at a time).

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarMap};
use sha2::{Digest, Sha256};

use kernels::{random, Isa};

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
            random::fill_normal(tensor_seed(self.seed, name), 0, MATRIX_STD, &mut values, Isa::Best);
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
    let seed = tensor_seed(seed, name);
    (1..=n as u64).map(|k| (random::draw(seed, k) % u64::from(upper.max(1))) as u32).collect()
}

/// Seeded standard-normal floats (pixels, mel frames).
pub fn seeded_normal(seed: u64, name: &str, n: usize) -> Vec<f32> {
    let mut values = vec![0f32; n];
    random::fill_normal(tensor_seed(seed, name), 0, 1.0, &mut values, Isa::Best);
    values
}

/// The generator's seed for one tensor: the first 8 bytes of sha256(seed, name), so that
/// tensors are independent of each other and of the order they are made in.
fn tensor_seed(seed: u64, name: &str) -> u64 {
    let digest = Sha256::new().chain_update(seed.to_le_bytes()).chain_update(name.as_bytes()).finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b)
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

    /// The values are pinned: a change here changes what `random-init:seed=N` means
    /// (it last did when the generator left libm, see `kernels::random`).
    #[test]
    fn the_values_of_a_seed_are_pinned() {
        assert_eq!(
            SeededInit::new(1).values("w", &Shape::from((1, 3))),
            [-0.000_725_989_64, 0.007_304_967, 0.009_066_441]
        );
    }

    #[test]
    fn ids_stay_below_the_bound() {
        let ids = seeded_ids(3, "input_ids", 1000, 30522);
        assert!(ids.iter().all(|&i| i < 30522));
        assert_ne!(ids[0], ids[1]);
    }
}
