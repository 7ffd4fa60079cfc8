//! Catalog entry → the Hugging Face style `config.json` that candle-transformers'
//! config types deserialise. Going through the same JSON as a real checkpoint's
//! `config.json` means random-init and real weights share one loading path; with real
//! weights in a directory, that directory's own `config.json` is used instead.

use candle_core::quantized::gguf_file::Value;
use candle_transformers::models::clip;
use serde::de::DeserializeOwned;
use serde_json::{json, Value as Json};
use shared::catalog::{Family, ModelConfig, ModelSpec};

use super::{BuildError, WorkloadSpec};

/// The candle config of `spec`'s model: from the weights directory if there is one,
/// else from the catalog.
pub fn candle_config<T: DeserializeOwned>(spec: &WorkloadSpec) -> Result<T, BuildError> {
    let json = match spec.weights.config_json()? {
        Some(j) => j,
        None => hf_config(spec.model),
    };
    serde_json::from_value(json).map_err(|e| BuildError::Failed(anyhow::anyhow!("{} config: {e}", spec.model.name)))
}

/// The keys of a `config.json` that fix a model's shape, across the families.
const SHAPE_KEYS: &[&str] = &[
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "d_model",
    "d_kv",
    "d_ff",
    "num_layers",
    "num_decoder_layers",
    "num_heads",
    "encoder_layers",
    "decoder_layers",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "num_mel_bins",
    "image_size",
    "patch_size",
    "num_channels",
];

/// Real weights bring their own `config.json`; the row is stored under the catalog
/// model's name, so the two must agree on every shape key the catalog sets. `Err`
/// lists each difference.
pub fn check_same_shape(theirs: &Json, catalog: &Json) -> Result<(), String> {
    let differences: Vec<String> = SHAPE_KEYS
        .iter()
        .filter_map(|key| {
            let want = catalog.get(*key)?;
            let got = theirs.get(*key);
            (got != Some(want))
                .then(|| format!("{key} is {}, expected {want}", got.map_or("missing".into(), Json::to_string)))
        })
        .collect();
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences.join(", "))
    }
}

/// The published-style `config.json` of a catalog model.
pub fn hf_config(model: &ModelSpec) -> Json {
    match &model.config {
        ModelConfig::Bert(c) => json!({
            "vocab_size": c.vocab_size, "hidden_size": c.hidden_size,
            "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
            "intermediate_size": c.intermediate_size, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "max_position_embeddings": c.max_position_embeddings, "type_vocab_size": c.type_vocab_size,
            "initializer_range": 0.02, "layer_norm_eps": c.layer_norm_eps, "pad_token_id": 0,
            "position_embedding_type": "absolute", "use_cache": true, "classifier_dropout": null,
            "model_type": "bert",
        }),
        ModelConfig::T5(c) => json!({
            "vocab_size": c.vocab_size, "d_model": c.d_model, "d_kv": c.d_kv, "d_ff": c.d_ff,
            "num_layers": c.num_layers, "num_decoder_layers": c.num_decoder_layers, "num_heads": c.num_heads,
            "relative_attention_num_buckets": c.relative_attention_num_buckets,
            "relative_attention_max_distance": c.relative_attention_max_distance,
            "dropout_rate": 0.1, "layer_norm_epsilon": c.layer_norm_epsilon, "initializer_factor": 1.0,
            "feed_forward_proj": if c.gated_ff { "gated-gelu" } else { "relu" },
            "tie_word_embeddings": c.tie_word_embeddings, "is_encoder_decoder": true, "use_cache": true,
            "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
        }),
        ModelConfig::Decoder(c) => json!({
            "vocab_size": c.vocab_size, "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
            "num_key_value_heads": c.num_key_value_heads, "max_position_embeddings": c.max_position_embeddings,
            "rms_norm_eps": c.rms_norm_eps, "rope_theta": c.rope_theta, "tie_word_embeddings": c.tie_word_embeddings,
            "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
            // qwen2 only; ignored by the llama config.
            "sliding_window": c.max_position_embeddings, "max_window_layers": c.num_hidden_layers,
            "use_sliding_window": false,
        }),
        ModelConfig::Vit(c) => json!({
            "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads, "intermediate_size": c.intermediate_size,
            "hidden_act": "gelu", "layer_norm_eps": c.layer_norm_eps, "image_size": c.image_size,
            "patch_size": c.patch_size, "num_channels": c.num_channels, "qkv_bias": c.qkv_bias,
        }),
        ModelConfig::Whisper(c) => json!({
            "num_mel_bins": c.num_mel_bins, "max_source_positions": c.max_source_positions,
            "d_model": c.d_model, "encoder_attention_heads": c.encoder_attention_heads,
            "encoder_layers": c.encoder_layers, "vocab_size": c.vocab_size,
            "max_target_positions": c.max_target_positions, "decoder_attention_heads": c.decoder_attention_heads,
            "decoder_layers": c.decoder_layers, "suppress_tokens": [],
        }),
        // CLIP's candle config is not deserialisable; see `clip_config`.
        ModelConfig::Clip(_) => json!({}),
    }
}

/// CLIP's candle config, built from the catalog numbers.
pub fn clip_config(spec: &WorkloadSpec) -> Result<clip::ClipConfig, BuildError> {
    let ModelConfig::Clip(c) = &spec.model.config else {
        return Err(BuildError::Unsupported(format!("{} is not a clip model", spec.model.name)));
    };
    if spec.weights.config_json()?.is_some() {
        return Err(BuildError::Unsupported("clip runs with its catalog config only".into()));
    }
    let text = clip::text_model::ClipTextConfig {
        vocab_size: c.text.vocab_size as usize,
        embed_dim: c.text.hidden_size as usize,
        activation: clip::text_model::Activation::QuickGelu,
        intermediate_size: c.text.intermediate_size as usize,
        max_position_embeddings: c.text.max_position_embeddings as usize,
        pad_with: None,
        num_hidden_layers: c.text.num_hidden_layers as usize,
        num_attention_heads: c.text.num_attention_heads as usize,
        projection_dim: c.projection_dim as usize,
    };
    let vision = clip::vision_model::ClipVisionConfig {
        embed_dim: c.vision.hidden_size as usize,
        activation: clip::text_model::Activation::QuickGelu,
        intermediate_size: c.vision.intermediate_size as usize,
        num_hidden_layers: c.vision.num_hidden_layers as usize,
        num_attention_heads: c.vision.num_attention_heads as usize,
        projection_dim: c.projection_dim as usize,
        num_channels: c.vision.num_channels as usize,
        image_size: c.vision.image_size as usize,
        patch_size: c.vision.patch_size as usize,
    };
    Ok(clip::ClipConfig {
        text_config: text,
        vision_config: vision,
        logit_scale_init_value: 2.6592,
        image_size: c.vision.image_size as usize,
    })
}

/// The shape of a decoder, as the quantized GGUF path needs it.
#[derive(Debug, Clone)]
pub struct DecoderShape {
    pub family: Family,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub tied_embeddings: bool,
    pub qkv_bias: bool,
    pub rope_theta: f64,
    pub rms_eps: f64,
}

impl DecoderShape {
    pub fn of(spec: &WorkloadSpec) -> Result<DecoderShape, BuildError> {
        let ModelConfig::Decoder(c) = &spec.model.config else {
            return Err(BuildError::Unsupported(format!("{} is not a decoder", spec.model.name)));
        };
        let u = |v: u32| v as usize;
        Ok(DecoderShape {
            family: spec.model.family,
            hidden: u(c.hidden_size),
            layers: u(c.num_hidden_layers),
            heads: u(c.num_attention_heads),
            kv_heads: u(c.num_key_value_heads),
            head_dim: u(c.hidden_size / c.num_attention_heads.max(1)),
            intermediate: u(c.intermediate_size),
            vocab: u(c.vocab_size),
            max_positions: u(c.max_position_embeddings),
            tied_embeddings: c.tie_word_embeddings,
            qkv_bias: c.attention_bias,
            rope_theta: c.rope_theta,
            rms_eps: c.rms_norm_eps,
        })
    }

    /// llama.cpp's metadata keys for this architecture.
    pub fn gguf_metadata(&self) -> Vec<(String, Value)> {
        let arch = if self.family == Family::Qwen2 { "qwen2" } else { "llama" };
        let k = |s: &str| format!("{arch}.{s}");
        let u = |v: usize| Value::U32(v as u32);
        vec![
            ("general.architecture".into(), Value::String(arch.into())),
            (k("attention.head_count"), u(self.heads)),
            (k("attention.head_count_kv"), u(self.kv_heads)),
            (k("block_count"), u(self.layers)),
            (k("embedding_length"), u(self.hidden)),
            (k("feed_forward_length"), u(self.intermediate)),
            (k("context_length"), u(self.max_positions)),
            (k("rope.dimension_count"), u(self.head_dim)),
            (k("rope.freq_base"), Value::F32(self.rope_theta as f32)),
            (k("attention.layer_norm_rms_epsilon"), Value::F32(self.rms_eps as f32)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::catalog;

    #[test]
    fn weights_of_another_shape_are_told_apart_from_the_catalog_model() {
        let bert_tiny = hf_config(catalog::lookup("bert-tiny").expect("bert-tiny"));
        check_same_shape(&bert_tiny, &bert_tiny).expect("the catalog's own config");
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bert/config.json");
        let theirs: Json = serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("json");
        let why = check_same_shape(&theirs, &bert_tiny).expect_err("a 32-wide fixture is not bert-tiny");
        assert!(why.contains("hidden_size is 32, expected 128") && why.contains("vocab_size is 99"), "{why}");
    }
}
