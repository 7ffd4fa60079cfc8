//! Parameter counts. Each function follows the module layout of the Hugging Face
//! implementation, so a mismatch with the published count points at one term.
//!
//! Must never: count a tied matrix twice.

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
    let projections = linear(v.hidden_size, c.projection_dim, false) + linear(t.hidden_size, c.projection_dim, false);
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
    let encoder = stem + table(c.max_source_positions, d) + u64::from(c.encoder_layers) * encoder_layer + layer_norm(d);
    let decoder = table(c.vocab_size, d)
        + table(c.max_target_positions, d)
        + u64::from(c.decoder_layers) * decoder_layer
        + layer_norm(d);
    encoder + decoder
}
