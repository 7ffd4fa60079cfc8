//! The model catalog: the named models a sweep may ask for, their architecture numbers
//! (copied from each model's published Hugging Face `config.json`), and what follows from
//! those numbers alone: parameter count, forward/training FLOPs, supported precisions.
//!
//! Counts and FLOPs are computed from the config, never typed in, so adding a model is
//! adding its config. The tests pin the results to the published parameter counts.
//!
//! Must never: do I/O, download or read weights, or know about candle. Engines map these
//! configs onto their own types.

use crate::diagnostic::named_enum;

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
        matches!(self, Precision::Q8_0 | Precision::Q4_0)
    }
}

const FLOAT_PRECISIONS: &[Precision] = &[Precision::Fp32, Precision::Fp16, Precision::Bf16];
const ALL_PRECISIONS: &[Precision] = Precision::ALL;

/// BERT encoder (`BertModel`: embeddings, layers, pooler; no task head).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertConfig {
    pub vocab_size: u32,
    pub hidden_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub intermediate_size: u32,
    pub max_position_embeddings: u32,
    pub type_vocab_size: u32,
    pub layer_norm_eps: f64,
}

/// Decoder-only LLM with rotary positions, RMSNorm, SwiGLU MLP and grouped-query
/// attention (LLaMA, Qwen2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecoderConfig {
    pub vocab_size: u32,
    pub hidden_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub num_key_value_heads: u32,
    pub intermediate_size: u32,
    pub max_position_embeddings: u32,
    /// The LM head reuses the embedding matrix (counted once).
    pub tie_word_embeddings: bool,
    /// Biases on the q, k and v projections (Qwen2 has them, LLaMA does not).
    pub attention_bias: bool,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
}

/// T5 encoder-decoder with relative position buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct T5Config {
    pub vocab_size: u32,
    pub d_model: u32,
    pub d_kv: u32,
    pub d_ff: u32,
    pub num_layers: u32,
    pub num_decoder_layers: u32,
    pub num_heads: u32,
    pub relative_attention_num_buckets: u32,
    pub relative_attention_max_distance: u32,
    /// `feed_forward_proj = "gated-gelu"` (T5 v1.1); T5 v1.0 uses a plain ReLU MLP.
    pub gated_ff: bool,
    pub tie_word_embeddings: bool,
    pub layer_norm_epsilon: f64,
}

/// Vision transformer with a classification head (`ViTForImageClassification`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VitConfig {
    pub hidden_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub intermediate_size: u32,
    pub image_size: u32,
    pub patch_size: u32,
    pub num_channels: u32,
    pub qkv_bias: bool,
    /// Classes of the head; 0 means no head.
    pub num_labels: u32,
    pub layer_norm_eps: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipTextConfig {
    pub vocab_size: u32,
    pub hidden_size: u32,
    pub intermediate_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub max_position_embeddings: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipVisionConfig {
    pub hidden_size: u32,
    pub intermediate_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub image_size: u32,
    pub patch_size: u32,
    pub num_channels: u32,
}

/// CLIP: a text tower and a vision tower projected into one embedding space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipConfig {
    pub text: ClipTextConfig,
    pub vision: ClipVisionConfig,
    pub projection_dim: u32,
    pub layer_norm_eps: f64,
}

/// Whisper: convolutional audio stem, transformer encoder, transformer decoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WhisperConfig {
    pub vocab_size: u32,
    pub num_mel_bins: u32,
    pub d_model: u32,
    pub encoder_layers: u32,
    pub encoder_attention_heads: u32,
    pub encoder_ffn_dim: u32,
    pub decoder_layers: u32,
    pub decoder_attention_heads: u32,
    pub decoder_ffn_dim: u32,
    /// Encoder positions after the stride-2 convolution: 1500 for 30 s of audio.
    pub max_source_positions: u32,
    pub max_target_positions: u32,
}

/// The architecture numbers of one model; the variant follows the family
/// (`Llama` and `Qwen2` share [`DecoderConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModelConfig {
    Bert(BertConfig),
    T5(T5Config),
    Decoder(DecoderConfig),
    Vit(VitConfig),
    Clip(ClipConfig),
    Whisper(WhisperConfig),
}

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

/// Parameter counts. Each function follows the module layout of the Hugging Face
/// implementation, so a mismatch with the published count points at one term.
mod params {
    use super::*;

    /// Weight matrix plus optional bias vector.
    fn linear(inputs: u32, outputs: u32, bias: bool) -> u64 {
        u64::from(inputs) * u64::from(outputs) + if bias { u64::from(outputs) } else { 0 }
    }

    /// LayerNorm has a scale and a shift per channel.
    fn layer_norm(width: u32) -> u64 {
        2 * u64::from(width)
    }

    /// RMSNorm (LLaMA, Qwen2, T5) has only a scale.
    fn rms_norm(width: u32) -> u64 {
        u64::from(width)
    }

    fn table(rows: u32, width: u32) -> u64 {
        u64::from(rows) * u64::from(width)
    }

    /// Post-LN or pre-LN encoder layer with biased projections (BERT, ViT, CLIP): q, k,
    /// v, output projection, two norms, a two-matrix GELU MLP.
    fn encoder_layer(width: u32, inter: u32, qkv_bias: bool) -> u64 {
        3 * linear(width, width, qkv_bias)
            + linear(width, width, true)
            + linear(width, inter, true)
            + linear(inter, width, true)
            + 2 * layer_norm(width)
    }

    pub(super) fn bert(c: &BertConfig) -> u64 {
        let h = c.hidden_size;
        let embeddings =
            table(c.vocab_size, h) + table(c.max_position_embeddings, h) + table(c.type_vocab_size, h) + layer_norm(h);
        let layers = u64::from(c.num_hidden_layers) * encoder_layer(h, c.intermediate_size, true);
        let pooler = linear(h, h, true);
        embeddings + layers + pooler
    }

    pub(super) fn decoder(c: &DecoderConfig) -> u64 {
        let h = c.hidden_size;
        let head_dim = h / c.num_attention_heads.max(1);
        let q_dim = c.num_attention_heads * head_dim;
        // Grouped-query attention: k and v have fewer heads than q.
        let kv_dim = c.num_key_value_heads * head_dim;
        let attention =
            linear(h, q_dim, c.attention_bias) + 2 * linear(h, kv_dim, c.attention_bias) + linear(q_dim, h, false);
        // SwiGLU: gate and up projections, then down.
        let mlp = 3 * linear(h, c.intermediate_size, false);
        let layer = attention + mlp + 2 * rms_norm(h);
        let lm_head = if c.tie_word_embeddings { 0 } else { table(c.vocab_size, h) };
        table(c.vocab_size, h) + u64::from(c.num_hidden_layers) * layer + rms_norm(h) + lm_head
    }

    pub(super) fn t5(c: &T5Config) -> u64 {
        let d = c.d_model;
        let inner = c.num_heads * c.d_kv;
        // T5 projections have no biases.
        let attention = 2 * linear(d, inner, false) + linear(d, inner, false) + linear(inner, d, false);
        let ff = if c.gated_ff { 3 } else { 2 } * linear(d, c.d_ff, false);
        let encoder_layer = attention + ff + 2 * rms_norm(d);
        // Decoder layers add cross-attention and its norm.
        let decoder_layer = 2 * attention + ff + 3 * rms_norm(d);
        // Only the first layer of each stack owns the relative position bias table.
        let position_bias = table(c.relative_attention_num_buckets, c.num_heads);
        let encoder = u64::from(c.num_layers) * encoder_layer + position_bias + rms_norm(d);
        let decoder = u64::from(c.num_decoder_layers) * decoder_layer + position_bias + rms_norm(d);
        let lm_head = if c.tie_word_embeddings { 0 } else { table(c.vocab_size, d) };
        table(c.vocab_size, d) + encoder + decoder + lm_head
    }

    pub(super) fn vit(c: &VitConfig) -> u64 {
        let h = c.hidden_size;
        let patch_inputs = c.num_channels * c.patch_size * c.patch_size;
        // The patch embedding is a strided convolution: one linear map per patch.
        let patch_embedding = linear(patch_inputs, h, true);
        let tokens = patches(c.image_size, c.patch_size) + 1;
        let cls_and_positions = u64::from(h) + table(tokens, h);
        let layers = u64::from(c.num_hidden_layers) * encoder_layer(h, c.intermediate_size, c.qkv_bias);
        let head = if c.num_labels == 0 { 0 } else { linear(h, c.num_labels, true) };
        patch_embedding + cls_and_positions + layers + layer_norm(h) + head
    }

    pub(super) fn clip(c: &ClipConfig) -> u64 {
        let t = &c.text;
        let text = table(t.vocab_size, t.hidden_size)
            + table(t.max_position_embeddings, t.hidden_size)
            + u64::from(t.num_hidden_layers) * encoder_layer(t.hidden_size, t.intermediate_size, true)
            + layer_norm(t.hidden_size);
        let v = &c.vision;
        // CLIP's patch convolution has no bias; pre- and post-layernorms wrap the layers.
        let vision = linear(v.num_channels * v.patch_size * v.patch_size, v.hidden_size, false)
            + u64::from(v.hidden_size)
            + table(patches(v.image_size, v.patch_size) + 1, v.hidden_size)
            + 2 * layer_norm(v.hidden_size)
            + u64::from(v.num_hidden_layers) * encoder_layer(v.hidden_size, v.intermediate_size, true);
        let projections =
            linear(v.hidden_size, c.projection_dim, false) + linear(t.hidden_size, c.projection_dim, false);
        // logit_scale is one learned scalar.
        text + vision + projections + 1
    }

    pub(super) fn whisper(c: &WhisperConfig) -> u64 {
        let d = c.d_model;
        // The k projection is the only one without a bias in Whisper attention.
        let attention = 3 * linear(d, d, true) + linear(d, d, false);
        let encoder_layer =
            attention + linear(d, c.encoder_ffn_dim, true) + linear(c.encoder_ffn_dim, d, true) + 2 * layer_norm(d);
        let decoder_layer =
            2 * attention + linear(d, c.decoder_ffn_dim, true) + linear(c.decoder_ffn_dim, d, true) + 3 * layer_norm(d);
        // Two width-3 convolutions: mels -> d, then d -> d with stride 2.
        let stem = linear(3 * c.num_mel_bins, d, true) + linear(3 * d, d, true);
        // Positions are stored tables in both stacks; the output projection is tied to
        // the token embeddings.
        let encoder =
            stem + table(c.max_source_positions, d) + u64::from(c.encoder_layers) * encoder_layer + layer_norm(d);
        let decoder = table(c.vocab_size, d)
            + table(c.max_target_positions, d)
            + u64::from(c.decoder_layers) * decoder_layer
            + layer_norm(d);
        encoder + decoder
    }
}

/// Forward FLOPs, in f64 (7B × 4k tokens × batch overflows nothing there, and callers
/// divide by seconds anyway).
mod flops {
    use super::*;

    /// An `m × k` by `k × n` product: `m·k·n` multiply-adds, 2 FLOPs each.
    fn matmul(m: f64, k: f64, n: f64) -> f64 {
        2.0 * m * k * n
    }

    fn f(x: u32) -> f64 {
        f64::from(x)
    }

    /// One attention block: projections of `queries` tokens (q, output) and of `keys`
    /// tokens (k, v; `keys` differs for cross-attention), then the score matrix `QKᵀ`
    /// and its product with `V`, summed over heads (`q_dim` = heads × head size; k/v
    /// heads are broadcast under grouped-query attention, so scores use `q_dim`).
    fn attention(queries: f64, keys: f64, width: f64, q_dim: f64, kv_dim: f64) -> f64 {
        let projections =
            matmul(queries, width, q_dim) + 2.0 * matmul(keys, width, kv_dim) + matmul(queries, q_dim, width);
        let scores = matmul(queries, q_dim, keys) + matmul(queries, keys, q_dim);
        projections + scores
    }

    /// Up and down projections; a gated MLP (SwiGLU, gated-GELU) has a second up.
    fn mlp(tokens: f64, width: f64, inter: f64, gated: bool) -> f64 {
        let ups = if gated { 2.0 } else { 1.0 };
        ups * matmul(tokens, width, inter) + matmul(tokens, inter, width)
    }

    /// A standard self-attention encoder layer (BERT, ViT, CLIP, Whisper encoder).
    fn encoder_layer(tokens: f64, width: f64, inter: f64) -> f64 {
        attention(tokens, tokens, width, width, width) + mlp(tokens, width, inter, false)
    }

    pub(super) fn bert(c: &BertConfig, s: f64) -> f64 {
        let (h, i) = (f(c.hidden_size), f(c.intermediate_size));
        // The pooler transforms only the [CLS] token.
        f(c.num_hidden_layers) * encoder_layer(s, h, i) + matmul(1.0, h, h)
    }

    pub(super) fn decoder(c: &DecoderConfig, s: f64) -> f64 {
        let h = f(c.hidden_size);
        let head_dim = f(c.hidden_size / c.num_attention_heads.max(1));
        let q_dim = f(c.num_attention_heads) * head_dim;
        let kv_dim = f(c.num_key_value_heads) * head_dim;
        let layer = attention(s, s, h, q_dim, kv_dim) + mlp(s, h, f(c.intermediate_size), true);
        f(c.num_hidden_layers) * layer + matmul(s, h, f(c.vocab_size))
    }

    pub(super) fn t5(c: &T5Config, s: f64) -> f64 {
        let (d, inner, ff) = (f(c.d_model), f(c.num_heads * c.d_kv), f(c.d_ff));
        let encoder_layer = attention(s, s, d, inner, inner) + mlp(s, d, ff, c.gated_ff);
        // Decoder: causal self-attention, cross-attention over the encoder's s tokens.
        let decoder_layer = 2.0 * attention(s, s, d, inner, inner) + mlp(s, d, ff, c.gated_ff);
        f(c.num_layers) * encoder_layer + f(c.num_decoder_layers) * decoder_layer + matmul(s, d, f(c.vocab_size))
    }

    /// Vision tower without head: patch embedding then layers over patches + [CLS].
    fn vision_tower(width: u32, inter: u32, layers: u32, image: u32, patch: u32, channels: u32) -> f64 {
        let n = f(patches(image, patch));
        let embed = matmul(n, f(channels * patch * patch), f(width));
        embed + f(layers) * encoder_layer(n + 1.0, f(width), f(inter))
    }

    pub(super) fn vit(c: &VitConfig) -> f64 {
        let tower = vision_tower(
            c.hidden_size,
            c.intermediate_size,
            c.num_hidden_layers,
            c.image_size,
            c.patch_size,
            c.num_channels,
        );
        // The classifier reads the [CLS] token only.
        tower + matmul(1.0, f(c.hidden_size), f(c.num_labels))
    }

    pub(super) fn clip(c: &ClipConfig, s: f64) -> f64 {
        let v = &c.vision;
        let vision = vision_tower(
            v.hidden_size,
            v.intermediate_size,
            v.num_hidden_layers,
            v.image_size,
            v.patch_size,
            v.num_channels,
        );
        let t = &c.text;
        let text = f(t.num_hidden_layers) * encoder_layer(s, f(t.hidden_size), f(t.intermediate_size));
        // Each tower's pooled token is projected into the shared space.
        let projections =
            matmul(1.0, f(v.hidden_size), f(c.projection_dim)) + matmul(1.0, f(t.hidden_size), f(c.projection_dim));
        vision + text + projections
    }

    pub(super) fn whisper(c: &WhisperConfig, s: f64) -> f64 {
        let (d, frames) = (f(c.d_model), f(c.max_source_positions));
        // Width-3 convolutions as matmuls: conv1 at full frame rate (2 × positions),
        // conv2 with stride 2 down to the encoder positions.
        let stem = matmul(2.0 * frames, 3.0 * f(c.num_mel_bins), d) + matmul(frames, 3.0 * d, d);
        let encoder = f(c.encoder_layers) * encoder_layer(frames, d, f(c.encoder_ffn_dim));
        let decoder_layer =
            attention(s, s, d, d, d) + attention(s, frames, d, d, d) + mlp(s, d, f(c.decoder_ffn_dim), false);
        let decoder = f(c.decoder_layers) * decoder_layer + matmul(s, d, f(c.vocab_size));
        stem + encoder + decoder
    }
}

static MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "bert-tiny",
        family: Family::Bert,
        hf_repo: Some("prajjwal1/bert-tiny"),
        description: "BERT with 2 layers of width 128 (Turc et al. compact models)",
        config: ModelConfig::Bert(BertConfig {
            vocab_size: 30522,
            hidden_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 512,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
        }),
    },
    ModelSpec {
        name: "bert-base-uncased",
        family: Family::Bert,
        hf_repo: Some("google-bert/bert-base-uncased"),
        description: "BERT base, 12 layers of width 768",
        config: ModelConfig::Bert(BertConfig {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
        }),
    },
    ModelSpec {
        name: "t5-small",
        family: Family::T5,
        hf_repo: Some("google-t5/t5-small"),
        description: "T5 v1.0 small encoder-decoder, 6+6 layers of width 512",
        config: ModelConfig::T5(T5Config {
            vocab_size: 32128,
            d_model: 512,
            d_kv: 64,
            d_ff: 2048,
            num_layers: 6,
            num_decoder_layers: 6,
            num_heads: 8,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            gated_ff: false,
            tie_word_embeddings: true,
            layer_norm_epsilon: 1e-6,
        }),
    },
    ModelSpec {
        name: "vit-base-patch16-224",
        family: Family::Vit,
        hf_repo: Some("google/vit-base-patch16-224"),
        description: "ViT-B/16 image classifier, 224×224 input, ImageNet-1k head",
        config: ModelConfig::Vit(VitConfig {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            image_size: 224,
            patch_size: 16,
            num_channels: 3,
            qkv_bias: true,
            num_labels: 1000,
            layer_norm_eps: 1e-12,
        }),
    },
    ModelSpec {
        name: "clip-vit-base-patch32",
        family: Family::Clip,
        hf_repo: Some("openai/clip-vit-base-patch32"),
        description: "CLIP with a ViT-B/32 image tower and a 12-layer text tower",
        config: ModelConfig::Clip(ClipConfig {
            text: ClipTextConfig {
                vocab_size: 49408,
                hidden_size: 512,
                intermediate_size: 2048,
                num_hidden_layers: 12,
                num_attention_heads: 8,
                max_position_embeddings: 77,
            },
            vision: ClipVisionConfig {
                hidden_size: 768,
                intermediate_size: 3072,
                num_hidden_layers: 12,
                num_attention_heads: 12,
                image_size: 224,
                patch_size: 32,
                num_channels: 3,
            },
            projection_dim: 512,
            layer_norm_eps: 1e-5,
        }),
    },
    ModelSpec {
        name: "whisper-tiny",
        family: Family::Whisper,
        hf_repo: Some("openai/whisper-tiny"),
        description: "Whisper tiny speech recogniser, 4+4 layers of width 384",
        config: ModelConfig::Whisper(WhisperConfig {
            vocab_size: 51865,
            num_mel_bins: 80,
            d_model: 384,
            encoder_layers: 4,
            encoder_attention_heads: 6,
            encoder_ffn_dim: 1536,
            decoder_layers: 4,
            decoder_attention_heads: 6,
            decoder_ffn_dim: 1536,
            max_source_positions: 1500,
            max_target_positions: 448,
        }),
    },
    ModelSpec {
        name: "TinyLlama-1.1B",
        family: Family::Llama,
        hf_repo: Some("TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
        description: "TinyLlama 1.1B chat, LLaMA 2 architecture with grouped-query attention",
        config: ModelConfig::Decoder(DecoderConfig {
            vocab_size: 32000,
            hidden_size: 2048,
            num_hidden_layers: 22,
            num_attention_heads: 32,
            num_key_value_heads: 4,
            intermediate_size: 5632,
            max_position_embeddings: 2048,
            tie_word_embeddings: false,
            attention_bias: false,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-5,
        }),
    },
    ModelSpec {
        name: "Qwen2-0.5B",
        family: Family::Qwen2,
        hf_repo: Some("Qwen/Qwen2-0.5B"),
        description: "Qwen2 0.5B base, tied embeddings, biased q/k/v",
        config: ModelConfig::Decoder(DecoderConfig {
            vocab_size: 151936,
            hidden_size: 896,
            num_hidden_layers: 24,
            num_attention_heads: 14,
            num_key_value_heads: 2,
            intermediate_size: 4864,
            max_position_embeddings: 131072,
            tie_word_embeddings: true,
            attention_bias: true,
            rope_theta: 1_000_000.0,
            rms_norm_eps: 1e-6,
        }),
    },
    ModelSpec {
        name: "llama-7b",
        family: Family::Llama,
        hf_repo: Some("huggyllama/llama-7b"),
        description: "LLaMA 7B (first generation)",
        config: ModelConfig::Decoder(DecoderConfig {
            vocab_size: 32000,
            hidden_size: 4096,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: 32,
            intermediate_size: 11008,
            max_position_embeddings: 2048,
            tie_word_embeddings: false,
            attention_bias: false,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-6,
        }),
    },
    ModelSpec {
        name: "llama-tiny",
        family: Family::Llama,
        hf_repo: None,
        description: "test-size config, not a published model: LLaMA architecture, \
                      4 layers of width 256, about 7M parameters, random weights only",
        config: ModelConfig::Decoder(DecoderConfig {
            vocab_size: 8192,
            hidden_size: 256,
            num_hidden_layers: 4,
            num_attention_heads: 8,
            num_key_value_heads: 4,
            intermediate_size: 704,
            max_position_embeddings: 2048,
            tie_word_embeddings: false,
            attention_bias: false,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-5,
        }),
    },
    ModelSpec {
        name: "vit-tiny",
        family: Family::Vit,
        hf_repo: None,
        description: "test-size config, not a published model: ViT architecture, \
                      4 layers of width 128 on 64×64 images, about 0.8M parameters, \
                      random weights only",
        config: ModelConfig::Vit(VitConfig {
            hidden_size: 128,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            intermediate_size: 512,
            image_size: 64,
            patch_size: 8,
            num_channels: 3,
            qkv_bias: true,
            num_labels: 10,
            layer_norm_eps: 1e-12,
        }),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str) -> &'static ModelSpec {
        lookup(name).expect("model in the catalog")
    }

    /// Published parameter counts (from the model cards / `model.num_parameters()`).
    const PUBLISHED: &[(&str, f64)] = &[
        ("bert-tiny", 4.386e6),
        ("bert-base-uncased", 109.48e6),
        ("t5-small", 60.51e6),
        ("vit-base-patch16-224", 86.57e6),
        ("clip-vit-base-patch32", 151.28e6),
        ("whisper-tiny", 37.76e6),
        ("TinyLlama-1.1B", 1.100e9),
        ("Qwen2-0.5B", 494.0e6),
        ("llama-7b", 6.738e9),
    ];

    #[test]
    fn parameter_counts_match_published_counts() {
        for (name, published) in PUBLISHED {
            let counted = model(name).parameter_count() as f64;
            let error = (counted - published).abs() / published;
            assert!(error < 0.01, "{name}: counted {counted}, published {published}");
        }
    }

    #[test]
    fn exact_parameter_counts_are_stable() {
        let counts: Vec<String> = all().iter().map(|m| format!("{} {}", m.name, m.parameter_count())).collect();
        expect_test::expect![[r#"
            bert-tiny 4385920
            bert-base-uncased 109482240
            t5-small 60506624
            vit-base-patch16-224 86567656
            clip-vit-base-patch32 151277313
            whisper-tiny 37760640
            TinyLlama-1.1B 1100048384
            Qwen2-0.5B 494032768
            llama-7b 6738415616
            llama-tiny 7145728
            vit-tiny 827786"#]]
        .assert_eq(&counts.join("\n"));
    }

    #[test]
    fn lookup_ignores_case_and_rejects_unknown_names() {
        assert_eq!(model("tinyllama-1.1b").name, "TinyLlama-1.1B");
        assert_eq!(model("BERT-BASE-UNCASED").name, "bert-base-uncased");
        assert!(lookup("bert-large").is_none());
    }

    #[test]
    fn names_are_unique_ignoring_case() {
        for (i, a) in all().iter().enumerate() {
            for b in &all()[i + 1..] {
                assert!(!a.name.eq_ignore_ascii_case(b.name), "{}", a.name);
            }
        }
    }

    #[test]
    fn family_matches_config_variant() {
        for m in all() {
            let ok = matches!(
                (m.family, &m.config),
                (Family::Bert, ModelConfig::Bert(_))
                    | (Family::T5, ModelConfig::T5(_))
                    | (Family::Llama | Family::Qwen2, ModelConfig::Decoder(_))
                    | (Family::Vit, ModelConfig::Vit(_))
                    | (Family::Clip, ModelConfig::Clip(_))
                    | (Family::Whisper, ModelConfig::Whisper(_))
            );
            assert!(ok, "{}", m.name);
        }
    }

    #[test]
    fn test_size_configs_say_so() {
        for m in all().iter().filter(|m| m.hf_repo.is_none()) {
            assert!(m.description.starts_with("test-size config"), "{}", m.name);
        }
    }

    #[test]
    fn head_counts_divide_widths() {
        for m in all() {
            let (width, heads, kv) = match &m.config {
                ModelConfig::Bert(c) => (c.hidden_size, c.num_attention_heads, 1),
                ModelConfig::Decoder(c) => {
                    (c.hidden_size, c.num_attention_heads, c.num_attention_heads / c.num_key_value_heads)
                }
                ModelConfig::Vit(c) => (c.hidden_size, c.num_attention_heads, 1),
                ModelConfig::Whisper(c) => (c.d_model, c.encoder_attention_heads, 1),
                ModelConfig::Clip(c) => (c.vision.hidden_size, c.vision.num_attention_heads, 1),
                ModelConfig::T5(c) => (c.num_heads * c.d_kv, c.num_heads, 1),
            };
            assert_eq!(width % heads, 0, "{}", m.name);
            assert!(kv >= 1, "{}", m.name);
        }
    }

    #[test]
    fn decoder_forward_is_two_flops_per_weight_per_token_plus_attention() {
        for name in ["TinyLlama-1.1B", "Qwen2-0.5B", "llama-7b", "llama-tiny"] {
            let m = model(name);
            let ModelConfig::Decoder(c) = &m.config else { panic!("{name} is a decoder") };
            // Every weight except the embedding table is used once per token; with tied
            // embeddings the LM head reuses the table, so it is used once too.
            let embedding = u64::from(c.vocab_size) * u64::from(c.hidden_size);
            let norms = u64::from(c.hidden_size) * u64::from(2 * c.num_hidden_layers + 1);
            let biases = if c.attention_bias {
                let kv = c.num_key_value_heads * (c.hidden_size / c.num_attention_heads);
                u64::from(c.num_hidden_layers) * u64::from(c.hidden_size + 2 * kv)
            } else {
                0
            };
            let mut matmul_weights = m.parameter_count() - norms - biases;
            if !c.tie_word_embeddings {
                matmul_weights -= embedding;
            }
            let s = 512.0;
            let layers = f64::from(c.num_hidden_layers);
            let expected = 2.0 * matmul_weights as f64 * s + 4.0 * layers * f64::from(c.hidden_size) * s * s;
            let got = m.flops_per_item(512);
            assert!((got - expected).abs() / expected < 1e-12, "{name}: {got} vs {expected}");
        }
    }

    #[test]
    fn attention_term_grows_with_the_square_of_the_sequence() {
        let m = model("llama-7b");
        // Doubling s doubles the linear terms; the rest is the s² attention term:
        // f(2s) - 2 f(s) = 4·L·d·(4s² - 2s²) = 8·L·d·s².
        let s = 1024.0;
        let excess = m.flops_per_item(2048) - 2.0 * m.flops_per_item(1024);
        let expected = 8.0 * 32.0 * 4096.0 * s * s;
        assert!((excess - expected).abs() / expected < 1e-12);
    }

    #[test]
    fn vision_flops_match_published_gmacs() {
        // timm / fvcore report multiply-adds: ViT-B/16 17.6 G, CLIP ViT-B/32 image
        // tower 4.4 G (at seq 1 the text tower adds about 0.1 %).
        let vit = model("vit-base-patch16-224");
        assert!((vit.flops_per_item(1) / 2.0 / 17.56e9 - 1.0).abs() < 0.01);
        assert_eq!(vit.flops_per_item(1), vit.flops_per_item(4096));
        let clip = model("clip-vit-base-patch32");
        assert!((clip.flops_per_item(1) / 2.0 / 4.41e9 - 1.0).abs() < 0.01);
    }

    #[test]
    fn bert_base_at_128_tokens_is_about_22_gflops() {
        // 85M layer weights × 128 tokens × 2, plus 0.6 GFLOPs of attention scores.
        let got = model("bert-base-uncased").flops_per_item(128);
        assert!((got / 22.36e9 - 1.0).abs() < 0.01, "{got}");
    }

    #[test]
    fn encoder_decoder_flops_grow_with_sequence_length() {
        for name in ["t5-small", "whisper-tiny", "clip-vit-base-patch32", "bert-tiny"] {
            let m = model(name);
            assert!(m.flops_per_item(64) > 0.0, "{name}");
            assert!(m.flops_per_item(128) > m.flops_per_item(64), "{name}");
        }
    }

    #[test]
    fn training_is_three_forward_passes_per_item() {
        let m = model("bert-tiny");
        let forward = m.flops(8, 128, Mode::Inference);
        assert_eq!(forward, 8.0 * m.flops_per_item(128));
        assert_eq!(m.flops(8, 128, Mode::Training), 3.0 * forward);
    }

    #[test]
    fn quantised_precisions_only_for_decoders() {
        for m in all() {
            let decoder = matches!(m.family, Family::Llama | Family::Qwen2);
            assert_eq!(m.supports(Precision::Q4_0), decoder, "{}", m.name);
            assert_eq!(m.supports(Precision::Q8_0), decoder, "{}", m.name);
            assert!(m.supports(Precision::Fp32) && m.supports(Precision::Bf16));
        }
        assert!(Precision::Q8_0.is_quantized() && !Precision::Bf16.is_quantized());
    }

    #[test]
    fn generative_models_are_decoders_and_encoder_decoders() {
        let generative: Vec<&str> = all().iter().filter(|m| m.is_generative()).map(|m| m.name).collect();
        assert_eq!(generative, ["t5-small", "whisper-tiny", "TinyLlama-1.1B", "Qwen2-0.5B", "llama-7b", "llama-tiny"]);
    }

    #[test]
    fn only_vit_has_a_fixed_sequence_length() {
        assert_eq!(model("vit-base-patch16-224").fixed_sequence_length(), Some(197));
        assert_eq!(model("vit-tiny").fixed_sequence_length(), Some(65));
        assert_eq!(model("clip-vit-base-patch32").fixed_sequence_length(), None);
        assert_eq!(model("clip-vit-base-patch32").max_sequence_length(), Some(77));
    }

    #[test]
    fn names_parse_and_reject_with_the_allowed_list() {
        assert_eq!("q4_0".parse::<Precision>(), Ok(Precision::Q4_0));
        assert_eq!("qwen2".parse::<Family>(), Ok(Family::Qwen2));
        assert_eq!("training".parse::<Mode>(), Ok(Mode::Training));
        assert_eq!(
            "int8".parse::<Precision>().expect_err("int8 is no precision").to_string(),
            "unknown precision `int8`, expected one of fp32, fp16, bf16, q8_0, q4_0"
        );
        assert_eq!(serde_json::to_string(&Family::Whisper).expect("serialises"), "\"whisper\"");
    }
}
