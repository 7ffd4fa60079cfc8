//! Lays out linear layers' weights for candle's CPU matmul: the same values, stored
//! transposed.
//!
//! A linear layer keeps its weight as `[out, in]` and computes `x · wᵀ`. The transpose
//! is a view, so gemm receives a right-hand side stored column by column, which it does
//! not pack at the sizes a batch of one sequence makes (128 rows at seq 128): its
//! AVX-512 kernels then read it with a stride of a whole row and, on two threads, ran
//! BERT-base's 3072×768 projection at half the speed of one thread. Stored `[in, out]`
//! and viewed as `[out, in]`, the same weight makes `wᵀ` a contiguous row-major matrix,
//! which every kernel reads as it wants (measured shape by shape in docs/PERFORMANCE.md,
//! "AVX-512 GEMM").
//!
//! Only 2-D weights of linear layers move: embedding tables are read row by row by
//! index and stay as they are, and so does everything on a GPU, where cuBLAS takes
//! either layout.
//!
//! Must never: change a value; a model sees the shape and numbers it asked for.

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::Init;

/// A [`SimpleBackend`] that serves `inner`'s tensors, with linear weights stored
/// transposed on the CPU.
pub struct GemmLayout<B> {
    inner: B,
}

impl<B: SimpleBackend> GemmLayout<B> {
    pub fn new(inner: B) -> Self {
        Self { inner }
    }
}

/// Whether `name` (of a 2-D tensor) is a linear layer's weight rather than a table
/// looked up by index. Embeddings go by many names across the families: `*embeddings*`,
/// `embed_tokens`, `embed_positions`, T5's `shared` and its relative attention bias.
pub fn is_linear_weight(name: &str) -> bool {
    name.ends_with("weight")
        && !name.contains("embed")
        && !name.contains("relative_attention_bias")
        && name != "shared.weight"
        && !name.ends_with(".shared.weight")
}

/// `tensor` with the layout a linear weight wants: the values of `[out, in]`, stored as
/// `[in, out]`.
pub fn transposed_storage(tensor: Tensor) -> candle_core::Result<Tensor> {
    tensor.t()?.contiguous()?.t()
}

impl<B: SimpleBackend> SimpleBackend for GemmLayout<B> {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let tensor = self.inner.get(s, name, h, dtype, dev)?;
        relaid(tensor, name, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let tensor = self.inner.get_unchecked(name, dtype, dev)?;
        relaid(tensor, name, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.contains_tensor(name)
    }
}

fn relaid(tensor: Tensor, name: &str, dev: &Device) -> candle_core::Result<Tensor> {
    if dev.is_cpu() && tensor.rank() == 2 && is_linear_weight(name) {
        transposed_storage(tensor)
    } else {
        Ok(tensor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init::SeededInit;

    #[test]
    fn linear_weights_keep_their_values_and_change_their_storage() {
        let backend = GemmLayout::new(SeededInit::new(7));
        let plain = SeededInit::new(7);
        let shape = Shape::from((6, 4));
        let name = "encoder.layer.0.intermediate.dense.weight";
        let relaid = backend.get(shape.clone(), name, Init::Const(0.0), DType::F32, &Device::Cpu).expect("a tensor");
        let original = plain.get(shape, name, Init::Const(0.0), DType::F32, &Device::Cpu).expect("a tensor");
        assert_eq!(relaid.dims(), [6, 4]);
        assert!(!relaid.is_contiguous() && relaid.t().expect("2-D").is_contiguous());
        let values = |t: &Tensor| t.to_vec2::<f32>().expect("2-D f32");
        assert_eq!(values(&relaid), values(&original));
        // x · wᵀ is the same product either way, up to the order gemm sums in.
        let x = Tensor::arange(0f32, 8.0, &Device::Cpu).expect("x").reshape((2, 4)).expect("2×4");
        let product = |w: &Tensor| x.matmul(&w.t().expect("2-D")).expect("matmul").to_vec2::<f32>().expect("2-D");
        let (relaid, original) = (product(&relaid), product(&original));
        for (a, b) in relaid.iter().flatten().zip(original.iter().flatten()) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} against {b}");
        }
    }

    #[test]
    fn embeddings_norms_and_convolutions_stay_as_they_are() {
        for name in [
            "embeddings.word_embeddings.weight",
            "model.embed_tokens.weight",
            "decoder.embed_positions.weight",
            "shared.weight",
            "encoder.shared.weight",
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "encoder.layer.0.output.dense.bias",
        ] {
            assert!(!is_linear_weight(name), "{name}");
        }
        let backend = GemmLayout::new(SeededInit::new(7));
        let embedding = backend
            .get(Shape::from((10, 4)), "model.embed_tokens.weight", Init::Const(0.0), DType::F32, &Device::Cpu)
            .expect("a tensor");
        assert!(embedding.is_contiguous());
        let conv = backend
            .get(
                Shape::from((8, 3, 2, 2)),
                "patch_embeddings.projection.weight",
                Init::Const(0.0),
                DType::F32,
                &Device::Cpu,
            )
            .expect("a tensor");
        assert!(conv.is_contiguous());
        assert!(is_linear_weight("lm_head.weight") && is_linear_weight("classifier.weight"));
    }
}
