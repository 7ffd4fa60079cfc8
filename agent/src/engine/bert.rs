//! BERT as the engine runs it: candle-transformers' `BertEncoder` under our own
//! embeddings and attention mask.
//!
//! candle-transformers' `BertModel` builds its additive attention mask as
//! `(1 - mask) × f32::MIN` in the model's dtype; in fp16 and bf16 `f32::MIN` becomes
//! -inf and `0 × -inf` is NaN, so every output is NaN (the output check showed it, on
//! CPU and on an H200). Inputs here never have padding, so the mask Hugging Face would
//! build is exactly zero in every dtype: that is what this model passes. The embeddings
//! (word + token type + absolute position, then LayerNorm) use the checkpoint's names, so
//! real weights load unchanged.
//!
//! On the CPU in f32 the encoder stack is [`super::fused::EncoderStack`] (accelbench's
//! kernels) instead: same weights, same result within f32 rounding, fewer passes.

use candle_core::{DType, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, Module, VarBuilder};
use candle_transformers::models::bert::{BertEncoder, Config, HiddenAct};

use super::fused::{self, Dims, EncoderStack};

/// The encoder stack a BERT runs: accelbench's kernels where they apply, else candle's.
enum Encoder {
    Stock(BertEncoder),
    Fused(EncoderStack),
}

pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    encoder: Encoder,
    dtype: DType,
}

impl Bert {
    /// Loads from `vb` laid out as Hugging Face's `BertModel` (`embeddings.*`, `encoder.*`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Bert> {
        let e = vb.pp("embeddings");
        Ok(Bert {
            word: embedding(cfg.vocab_size, cfg.hidden_size, e.pp("word_embeddings"))?,
            position: embedding(cfg.max_position_embeddings, cfg.hidden_size, e.pp("position_embeddings"))?,
            token_type: embedding(cfg.type_vocab_size, cfg.hidden_size, e.pp("token_type_embeddings"))?,
            norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, e.pp("LayerNorm"))?,
            encoder: if fused::applies(vb.device(), vb.dtype()) && cfg.hidden_act == HiddenAct::Gelu {
                Encoder::Fused(EncoderStack::load_bert(vb.pp("encoder"), dims(cfg)?)?)
            } else {
                Encoder::Stock(BertEncoder::load(vb.pp("encoder"), cfg)?)
            },
            dtype: vb.dtype(),
        })
    }

    /// Last hidden state (batch, seq, hidden) of unpadded `input_ids`.
    pub fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq_len) = input_ids.dims2()?;
        let x = embedding_sum([&self.word, &self.token_type, &self.position], input_ids, token_type_ids)?;
        let x = self.norm.forward(&x)?;
        match &self.encoder {
            Encoder::Fused(stack) => stack.forward(&x),
            Encoder::Stock(encoder) => {
                let mask = Tensor::zeros((batch, 1, 1, seq_len), self.dtype, input_ids.device())?;
                encoder.forward(&x, &mask)
            }
        }
    }
}

fn dims(cfg: &Config) -> candle_core::Result<Dims> {
    if cfg.num_attention_heads == 0 || cfg.hidden_size % cfg.num_attention_heads != 0 {
        candle_core::bail!("hidden_size {} is not a multiple of {} heads", cfg.hidden_size, cfg.num_attention_heads);
    }
    Ok(Dims {
        layers: cfg.num_hidden_layers,
        hidden: cfg.hidden_size,
        heads: cfg.num_attention_heads,
        intermediate: cfg.intermediate_size,
        eps: cfg.layer_norm_eps,
    })
}

/// Word + token-type + position embeddings of unpadded `input_ids`, before the layer
/// norm: `[word, token_type, position]`.
pub(super) fn embedding_sum(
    [word, token_type, position]: [&Embedding; 3],
    input_ids: &Tensor,
    token_type_ids: &Tensor,
) -> candle_core::Result<Tensor> {
    let (_, seq_len) = input_ids.dims2()?;
    let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
    word.forward(input_ids)?.add(&token_type.forward(token_type_ids)?)?.broadcast_add(&position.forward(&positions)?)
}
