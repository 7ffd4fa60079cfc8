//! The quantized decoder forward (LLaMA and Qwen2 from a GGUF file) that runs q4_0,
//! q4_1 and q8_0 weights on the `kernels` crate's AVX-512 VNNI products.
//!
//! candle-transformers' `quantized_llama` / `quantized_qwen2` keep every weight in
//! candle's own `QMatMul`, whose q4_0 CPU path is one AVX2 dot product per (row,
//! column) that re-reads the weights for every prompt row (0.08× llama.cpp's prompt
//! speed, docs/PERFORMANCE.md). Their weights are private, so this module is the same
//! computation written over a [`Linear`] of our own: q4_0, q4_1 and q8_0 weights are
//! repacked into [`Matrix`] on a CPU with AVX-512 VNNI; every other weight (a real
//! file's q6_K output layer, say) and every weight on other CPUs stays in candle's
//! `QMatMul`.
//!
//! The model: token embedding (dequantized), then per layer RMS norm → Q/K/V (with
//! Qwen2's biases) → rotary position embedding (LLaMA GGUFs interleave pairs, Qwen2
//! rotates halves, as llama.cpp stores them) → causal attention with a KV cache and
//! grouped KV heads → output projection + residual → RMS norm → SiLU-gated MLP +
//! residual; final RMS norm; logits of the last position only.
//!
//! The tests check it against candle-transformers' forwards on the same file.

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Device, IndexOp, Layout, Module, Shape, Tensor};
use kernels::quant::{Format, Matrix};
use kernels::Isa;
use shared::catalog::Family;

use super::config::DecoderShape;
use super::decoder::CausalLm;

/// A weight matrix used as `x · Wᵀ`.
enum Linear {
    /// GGML q4_0/q4_1/q8_0 weights on our kernel (CPU with AVX-512 VNNI only).
    Ours(Arc<Matrix>),
    /// Anything else, through candle.
    Candle(QMatMul),
}

impl Linear {
    /// Takes `q` over when our kernel can run it here, else wraps it for candle;
    /// `Exact` keeps the dequantized f32 weights (the tests' reference).
    fn new(q: QTensor, device: &Device, kernel: Kernel) -> candle_core::Result<Self> {
        match kernel {
            Kernel::Exact => return Ok(Linear::Candle(QMatMul::Tensor(q.dequantize(device)?))),
            Kernel::Candle => return Ok(Linear::Candle(QMatMul::from_qtensor(q)?)),
            Kernel::Quantized => {}
        }
        let format = match q.dtype() {
            GgmlDType::Q4_0 => Some(Format::Q4_0),
            GgmlDType::Q4_1 => Some(Format::Q4_1),
            GgmlDType::Q8_0 => Some(Format::Q8_0),
            _ => None,
        };
        match format {
            Some(format) if device.is_cpu() && Matrix::fast_path_available() => {
                let (rows, cols) = q.shape().dims2()?;
                let m = Matrix::from_ggml(format, rows, cols, &q.data()?).map_err(candle_core::Error::msg)?;
                Ok(Linear::Ours(Arc::new(m)))
            }
            _ => Ok(Linear::Candle(QMatMul::from_qtensor(q)?)),
        }
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Ours(m) => x.contiguous()?.apply_op1_no_bwd(&QuantOp(m.clone())),
            Linear::Candle(q) => q.forward(x),
        }
    }

    /// Which kernel runs it, for the tests.
    #[cfg(test)]
    fn is_ours(&self) -> bool {
        matches!(self, Linear::Ours(_))
    }
}

/// Which products a [`QDecoder`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// GGML weights on ours where the CPU and the type allow, the rest on candle's.
    Quantized,
    /// Every weight on candle's `QMatMul` (the tests' check that this forward is
    /// candle-transformers' computation).
    #[cfg_attr(not(test), allow(dead_code))]
    Candle,
    /// Every weight dequantized to f32: the reference the quantized products approximate.
    Exact,
}

/// `x · Wᵀ` as a candle op over the last dimension of a contiguous f32 `x`.
struct QuantOp(Arc<Matrix>);

impl CustomOp1 for QuantOp {
    fn name(&self) -> &'static str {
        "quant-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, cols) = self.0.shape();
        let dims = layout.shape().dims();
        let (Some(&k), true) = (dims.last(), layout.is_contiguous()) else {
            candle_core::bail!("quantized matmul needs a contiguous input, got {layout:?}");
        };
        if k != cols {
            candle_core::bail!("quantized matmul of {rows}×{cols} weights with an input of shape {dims:?}");
        }
        let CpuStorage::F32(x) = storage else {
            candle_core::bail!("quantized matmul takes f32 activations");
        };
        let x = &x[layout.start_offset()..layout.start_offset() + layout.shape().elem_count()];
        let m = x.len() / cols;
        let mut out = vec![0f32; m * rows];
        self.0.matmul_t(Isa::Best, x, m, &mut out);
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("checked above") = rows;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

/// How a GGUF stores the rotary embedding's pairs.
#[derive(Clone, Copy)]
enum Rope {
    /// LLaMA: llama.cpp's converter permutes Q/K so that pairs are adjacent.
    Interleaved,
    /// Qwen2 (GPT-NeoX style): the first half of a head rotates with the second.
    Halves,
}

struct Block {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    qkv_bias: Option<[Tensor; 3]>,
    o: Linear,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
    /// Keys and values so far, `(batch, kv_heads, positions, head_dim)` each.
    cache: Option<(Tensor, Tensor)>,
}

/// A LLaMA or Qwen2 decoder from a GGUF file; see the module docs.
pub(super) struct QDecoder {
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    output: Linear,
    eps: f64,
    rope: Rope,
    cos: Tensor,
    sin: Tensor,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl QDecoder {
    /// Loads the model of shape `arch` (already checked against the file's metadata).
    pub fn load<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        arch: &DecoderShape,
        device: &Device,
        kernel: Kernel,
    ) -> candle_core::Result<Self> {
        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let family = if arch.family == Family::Qwen2 { "qwen2" } else { "llama" };
        let float = |key: &str, default: f64| {
            content.metadata.get(&format!("{family}.{key}")).and_then(|v| v.to_f32().ok()).map_or(default, f64::from)
        };
        let (eps, base) = (float("attention.layer_norm_rms_epsilon", 1e-5), float("rope.freq_base", 10_000.0));
        let embed_q = tensor("token_embd.weight")?;
        let embed = embed_q.dequantize(device)?;
        let norm = tensor("output_norm.weight")?.dequantize(device)?;
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => Linear::new(tensor("output.weight")?, device, kernel)?,
            false => Linear::new(embed_q, device, kernel)?,
        };
        let mut blocks = Vec::with_capacity(arch.layers);
        for i in 0..arch.layers {
            let mut t = |name: &str| tensor(&format!("blk.{i}.{name}"));
            let qkv_bias = match arch.qkv_bias {
                true => Some([
                    t("attn_q.bias")?.dequantize(device)?,
                    t("attn_k.bias")?.dequantize(device)?,
                    t("attn_v.bias")?.dequantize(device)?,
                ]),
                false => None,
            };
            blocks.push(Block {
                attn_norm: t("attn_norm.weight")?.dequantize(device)?,
                q: Linear::new(t("attn_q.weight")?, device, kernel)?,
                k: Linear::new(t("attn_k.weight")?, device, kernel)?,
                v: Linear::new(t("attn_v.weight")?, device, kernel)?,
                qkv_bias,
                o: Linear::new(t("attn_output.weight")?, device, kernel)?,
                ffn_norm: t("ffn_norm.weight")?.dequantize(device)?,
                gate: Linear::new(t("ffn_gate.weight")?, device, kernel)?,
                up: Linear::new(t("ffn_up.weight")?, device, kernel)?,
                down: Linear::new(t("ffn_down.weight")?, device, kernel)?,
                cache: None,
            });
        }
        let (cos, sin) = rope_tables(arch.head_dim, base, arch.max_positions, device)?;
        let rope = if arch.family == Family::Qwen2 { Rope::Halves } else { Rope::Interleaved };
        Ok(QDecoder {
            embed,
            blocks,
            norm,
            output,
            eps,
            rope,
            cos,
            sin,
            heads: arch.heads,
            kv_heads: arch.kv_heads,
            head_dim: arch.head_dim,
        })
    }

    fn attention(&self, block: &mut Block, x: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let (mut q, mut k, mut v) = (block.q.forward(x)?, block.k.forward(x)?, block.v.forward(x)?);
        if let Some([bq, bk, bv]) = &block.qkv_bias {
            (q, k, v) = (q.broadcast_add(bq)?, k.broadcast_add(bk)?, v.broadcast_add(bv)?);
        }
        let heads = |t: Tensor, n: usize| t.reshape((b, s, n, self.head_dim))?.transpose(1, 2)?.contiguous();
        let q = self.rotate(&heads(q, self.heads)?, offset)?;
        let k = self.rotate(&heads(k, self.kv_heads)?, offset)?;
        let v = heads(v, self.kv_heads)?;
        let (k, v) = match (&block.cache, offset) {
            (Some((ck, cv)), o) if o > 0 => (Tensor::cat(&[ck, &k], 2)?, Tensor::cat(&[cv, &v], 2)?),
            _ => (k, v),
        };
        block.cache = Some((k.clone(), v.clone()));
        // Grouped KV heads without copying K and V per query head: the `group` query
        // heads that share a KV head (adjacent in Q) become `group × s` rows against it.
        let group = self.heads / self.kv_heads;
        let q = q.reshape((b, self.kv_heads, group * s, self.head_dim))?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
        let scores = match s {
            1 => scores,
            _ => scores.broadcast_add(&causal_mask(group, s, offset, x.device())?)?,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = probs.matmul(&v)?.reshape((b, self.heads, s, self.head_dim))?;
        let y = y.transpose(1, 2)?.reshape((b, s, self.heads * self.head_dim))?;
        block.o.forward(&y)
    }

    fn rotate(&self, x: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        let s = x.dim(2)?;
        let (cos, sin) = (self.cos.narrow(0, offset, s)?, self.sin.narrow(0, offset, s)?);
        match self.rope {
            Rope::Interleaved => candle_nn::rotary_emb::rope_i(x, &cos, &sin),
            Rope::Halves => candle_nn::rotary_emb::rope(x, &cos, &sin),
        }
    }
}

impl CausalLm for QDecoder {
    fn reset(&mut self) {
        for block in &mut self.blocks {
            block.cache = None;
        }
    }

    fn forward(&mut self, ids: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, s, ()))?;
        let mut blocks = std::mem::take(&mut self.blocks);
        let result = (|| {
            for block in &mut blocks {
                let h = candle_nn::ops::rms_norm(&x, &block.attn_norm, self.eps as f32)?;
                x = (self.attention(block, &h, offset)? + &x)?;
                let h = candle_nn::ops::rms_norm(&x, &block.ffn_norm, self.eps as f32)?;
                let gated = (candle_nn::ops::silu(&block.gate.forward(&h)?)? * block.up.forward(&h)?)?;
                x = (block.down.forward(&gated)? + &x)?;
            }
            let last = x.i((.., s - 1, ..))?.contiguous()?;
            self.output.forward(&candle_nn::ops::rms_norm(&last, &self.norm, self.eps as f32)?)
        })();
        self.blocks = blocks;
        result
    }
}

/// `cos` and `sin` of every position's rotation angles, `(positions, head_dim / 2)`.
fn rope_tables(head_dim: usize, base: f64, positions: usize, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let freqs: Vec<f32> =
        (0..head_dim / 2).map(|i| (1.0 / base.powf(2.0 * i as f64 / head_dim as f64)) as f32).collect();
    let freqs = Tensor::new(freqs.as_slice(), device)?.reshape((1, ()))?;
    let pos = Tensor::arange(0u32, positions as u32, device)?.to_dtype(DType::F32)?.reshape(((), 1))?;
    let angles = pos.broadcast_mul(&freqs)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// `(group × s, offset + s)`: 0 where a query may see a key, −∞ after its own
/// position; the `s` query positions repeated for each of the `group` heads.
fn causal_mask(group: usize, s: usize, offset: usize, device: &Device) -> candle_core::Result<Tensor> {
    let width = offset + s;
    let mask: Vec<f32> = (0..group * s)
        .flat_map(|r| (0..width).map(move |j| if j > offset + r % s { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (group * s, width), device)
}

/// Whether the quantized weights run on our kernel (the tests' check of the dispatch).
#[cfg(test)]
pub(super) fn runs_on_our_kernel(m: &QDecoder) -> bool {
    m.blocks.iter().all(|b| b.q.is_ours() && b.down.is_ours())
}
