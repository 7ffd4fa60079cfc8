//! BERT for training: the same layers and weight names as Hugging Face's `BertModel`
//! (and as [`super::bert::Bert`] loads for inference), built only from differentiable
//! ops.
//!
//! Why a second BERT: candle-nn's `LayerNorm` takes a fused kernel for contiguous inputs,
//! and that kernel has no backward (`apply_op3_no_bwd`), so gradients stop at every layer
//! norm. Trained through candle-transformers' `BertEncoder`, a step updated only the
//! classification head and cost little more than inference. Here every layer norm is
//! `layer_norm_slow` (plain tensor ops); a test checks that every weight gets a gradient
//! and that the forward matches the inference model's.

use candle_core::{Module, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};

pub struct TrainBert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: Norm,
    layers: Vec<Layer>,
}

/// A layer norm whose backward exists.
pub(super) struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    pub(super) fn load(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Norm> {
        Ok(Norm {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps: eps as f32,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, self.eps)
    }
}

/// One encoder layer: self-attention, then the feed-forward block, each with a residual
/// connection and a layer norm after it (BERT is post-norm).
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    out: Linear,
    out_norm: Norm,
    heads: usize,
    act: HiddenAct,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Layer> {
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        let (attention, output) = (vb.pp("attention"), vb.pp("output"));
        let this = attention.pp("self");
        Ok(Layer {
            query: linear(h, h, this.pp("query"))?,
            key: linear(h, h, this.pp("key"))?,
            value: linear(h, h, this.pp("value"))?,
            attention_out: linear(h, h, attention.pp("output").pp("dense"))?,
            attention_norm: Norm::load(h, eps, attention.pp("output").pp("LayerNorm"))?,
            intermediate: linear(h, cfg.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            out: linear(cfg.intermediate_size, h, output.pp("dense"))?,
            out_norm: Norm::load(h, eps, output.pp("LayerNorm"))?,
            heads: cfg.num_attention_heads,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let attended =
            self.attention_out.forward(&self_attention(x, [&self.query, &self.key, &self.value], self.heads)?)?;
        let x = self.attention_norm.forward(&(attended + x)?)?;
        let inner = self.intermediate.forward(&x)?;
        let inner = match self.act {
            HiddenAct::Gelu => inner.gelu_erf()?,
            HiddenAct::GeluApproximate => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        self.out_norm.forward(&(self.out.forward(&inner)? + x)?)
    }
}

impl TrainBert {
    /// Loads from `vb` laid out as Hugging Face's `BertModel` (`embeddings.*`, `encoder.*`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<TrainBert> {
        let e = vb.pp("embeddings");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), cfg))
            .collect::<candle_core::Result<_>>()?;
        Ok(TrainBert {
            word: embedding(cfg.vocab_size, cfg.hidden_size, e.pp("word_embeddings"))?,
            position: embedding(cfg.max_position_embeddings, cfg.hidden_size, e.pp("position_embeddings"))?,
            token_type: embedding(cfg.type_vocab_size, cfg.hidden_size, e.pp("token_type_embeddings"))?,
            norm: Norm::load(cfg.hidden_size, cfg.layer_norm_eps, e.pp("LayerNorm"))?,
            layers,
        })
    }

    /// Last hidden state (batch, seq, hidden) of unpadded `input_ids`.
    pub fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor) -> candle_core::Result<Tensor> {
        let x = super::bert::embedding_sum([&self.word, &self.token_type, &self.position], input_ids, token_type_ids)?;
        let mut x = self.norm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        Ok(x)
    }
}

/// Multi-head scaled dot-product attention of `x` over itself, every position visible
/// (unpadded inputs, no mask), from its `[query, key, value]` projections.
pub(super) fn self_attention(
    x: &Tensor,
    [query, key, value]: [&Linear; 3],
    heads: usize,
) -> candle_core::Result<Tensor> {
    let (batch, seq, hidden) = x.dims3()?;
    let head_dim = hidden / heads;
    let split = |t: Tensor| t.reshape((batch, seq, heads, head_dim))?.transpose(1, 2)?.contiguous();
    let q = split(query.forward(x)?)?;
    let k = split(key.forward(x)?)?;
    let v = split(value.forward(x)?)?;
    let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
    let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
    probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((batch, seq, hidden))
}
