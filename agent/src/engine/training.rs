//! Training mode: one iteration is forward, cross-entropy loss, backward and an AdamW
//! step, in fp32, for BERT (sequence classification head), ViT (its image-class head)
//! and LLaMA-style decoders, LLaMA and Qwen2 (next-token loss on the last position).
//!
//! Every weight must get a gradient (tested): candle-nn's fused layer norm, RMS norm and
//! last-dim softmax have no backward, so gradients stop at them. Each family trains
//! through our own differentiable copy of its model ([`super::bert_train`],
//! [`super::vit_train`], [`super::llama_train`]), checked against the inference model.
//!
//! Models are built through a `VarMap` so that their weights are trainable variables;
//! the map is then re-filled from the seed so runs are repeatable.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{loss, AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use candle_transformers::models::{bert, llama, vit};
use shared::catalog::Family;

use super::init::{reseed_varmap, seeded_ids};
use super::weights::Weights;
use super::{config, normal_input, timed, token_ids, BuildError, Iteration, Workload, WorkloadSpec};

/// Classes of the synthetic BERT classification task.
const BERT_CLASSES: usize = 2;
/// ImageNet's classes, as the published ViT heads have.
const VIT_CLASSES: usize = 1000;

/// The trainable part: inputs in, logits (batch, classes) out.
trait Trainable {
    fn logits(&mut self) -> candle_core::Result<Tensor>;
}

struct BertCls {
    model: super::bert_train::TrainBert,
    head: candle_nn::Linear,
    input_ids: Tensor,
    token_type_ids: Tensor,
}

impl Trainable for BertCls {
    fn logits(&mut self) -> candle_core::Result<Tensor> {
        let hidden = self.model.forward(&self.input_ids, &self.token_type_ids)?;
        // The [CLS] position, as BertForSequenceClassification pools it. Contiguous:
        // candle's cuda matmul refuses the strided slice (the cpu one takes it).
        self.head.forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?)
    }
}

struct VitCls {
    model: super::vit_train::TrainVit,
    pixels: Tensor,
}

impl Trainable for VitCls {
    fn logits(&mut self) -> candle_core::Result<Tensor> {
        self.model.forward(&self.pixels)
    }
}

/// Next-token loss on the last position, as the inference model's logits give it.
struct LlamaLm {
    model: super::llama_train::TrainLlama,
    input_ids: Tensor,
}

impl Trainable for LlamaLm {
    fn logits(&mut self) -> candle_core::Result<Tensor> {
        self.model.forward(&self.input_ids)
    }
}

struct Train {
    net: Box<dyn Trainable>,
    labels: Tensor,
    opt: AdamW,
    device: Device,
    output: Option<Tensor>,
    // Keeps the variables alive for as long as the optimizer holds them.
    _varmap: VarMap,
}

pub fn build(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    Ok(Box::new(build_train(spec, device)?))
}

fn build_train(spec: &WorkloadSpec, device: &Device) -> Result<Train, BuildError> {
    if !matches!(spec.weights, Weights::Random { .. }) {
        return Err(BuildError::Unsupported("training starts from random-init weights only".into()));
    }
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let seed = spec.weights.input_seed();
    let b = spec.batch;
    let (net, classes): (Box<dyn Trainable>, usize) = match spec.model.family {
        Family::Bert => {
            let cfg: bert::Config = config::candle_config(spec)?;
            let model = super::bert_train::TrainBert::load(vb.pp("bert"), &cfg)?;
            let head = candle_nn::linear(cfg.hidden_size, BERT_CLASSES, vb.pp("classifier"))?;
            let input_ids = token_ids(seed, "input_ids", b, spec.seq_len, cfg.vocab_size, device)?;
            let token_type_ids = input_ids.zeros_like()?;
            (Box::new(BertCls { model, head, input_ids, token_type_ids }), BERT_CLASSES)
        }
        Family::Vit => {
            let cfg: vit::Config = config::candle_config(spec)?;
            let model = super::vit_train::TrainVit::load(vb, &cfg, VIT_CLASSES)?;
            let shape = [b, cfg.num_channels, cfg.image_size, cfg.image_size];
            let pixels = normal_input(seed, "pixel_values", &shape, DType::F32, device)?;
            (Box::new(VitCls { model, pixels }), VIT_CLASSES)
        }
        Family::Llama | Family::Qwen2 => {
            let cfg = decoder_config(spec)?;
            let model = super::llama_train::TrainLlama::load(vb, &cfg)?;
            let input_ids = token_ids(seed, "input_ids", b, spec.seq_len, cfg.vocab_size, device)?;
            (Box::new(LlamaLm { model, input_ids }), cfg.vocab_size)
        }
        other => return Err(BuildError::Unsupported(format!("training is not implemented for {other}"))),
    };
    reseed_varmap(&varmap, spec.weights.seed())?;
    let labels = Tensor::from_vec(seeded_ids(seed, "labels", b, classes as u32), b, device)?;
    let opt = AdamW::new(varmap.all_vars(), ParamsAdamW { lr: 1e-5, ..Default::default() })?;
    Ok(Train { net, labels, opt, device: device.clone(), output: None, _varmap: varmap })
}

/// The trainable decoder's config; Llama 3's scaled rope and Qwen2's sliding window are
/// not implemented for training.
fn decoder_config(spec: &WorkloadSpec) -> Result<super::llama_train::Config, BuildError> {
    let cfg = match spec.model.family {
        Family::Qwen2 => super::llama_train::Config::qwen2(&config::candle_config(spec)?),
        _ => {
            let cfg: llama::LlamaConfig = config::candle_config(spec)?;
            super::llama_train::Config::llama(&cfg.into_config(false))
        }
    };
    cfg.ok_or_else(|| {
        BuildError::Unsupported(format!(
            "training {}: scaled rope or sliding-window attention is not implemented for training",
            spec.model.name
        ))
    })
}

impl Workload for Train {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        let (out, _) = timed(&self.device, || {
            let logits = self.net.logits()?;
            let loss = loss::cross_entropy(&logits, &self.labels)?;
            self.opt.backward_step(&loss)?;
            Ok(loss)
        })?;
        self.output = Some(out);
        Ok(Iteration::default())
    }

    fn output(&self) -> Option<&Tensor> {
        self.output.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use shared::catalog::{self, Mode, Precision};

    use super::*;

    /// The largest difference between two outputs, which must have the same number of
    /// values.
    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        let values = |t: &Tensor| -> Vec<f32> { t.flatten_all().expect("flat").to_vec1().expect("f32") };
        let (a, b) = (values(a), values(b));
        assert_eq!(a.len(), b.len(), "outputs of different sizes");
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
    }

    fn spec(model: &str) -> WorkloadSpec {
        WorkloadSpec {
            model: catalog::lookup(model).expect("in catalog"),
            batch: 2,
            seq_len: 8,
            precision: Precision::Fp32,
            mode: Mode::Training,
            weights: Weights::Random { seed: 5 },
        }
    }

    /// A training step must reach every weight: one that trained only the head would be
    /// timed as training while doing little more than inference.
    #[test]
    fn every_variable_gets_a_gradient() {
        for model in ["bert-tiny", "vit-tiny", "llama-tiny"] {
            let mut train = build_train(&spec(model), &Device::Cpu).expect("builds");
            let logits = train.net.logits().expect("logits");
            let grads = loss::cross_entropy(&logits, &train.labels).expect("loss").backward().expect("backward");
            let data = train._varmap.data().lock().expect("varmap");
            let missing: Vec<&String> =
                data.iter().filter(|(_, v)| grads.get(v.as_tensor()).is_none()).map(|(n, _)| n).collect();
            assert!(data.len() > 15, "{model} has {} variables", data.len());
            assert!(missing.is_empty(), "{model}: {} of {} get no gradient: {missing:?}", missing.len(), data.len());
        }
    }

    /// The trainable LLaMA computes what candle-transformers' LLaMA does, on the same
    /// weights: same rope layout, grouped-query heads, causal mask and last-position logits.
    #[test]
    fn the_trainable_llama_matches_the_inference_llama() {
        let cfg: llama::LlamaConfig = config::candle_config(&spec("llama-tiny")).expect("config");
        let cfg = cfg.into_config(false);
        assert!(cfg.num_key_value_heads < cfg.num_attention_heads, "llama-tiny should exercise grouped-query heads");
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let train_cfg = crate::engine::llama_train::Config::llama(&cfg).expect("unscaled rope");
        let train = crate::engine::llama_train::TrainLlama::load(vb.clone(), &train_cfg).expect("trainable");
        reseed_varmap(&varmap, 11).expect("seeded");
        let infer = llama::Llama::load(vb, &cfg).expect("inference");
        let mut cache = llama::Cache::new(false, DType::F32, &cfg, &Device::Cpu).expect("cache");
        let ids = Tensor::new(&[[3u32, 7, 1, 9, 4, 2], [2, 2, 8, 5, 6, 1]], &Device::Cpu).expect("ids");
        let max_diff =
            max_abs_diff(&train.forward(&ids).expect("train"), &infer.forward(&ids, 0, &mut cache).expect("infer"));
        assert!(max_diff < 1e-4, "the two LLaMAs differ by {max_diff}");
    }

    /// The trainable BERT computes what the inference BERT does, on the same weights.
    #[test]
    fn the_trainable_bert_matches_the_inference_bert() {
        let cfg: bert::Config = config::candle_config(&spec("bert-tiny")).expect("config");
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let train = crate::engine::bert_train::TrainBert::load(vb.clone(), &cfg).expect("trainable");
        reseed_varmap(&varmap, 9).expect("seeded");
        // Same names, same variables: the inference model reads the seeded weights.
        let infer = crate::engine::bert::Bert::load(vb, &cfg).expect("inference");
        let ids = Tensor::new(&[[3u32, 7, 1, 9, 4], [2, 2, 8, 5, 6]], &Device::Cpu).expect("ids");
        let types = ids.zeros_like().expect("zeros");
        let max_diff =
            max_abs_diff(&train.forward(&ids, &types).expect("train"), &infer.forward(&ids, &types).expect("infer"));
        assert!(max_diff < 1e-4, "the two BERTs differ by {max_diff}");
    }

    /// The trainable decoder in Qwen2's shape (biased query/key/value, tied embeddings)
    /// computes what candle-transformers' Qwen2 does, and trains every weight.
    #[test]
    fn the_trainable_qwen2_matches_the_inference_qwen2() {
        let cfg: candle_transformers::models::qwen2::Config = serde_json::from_str(
            r#"{"vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
                "sliding_window": 64, "max_window_layers": 2, "tie_word_embeddings": true,
                "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "use_sliding_window": false, "hidden_act": "silu"}"#,
        )
        .expect("a qwen2 config");
        let train_cfg = crate::engine::llama_train::Config::qwen2(&cfg).expect("no sliding window");
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let train = crate::engine::llama_train::TrainLlama::load(vb.clone(), &train_cfg).expect("trainable");
        reseed_varmap(&varmap, 17).expect("seeded");
        // Biases are seeded to zero; give them values so that a missing bias would show.
        for (name, var) in varmap.data().lock().expect("varmap").iter().filter(|(n, _)| n.ends_with("bias")) {
            var.set(&var.ones_like().expect("ones").affine(0.1, 0.0).expect("scaled")).expect(name);
        }
        let mut infer = candle_transformers::models::qwen2::ModelForCausalLM::new(&cfg, vb).expect("inference");
        let ids = Tensor::new(&[[3u32, 7, 1, 9, 4, 2], [2, 2, 8, 5, 6, 1]], &Device::Cpu).expect("ids");
        let logits = train.forward(&ids).expect("train");
        let max_diff = max_abs_diff(&logits, &infer.forward(&ids, 0).expect("infer"));
        assert!(max_diff < 1e-4, "the two Qwen2s differ by {max_diff}");
        let labels = Tensor::new(&[1u32, 2], &Device::Cpu).expect("labels");
        let grads = loss::cross_entropy(&logits, &labels).expect("loss").backward().expect("backward");
        let data = varmap.data().lock().expect("varmap");
        assert!(data.keys().any(|n| n.ends_with("q_proj.bias")), "qwen2 has query biases");
        let missing: Vec<&String> =
            data.iter().filter(|(_, v)| grads.get(v.as_tensor()).is_none()).map(|(n, _)| n).collect();
        assert!(missing.is_empty(), "no gradient for {missing:?}");
    }

    /// The trainable ViT computes what candle-transformers' ViT does, on the same weights.
    #[test]
    fn the_trainable_vit_matches_the_inference_vit() {
        let spec = spec("vit-tiny");
        let cfg: vit::Config = config::candle_config(&spec).expect("config");
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let train = crate::engine::vit_train::TrainVit::load(vb.clone(), &cfg, VIT_CLASSES).expect("trainable");
        reseed_varmap(&varmap, 13).expect("seeded");
        let infer = vit::Model::new(&cfg, VIT_CLASSES, vb).expect("inference");
        let shape = [2, cfg.num_channels, cfg.image_size, cfg.image_size];
        let pixels = normal_input(3, "pixels", &shape, DType::F32, &Device::Cpu).expect("pixels");
        let logits = train.forward(&pixels).expect("train");
        assert_eq!(logits.elem_count(), 2 * VIT_CLASSES);
        let max_diff = max_abs_diff(&logits, &infer.forward(&pixels).expect("infer"));
        assert!(max_diff < 1e-4, "the two ViTs differ by {max_diff}");
    }
}
