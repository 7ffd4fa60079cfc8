//! The model catalog: the named models a sweep may ask for, their architecture numbers
//! (copied from each model's published Hugging Face `config.json`), and what follows from
//! those numbers alone: parameter count, forward/training FLOPs, supported precisions.
//!
//! Counts and FLOPs are computed from the config, never typed in, so adding a model is
//! adding its config. The tests pin the results to the published parameter counts.
//!
//! Layout: this file holds the names (families, precisions, modes), [`ModelSpec`] and
//! what follows from a config; `config.rs` the config types; `models.rs` the table of
//! models; `params.rs` and `flops.rs` the parameter and FLOP formulas, family by family.
//!
//! Must never: do I/O, download or read weights, or know about candle. Engines map these
//! configs onto their own types.

use crate::diagnostic::named_enum;

mod config;
mod flops;
mod models;
mod params;
#[cfg(test)]
mod tests;

pub use config::{
    BertConfig, ClipConfig, ClipTextConfig, ClipVisionConfig, DecoderConfig, ModelConfig, T5Config, VitConfig,
    WhisperConfig,
};
use models::MODELS;

named_enum! {
    /// An architecture family; decides which formula counts parameters and FLOPs and which
    /// engine code builds the model.
    pub enum Family as "family" {
        Bert = "bert",
        T5 = "t5",
        Llama = "llama",
        Qwen2 = "qwen2",
        Vit = "vit",
        Clip = "clip",
        Whisper = "whisper",
    }
}

named_enum! {
    /// Numeric format of the weights (and activations, for the float formats).
    pub enum Precision as "precision" {
        Fp32 = "fp32",
        Fp16 = "fp16",
        Bf16 = "bf16",
        /// GGML block quantisation, 8-bit weights.
        Q8_0 = "q8_0",
        /// GGML block quantisation, 4-bit weights.
        Q4_0 = "q4_0",
        /// GGML block quantisation, 4-bit weights with a per-block offset.
        Q4_1 = "q4_1",
    }
}

named_enum! {
    /// What one iteration does: a forward pass, or forward, loss, backward and optimiser step.
    pub enum Mode as "mode" {
        Inference = "inference",
        Training = "training",
    }
}

impl Precision {
    /// GGML quantised weights: inference only, since they cannot take a gradient step.
    pub fn is_quantized(self) -> bool {
        matches!(self, Precision::Q8_0 | Precision::Q4_0 | Precision::Q4_1)
    }

    /// Bytes one weight takes in this format. GGML blocks hold 32 weights and one f16
    /// scale: q8_0 is 34 bytes a block, q4_0 18, q4_1 20 (it adds an f16 offset).
    pub fn bytes_per_parameter(self) -> f64 {
        match self {
            Precision::Fp32 => 4.0,
            Precision::Fp16 | Precision::Bf16 => 2.0,
            Precision::Q8_0 => 34.0 / 32.0,
            Precision::Q4_0 => 18.0 / 32.0,
            Precision::Q4_1 => 20.0 / 32.0,
        }
    }
}

const FLOAT_PRECISIONS: &[Precision] = &[Precision::Fp32, Precision::Fp16, Precision::Bf16];
const ALL_PRECISIONS: &[Precision] = Precision::ALL;

/// One catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The name users write in a sweep spec (matched case-insensitively).
    pub name: &'static str,
    pub family: Family,
    /// Where the config comes from; `None` for the test-size configs, which are not
    /// published models.
    pub hf_repo: Option<&'static str>,
    pub description: &'static str,
    pub config: ModelConfig,
}

/// Every model in the catalog, in a fixed order.
pub fn all() -> &'static [ModelSpec] {
    MODELS
}

/// The catalog entry called `name`, ignoring ASCII case.
pub fn lookup(name: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.name.eq_ignore_ascii_case(name))
}

/// Whether the catalog says a model can run a precision in a mode at all. Cells failing
/// this are not generated (implicit excludes), so a sweep may list `q4_0` next to BERT
/// and get quantised cells only for the models that have them:
/// - the model must support the precision ([`ModelSpec::supported_precisions`]);
/// - quantised weights cannot be trained, so no training cell at `q8_0`/`q4_0`.
///
/// A model missing from the catalog (a stored spec outliving a catalog entry) is let
/// through; the engine then reports it unsupported.
pub fn is_runnable(model: &str, precision: Precision, mode: Mode) -> bool {
    let trainable = !(mode == Mode::Training && precision.is_quantized());
    let supported = lookup(model).is_none_or(|m| m.supports(precision));
    trainable && supported
}

impl ModelSpec {
    /// Whether the model produces tokens one at a time, so that time-to-first-token and
    /// inter-token latency mean something (decoders and encoder-decoders).
    pub fn is_generative(&self) -> bool {
        matches!(self.family, Family::Llama | Family::Qwen2 | Family::T5 | Family::Whisper)
    }

    /// Precisions this model can run at. The float formats work everywhere; the GGML
    /// quantised ones only for the decoder families, which are the ones
    /// candle-transformers (and llama.cpp) ship quantised implementations of.
    pub fn supported_precisions(&self) -> &'static [Precision] {
        match self.family {
            Family::Llama | Family::Qwen2 => ALL_PRECISIONS,
            _ => FLOAT_PRECISIONS,
        }
    }

    pub fn supports(&self, precision: Precision) -> bool {
        self.supported_precisions().contains(&precision)
    }

    /// The longest token sequence the model accepts, where it has a limit (learned or
    /// fixed position tables). T5's relative positions have none; ViT takes images.
    pub fn max_sequence_length(&self) -> Option<u32> {
        match &self.config {
            ModelConfig::Bert(c) => Some(c.max_position_embeddings),
            ModelConfig::Decoder(c) => Some(c.max_position_embeddings),
            ModelConfig::Clip(c) => Some(c.text.max_position_embeddings),
            ModelConfig::Whisper(c) => Some(c.max_target_positions),
            ModelConfig::T5(_) | ModelConfig::Vit(_) => None,
        }
    }

    /// For models whose input length does not depend on the sweep's sequence length
    /// (ViT: patches plus the class token), that fixed length. Cell expansion uses it so
    /// that such a model is not measured once per sequence length for identical work.
    pub fn fixed_sequence_length(&self) -> Option<u32> {
        match &self.config {
            ModelConfig::Vit(c) => Some(patches(c.image_size, c.patch_size) + 1),
            _ => None,
        }
    }

    /// Number of trainable parameters, computed from the config (tied matrices once).
    pub fn parameter_count(&self) -> u64 {
        match &self.config {
            ModelConfig::Bert(c) => params::bert(c),
            ModelConfig::Decoder(c) => params::decoder(c),
            ModelConfig::T5(c) => params::t5(c),
            ModelConfig::Vit(c) => params::vit(c),
            ModelConfig::Clip(c) => params::clip(c),
            ModelConfig::Whisper(c) => params::whisper(c),
        }
    }

    /// Forward-pass FLOPs for one item (one sequence, image, image-text pair or clip).
    ///
    /// Counts matrix multiplications only, at 2 FLOPs per multiply-add; norms, softmax,
    /// activations and embedding look-ups are a small fraction and are left out. Per
    /// family:
    /// - BERT: `seq_len` tokens through every layer, plus the pooler on one token.
    /// - LLaMA/Qwen2: the prefill of `seq_len` tokens, logits for every position (as in
    ///   training). Attention scores are counted over the full `seq_len²` square, which is
    ///   what a masked (non-flash) kernel computes.
    /// - T5: encoder over `seq_len` tokens and decoder over `seq_len` target tokens
    ///   (teacher forcing, as in training), with cross-attention and the LM head.
    /// - ViT: `seq_len` is ignored; the sequence is the patches plus the class token.
    /// - CLIP: one image through the vision tower and `seq_len` tokens through the text
    ///   tower, plus both projections.
    /// - Whisper: 30 s of audio (the encoder input is always padded to that) and
    ///   `seq_len` decoder tokens.
    pub fn flops_per_item(&self, seq_len: u32) -> f64 {
        let s = f64::from(seq_len);
        match &self.config {
            ModelConfig::Bert(c) => flops::bert(c, s),
            ModelConfig::Decoder(c) => flops::decoder(c, s),
            ModelConfig::T5(c) => flops::t5(c, s),
            ModelConfig::Vit(c) => flops::vit(c),
            ModelConfig::Clip(c) => flops::clip(c, s),
            ModelConfig::Whisper(c) => flops::whisper(c, s),
        }
    }

    /// FLOPs of one iteration over a batch. Training is counted as 3× the forward pass:
    /// the backward pass computes gradients for both activations and weights, each about
    /// as costly as the forward (the usual 6·N·tokens rule). The optimiser step is
    /// linear in the parameters and left out.
    pub fn flops(&self, batch: u32, seq_len: u32, mode: Mode) -> f64 {
        let passes = match mode {
            Mode::Inference => 1.0,
            Mode::Training => 3.0,
        };
        passes * f64::from(batch) * self.flops_per_item(seq_len)
    }
}

/// Patches per image side squared.
fn patches(image_size: u32, patch_size: u32) -> u32 {
    let side = image_size / patch_size.max(1);
    side * side
}
