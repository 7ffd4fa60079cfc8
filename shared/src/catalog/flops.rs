//! Forward FLOPs, in f64 (7B × 4k tokens × batch overflows nothing there, and callers
//! divide by seconds anyway).
//!
//! Must never: count anything but matrix multiplications (see
//! [`super::ModelSpec::flops_per_item`]).

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
    let projections = matmul(queries, width, q_dim) + 2.0 * matmul(keys, width, kv_dim) + matmul(queries, q_dim, width);
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
