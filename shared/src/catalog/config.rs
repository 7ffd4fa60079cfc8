//! The architecture numbers of each family, as published in the models' Hugging Face
//! `config.json` files (field names follow them).
//!
//! Must never: hold a derived number (counts and FLOPs are computed from these, in
//! `params.rs` and `flops.rs`).

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
