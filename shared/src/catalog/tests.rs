//! Tests of the catalog: published parameter counts, FLOPs, names and precisions.

use super::*;

fn model(name: &str) -> &'static ModelSpec {
    lookup(name).expect("model in the catalog")
}

/// Published parameter counts (from the model cards / `model.num_parameters()`).
const PUBLISHED: &[(&str, f64)] = &[
    ("bert-tiny", 4.386e6),
    ("bert-base-uncased", 109.48e6),
    ("all-MiniLM-L6-v2", 22.71e6),
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
            all-MiniLM-L6-v2 22713216
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
        "unknown precision `int8`, expected one of fp32, fp16, bf16, q8_0, q4_0, q4_1"
    );
    assert_eq!(serde_json::to_string(&Family::Whisper).expect("serialises"), "\"whisper\"");
}

#[test]
fn bytes_per_parameter_follow_the_formats() {
    assert_eq!(Precision::Fp32.bytes_per_parameter(), 4.0);
    assert_eq!(Precision::Bf16.bytes_per_parameter(), 2.0);
    // A GGML q4_0 block: 32 weights in 16 bytes plus a 2-byte scale.
    assert_eq!(Precision::Q4_0.bytes_per_parameter() * 32.0, 18.0);
    assert_eq!(Precision::Q8_0.bytes_per_parameter() * 32.0, 34.0);
}
