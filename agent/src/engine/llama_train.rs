//! LLaMA-style decoders for training (LLaMA, and Qwen2, which adds biases to the query,
//! key and value projections): the layers and weight names of Hugging Face's
//! `LlamaForCausalLM` / `Qwen2ForCausalLM`, built only from differentiable ops.
//!
//! Why a second LLaMA: candle-transformers' model runs candle-nn's fused RMS norm, rotary
//! embedding and last-dim softmax, which have no backward, so gradients stopped at the
//! final norm. Here they are `rms_norm_slow`, `rope_slow` and `softmax` (plain tensor
//! ops). Tests check that every weight gets a gradient and that the logits match the
//! inference model's. Without a KV cache: a training step sees the whole sequence.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, linear_b, linear_no_bias as linear, Activation, Embedding, Linear, VarBuilder};
use candle_transformers::models::{llama, qwen2};

/// What a LLaMA-style decoder is made of, from either family's config.
#[derive(Debug, Clone)]
pub struct Config {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f32,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Qwen2's query, key and value projections have biases; LLaMA's do not.
    pub qkv_bias: bool,
    pub act: Activation,
}

impl Config {
    /// `None` for Llama 3's scaled rope, which is not implemented here.
    pub fn llama(c: &llama::Config) -> Option<Config> {
        c.rope_scaling.is_none().then(|| Config {
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            vocab_size: c.vocab_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            num_key_value_heads: c.num_key_value_heads,
            rms_norm_eps: c.rms_norm_eps,
            rope_theta: c.rope_theta,
            max_position_embeddings: c.max_position_embeddings,
            tie_word_embeddings: c.tie_word_embeddings,
            qkv_bias: false,
            act: Activation::Silu,
        })
    }

    /// `None` with sliding-window attention on, which is not implemented here.
    pub fn qwen2(c: &qwen2::Config) -> Option<Config> {
        (!c.use_sliding_window).then(|| Config {
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            vocab_size: c.vocab_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            num_key_value_heads: c.num_key_value_heads,
            rms_norm_eps: c.rms_norm_eps,
            rope_theta: c.rope_theta as f32,
            max_position_embeddings: c.max_position_embeddings,
            tie_word_embeddings: c.tie_word_embeddings,
            qkv_bias: true,
            act: c.hidden_act,
        })
    }
}

pub struct TrainLlama {
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
}

/// An RMS norm whose backward exists.
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn load(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<RmsNorm> {
        Ok(RmsNorm { weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?, eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm_slow(x, &self.weight, self.eps)
    }
}

/// Rotary position tables, (max positions, head_dim / 2), as candle's `Cache` builds them
/// for the default (unscaled) rope.
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(cfg: &Config, device: &Device) -> candle_core::Result<Rope> {
        let head_dim = cfg.hidden_size / cfg.num_attention_heads;
        let inv_freq: Vec<f32> =
            (0..head_dim).step_by(2).map(|i| 1f32 / cfg.rope_theta.powf(i as f32 / head_dim as f32)).collect();
        let n_freq = inv_freq.len();
        let inv_freq = Tensor::from_vec(inv_freq, (1, n_freq), device)?;
        let positions = Tensor::arange(0u32, cfg.max_position_embeddings as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((cfg.max_position_embeddings, 1))?;
        let angles = positions.matmul(&inv_freq)?;
        Ok(Rope { cos: angles.cos()?, sin: angles.sin()? })
    }

    fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::rotary_emb::rope_slow(x, &self.cos, &self.sin)
    }
}

/// One decoder layer: pre-norm causal self-attention (grouped-query), then a pre-norm
/// SwiGLU feed-forward block, each with a residual connection.
struct Layer {
    input_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    heads: usize,
    kv_heads: usize,
    act: Activation,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Layer> {
        let (h, head_dim) = (cfg.hidden_size, cfg.hidden_size / cfg.num_attention_heads);
        let kv = cfg.num_key_value_heads * head_dim;
        let (attn, mlp) = (vb.pp("self_attn"), vb.pp("mlp"));
        Ok(Layer {
            input_norm: RmsNorm::load(h, cfg.rms_norm_eps, vb.pp("input_layernorm"))?,
            q: linear_b(h, h, cfg.qkv_bias, attn.pp("q_proj"))?,
            k: linear_b(h, kv, cfg.qkv_bias, attn.pp("k_proj"))?,
            v: linear_b(h, kv, cfg.qkv_bias, attn.pp("v_proj"))?,
            o: linear(h, h, attn.pp("o_proj"))?,
            post_norm: RmsNorm::load(h, cfg.rms_norm_eps, vb.pp("post_attention_layernorm"))?,
            gate: linear(h, cfg.intermediate_size, mlp.pp("gate_proj"))?,
            up: linear(h, cfg.intermediate_size, mlp.pp("up_proj"))?,
            down: linear(cfg.intermediate_size, h, mlp.pp("down_proj"))?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            act: cfg.act,
        })
    }

    fn forward(&self, x: &Tensor, rope: &Rope, mask: &Tensor) -> candle_core::Result<Tensor> {
        let x = (self.attention(&self.input_norm.forward(x)?, rope, mask)? + x)?;
        let h = self.post_norm.forward(&x)?;
        let ff = self.down.forward(&(self.act.forward(&self.gate.forward(&h)?)? * self.up.forward(&h)?)?)?;
        ff + x
    }

    fn attention(&self, x: &Tensor, rope: &Rope, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let head_dim = hidden / self.heads;
        let split = |t: Tensor, n: usize| t.reshape((batch, seq, n, head_dim))?.transpose(1, 2)?.contiguous();
        let q = rope.apply(&split(self.q.forward(x)?, self.heads)?)?;
        let k = rope.apply(&split(self.k.forward(x)?, self.kv_heads)?)?;
        let v = split(self.v.forward(x)?, self.kv_heads)?;
        // Grouped-query attention: each key/value head serves heads / kv_heads query heads.
        let n_rep = self.heads / self.kv_heads;
        let k = candle_transformers::utils::repeat_kv(k, n_rep)?.contiguous()?;
        let v = candle_transformers::utils::repeat_kv(v, n_rep)?.contiguous()?;
        let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let out = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((batch, seq, hidden))?;
        self.o.forward(&out)
    }
}

impl TrainLlama {
    /// Loads from `vb` laid out as `LlamaForCausalLM` (`model.*`, `lm_head`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<TrainLlama> {
        let embed = embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("model.embed_tokens"))?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::new(embed.embeddings().clone(), None)
        } else {
            linear(cfg.hidden_size, cfg.vocab_size, vb.pp("lm_head"))?
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("model.layers.{i}")), cfg))
            .collect::<candle_core::Result<_>>()?;
        Ok(TrainLlama {
            norm: RmsNorm::load(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("model.norm"))?,
            rope: Rope::new(cfg, vb.device())?,
            embed,
            layers,
            lm_head,
        })
    }

    /// Logits (batch, vocab) of the last position, as candle-transformers' `Llama` gives.
    pub fn forward(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, seq) = input_ids.dims2()?;
        let mask = causal_mask(seq, input_ids.device())?;
        let mut x = self.embed.forward(input_ids)?;
        for layer in &self.layers {
            x = layer.forward(&x, &self.rope, &mask)?;
        }
        let last = self.norm.forward(&x)?.narrow(1, seq - 1, 1)?.squeeze(1)?.contiguous()?;
        self.lm_head.forward(&last)
    }
}

/// (seq, seq): 0 where a position may attend, -inf where it would look ahead.
fn causal_mask(seq: usize, device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> =
        (0..seq).flat_map(|i| (0..seq).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(values, (seq, seq), device)
}
