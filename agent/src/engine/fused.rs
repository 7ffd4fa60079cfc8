//! The transformer encoder stack of BERT and ViT on the CPU in f32, run on accelbench's
//! `kernels` rather than as candle-transformers' chain of tensor ops.
//!
//! Same weights (read through the same `VarBuilder` names, so real checkpoints load
//! unchanged), same arithmetic, fewer passes: Q, K and V are one GEMM; the bias, GELU
//! and residual are applied in the pass after each GEMM; attention reads Q, K and V in
//! place and runs one task per (sequence, head); buffers are allocated once per forward
//! rather than once per op. The tests check it against candle-transformers' own
//! `BertEncoder` and ViT encoder on the same weights.
//!
//! Used only where it applies: CPU, f32 (or bf16 on a CPU with AVX-512 BF16: weights
//! and GEMM inputs rounded to bf16, f32 sums, norms, softmax and activations in f32),
//! inference, no padding (the engine's inputs never have any). Everything else (GPUs,
//! fp16, training) runs the stock candle-transformers modules.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use kernels::attention::{self, Shape};
use kernels::linear::{self, Epilogue, Linear};
use kernels::norm::LayerNorm;
use kernels::Isa;

/// Where each layer normalises: after each residual add (BERT) or before each block
/// (ViT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormOrder {
    Post,
    Pre,
}

/// The sizes an encoder stack needs from its model config.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub eps: f64,
}

struct Layer {
    qkv: Linear,
    out: Linear,
    up: Linear,
    down: Linear,
    /// BERT: after attention; ViT: before attention.
    norm1: LayerNorm,
    /// BERT: after the MLP; ViT: before the MLP.
    norm2: LayerNorm,
}

impl Layer {
    fn into_bf16(self) -> Layer {
        Layer {
            qkv: self.qkv.into_bf16(),
            out: self.out.into_bf16(),
            up: self.up.into_bf16(),
            down: self.down.into_bf16(),
            ..self
        }
    }
}

/// Where a family keeps each layer's weights, below `layer.N`; the projections
/// (`attention.output.dense`, `intermediate.dense`, `output.dense`) are named alike.
struct LayerNames {
    qkv: &'static str,
    norm1: &'static str,
    norm2: &'static str,
    order: NormOrder,
}

/// BERT: `layer.N.attention.self.{query,key,value}`, `attention.output.{dense,LayerNorm}`,
/// `intermediate.dense`, `output.{dense,LayerNorm}`.
const BERT: LayerNames = LayerNames {
    qkv: "attention.self",
    norm1: "attention.output.LayerNorm",
    norm2: "output.LayerNorm",
    order: NormOrder::Post,
};

/// ViT: `layer.N.attention.attention.{query,key,value}`, `attention.output.dense`,
/// `intermediate.dense`, `output.dense`, `layernorm_before`, `layernorm_after`.
const VIT: LayerNames = LayerNames {
    qkv: "attention.attention",
    norm1: "layernorm_before",
    norm2: "layernorm_after",
    order: NormOrder::Pre,
};

pub struct EncoderStack {
    layers: Vec<Layer>,
    dims: Dims,
    order: NormOrder,
}

/// Whether a model at this device and dtype can run on the kernels: f32 on any CPU,
/// bf16 where the CPU has AVX-512 BF16 (elsewhere candle's bf16 path stays: our scalar
/// bf16 reference would be slower still).
pub fn applies(device: &Device, dtype: DType) -> bool {
    device.is_cpu() && (dtype == DType::F32 || (dtype == DType::BF16 && kernels::bf16::Panels::fast_path_available()))
}

impl EncoderStack {
    /// BERT's `encoder` (`vb` at `encoder`), names as [`BERT`].
    pub fn load_bert(vb: VarBuilder, dims: Dims) -> candle_core::Result<Self> {
        Self::load(vb, dims, &BERT)
    }

    /// ViT's `encoder` (`vb` at `vit.encoder`), names as [`VIT`].
    pub fn load_vit(vb: VarBuilder, dims: Dims) -> candle_core::Result<Self> {
        Self::load(vb, dims, &VIT)
    }

    fn load(vb: VarBuilder, dims: Dims, names: &LayerNames) -> candle_core::Result<Self> {
        let layers = (0..dims.layers)
            .map(|i| {
                let l = vb.pp("layer").pp(i);
                Ok(Layer {
                    qkv: qkv(&l.pp(names.qkv), dims)?,
                    out: dense(&l.pp("attention.output.dense"), dims.hidden, dims.hidden)?,
                    up: dense(&l.pp("intermediate.dense"), dims.hidden, dims.intermediate)?,
                    down: dense(&l.pp("output.dense"), dims.intermediate, dims.hidden)?,
                    norm1: norm(&l.pp(names.norm1), dims)?,
                    norm2: norm(&l.pp(names.norm2), dims)?,
                })
            })
            .collect::<candle_core::Result<Vec<Layer>>>()?;
        // bf16: the weights rounded to bf16 for the bf16 GEMM; the rest stays f32.
        let layers = match vb.dtype() {
            DType::BF16 => layers.into_iter().map(Layer::into_bf16).collect(),
            _ => layers,
        };
        Ok(EncoderStack { layers, dims, order: names.order })
    }

    /// The stack over `x` (batch, seq, hidden), f32 on the CPU.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        if hidden != self.dims.hidden {
            candle_core::bail!("encoder input has width {hidden}, the model {}", self.dims.hidden);
        }
        let rows = batch * seq;
        let shape = Shape { batch, seq, heads: self.dims.heads, head_dim: hidden / self.dims.heads };
        let threads = rayon_threads();
        let isa = Isa::Best;
        // Activations, norms and attention in f32 whatever the model's dtype; the
        // result goes back in the dtype it came in.
        let dtype = x.dtype();
        let mut x = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut qkv = vec![0f32; rows * 3 * hidden];
        let mut ctx = vec![0f32; rows * hidden];
        let mut mid = vec![0f32; rows * hidden];
        let mut normed = vec![0f32; rows * hidden];
        let mut act = vec![0f32; rows * self.dims.intermediate];
        for l in &self.layers {
            match self.order {
                NormOrder::Post => {
                    linear::forward(&l.qkv, &x, rows, &mut qkv, Epilogue::Bias, threads, isa);
                    attention::forward(&qkv, shape, &mut ctx, threads, isa);
                    linear::forward(&l.out, &ctx, rows, &mut mid, Epilogue::BiasResidual(&x), threads, isa);
                    l.norm1.in_place(&mut mid, threads, isa);
                    linear::forward(&l.up, &mid, rows, &mut act, Epilogue::BiasGelu, threads, isa);
                    linear::forward(&l.down, &act, rows, &mut x, Epilogue::BiasResidual(&mid), threads, isa);
                    l.norm2.in_place(&mut x, threads, isa);
                }
                NormOrder::Pre => {
                    l.norm1.forward(&x, &mut normed, threads, isa);
                    linear::forward(&l.qkv, &normed, rows, &mut qkv, Epilogue::Bias, threads, isa);
                    attention::forward(&qkv, shape, &mut ctx, threads, isa);
                    linear::forward(&l.out, &ctx, rows, &mut mid, Epilogue::BiasResidual(&x), threads, isa);
                    l.norm2.forward(&mid, &mut normed, threads, isa);
                    linear::forward(&l.up, &normed, rows, &mut act, Epilogue::BiasGelu, threads, isa);
                    linear::forward(&l.down, &act, rows, &mut x, Epilogue::BiasResidual(&mid), threads, isa);
                }
            }
        }
        Tensor::from_vec(x, (batch, seq, hidden), &Device::Cpu)?.to_dtype(dtype)
    }
}

/// The threads candle's own CPU ops use: rayon's global pool (`RAYON_NUM_THREADS`, which
/// the agent sets from `--threads`).
fn rayon_threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// A linear layer's `weight` (PyTorch's `[out, in]`) and `bias`, as the kernels want them.
fn dense(vb: &VarBuilder, inputs: usize, outputs: usize) -> candle_core::Result<Linear> {
    let weight = vb.get((outputs, inputs), "weight")?.to_dtype(DType::F32)?;
    let bias = vb.get(outputs, "bias")?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    // `[in, out]` row-major; whichever way the var builder stored the weight.
    let w = weight.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    Ok(Linear::new(w, bias, inputs, outputs))
}

fn qkv(vb: &VarBuilder, dims: Dims) -> candle_core::Result<Linear> {
    let h = dims.hidden;
    let (q, k, v) = (dense(&vb.pp("query"), h, h)?, dense(&vb.pp("key"), h, h)?, dense(&vb.pp("value"), h, h)?);
    Ok(Linear::concat(&[&q, &k, &v]))
}

fn norm(vb: &VarBuilder, dims: Dims) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm {
        gamma: vb.get(dims.hidden, "weight")?.to_dtype(DType::F32)?.to_vec1()?,
        beta: vb.get(dims.hidden, "bias")?.to_dtype(DType::F32)?.to_vec1()?,
        eps: dims.eps as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init::SeededInit;
    use crate::engine::layout::GemmLayout;
    use candle_core::Module;
    use candle_transformers::models::{bert, vit};

    fn random_vb(seed: u64) -> VarBuilder<'static> {
        random_vb_at(seed, DType::F32)
    }

    fn random_vb_at(seed: u64, dtype: DType) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(GemmLayout::new(SeededInit::new(seed))), dtype, Device::Cpu)
    }

    fn input(batch: usize, seq: usize, hidden: usize) -> Tensor {
        let values: Vec<f32> = (0..batch * seq * hidden).map(|i| ((i * 7919 % 2003) as f32 / 1001.0) - 1.0).collect();
        Tensor::from_vec(values, (batch, seq, hidden), &Device::Cpu).expect("input")
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        a.sub(b).expect("same shape").abs().expect("abs").max_all().expect("max").to_scalar().expect("scalar")
    }

    /// A 3-layer BERT of width 96 (4 heads): candle-transformers' config and our dims.
    fn small_bert() -> (bert::Config, Dims) {
        let cfg = bert::Config {
            hidden_size: 96,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            intermediate_size: 200,
            ..Default::default()
        };
        let dims = Dims { layers: 3, hidden: 96, heads: 4, intermediate: 200, eps: cfg.layer_norm_eps };
        (cfg, dims)
    }

    /// candle-transformers' `BertEncoder` and ours on the same seeded weights: the same
    /// hidden states within f32 rounding (values of order 1; a wrong weight, head split
    /// or norm placement changes them by O(1)).
    #[test]
    fn bert_stack_matches_candle_transformers() {
        let (cfg, dims) = small_bert();
        let stock = bert::BertEncoder::load(random_vb(5).pp("encoder"), &cfg).expect("stock");
        let ours = EncoderStack::load_bert(random_vb(5).pp("encoder"), dims).expect("fused");
        for (batch, seq) in [(1, 1), (2, 17), (3, 40)] {
            let x = input(batch, seq, 96);
            let mask = Tensor::zeros((batch, 1, 1, seq), DType::F32, &Device::Cpu).expect("mask");
            let want = stock.forward(&x, &mask).expect("stock forward");
            let got = ours.forward(&x).expect("fused forward");
            let diff = max_abs_diff(&got, &want);
            assert!(diff < 2e-5, "batch {batch} seq {seq}: differs by {diff}");
        }
    }

    /// The same for ViT's pre-norm encoder.
    #[test]
    fn vit_stack_matches_candle_transformers() {
        let cfg = vit::Config {
            hidden_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 8,
            intermediate_size: 130,
            image_size: 32,
            patch_size: 8,
            ..vit::Config::vit_base_patch16_224()
        };
        let dims = Dims { layers: 2, hidden: 64, heads: 8, intermediate: 130, eps: cfg.layer_norm_eps };
        let stock = vit::Encoder::new(&cfg, random_vb(6).pp("vit").pp("encoder")).expect("stock");
        let ours = EncoderStack::load_vit(random_vb(6).pp("vit").pp("encoder"), dims).expect("fused");
        let x = input(2, 17, 64);
        let diff = max_abs_diff(&ours.forward(&x).expect("fused"), &stock.forward(&x).expect("stock"));
        assert!(diff < 2e-5, "differs by {diff}");
    }

    #[test]
    fn applies_to_f32_and_bf16_where_the_cpu_has_it() {
        assert!(applies(&Device::Cpu, DType::F32));
        assert_eq!(applies(&Device::Cpu, DType::BF16), kernels::bf16::Panels::fast_path_available());
        assert!(!applies(&Device::Cpu, DType::F16));
    }

    /// At bf16 the stack rounds its weights and GEMM inputs to bf16 and keeps the rest
    /// in f32: within bf16's rounding of the f32 stack, and closer to it than
    /// candle-transformers' own bf16 encoder (all bf16) is.
    #[test]
    fn bert_stack_in_bf16_is_within_bf16_rounding_of_f32() {
        let (cfg, dims) = small_bert();
        let at = |dtype| random_vb_at(5, dtype);
        let f32_stack = EncoderStack::load_bert(at(DType::F32).pp("encoder"), dims).expect("f32");
        let bf16_stack = EncoderStack::load_bert(at(DType::BF16).pp("encoder"), dims).expect("bf16");
        let stock_bf16 = bert::BertEncoder::load(at(DType::BF16).pp("encoder"), &cfg).expect("stock");
        let x = input(2, 17, 96);
        let want = f32_stack.forward(&x).expect("f32 forward");
        let xb = x.to_dtype(DType::BF16).expect("bf16");
        let got = bf16_stack.forward(&xb).expect("bf16 forward");
        assert_eq!(got.dtype(), DType::BF16);
        let mask = Tensor::zeros((2, 1, 1, 17), DType::BF16, &Device::Cpu).expect("mask");
        let stock = stock_bf16.forward(&xb, &mask).expect("stock forward");
        let f32_of = |t: &Tensor| t.to_dtype(DType::F32).expect("f32");
        let (ours, theirs) = (max_abs_diff(&f32_of(&got), &want), max_abs_diff(&f32_of(&stock), &want));
        assert!(ours < 0.1 && ours <= theirs, "bf16 stack differs from f32 by {ours}, candle's bf16 by {theirs}");
    }

    #[test]
    fn an_input_of_the_wrong_width_is_an_error() {
        let dims = Dims { layers: 1, hidden: 8, heads: 2, intermediate: 16, eps: 1e-12 };
        let stack = EncoderStack::load_bert(random_vb(1).pp("encoder"), dims).expect("loads");
        let err = stack.forward(&input(1, 3, 9)).expect_err("width 9 against 8");
        assert!(err.to_string().contains("width 9"), "{err}");
    }
}
