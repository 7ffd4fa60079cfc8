//! Training mode: one iteration is forward, cross-entropy loss, backward and an AdamW
//! step, in fp32, for BERT (sequence classification head), ViT (its image-class head)
//! and LLaMA-family decoders (next-token loss on the last position).
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
const VIT_CLASSES: usize = 1000;

/// The trainable part: inputs in, logits (batch, classes) out.
trait Trainable {
    fn logits(&mut self) -> candle_core::Result<Tensor>;
}

struct BertCls {
    model: super::bert::Bert,
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
    model: vit::Model,
    pixels: Tensor,
}

impl Trainable for VitCls {
    fn logits(&mut self) -> candle_core::Result<Tensor> {
        self.model.forward(&self.pixels)
    }
}

struct LlamaLm {
    model: llama::Llama,
    cache: llama::Cache,
    input_ids: Tensor,
}

impl Trainable for LlamaLm {
    fn logits(&mut self) -> candle_core::Result<Tensor> {
        self.model.forward(&self.input_ids, 0, &mut self.cache)
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
            let model = super::bert::Bert::load(vb.pp("bert"), &cfg)?;
            let head = candle_nn::linear(cfg.hidden_size, BERT_CLASSES, vb.pp("classifier"))?;
            let input_ids = token_ids(seed, "input_ids", b, spec.seq_len, cfg.vocab_size, device)?;
            let token_type_ids = input_ids.zeros_like()?;
            (Box::new(BertCls { model, head, input_ids, token_type_ids }), BERT_CLASSES)
        }
        Family::Vit => {
            let cfg: vit::Config = config::candle_config(spec)?;
            let model = vit::Model::new(&cfg, VIT_CLASSES, vb)?;
            let shape = [b, cfg.num_channels, cfg.image_size, cfg.image_size];
            let pixels = normal_input(seed, "pixel_values", &shape, DType::F32, device)?;
            (Box::new(VitCls { model, pixels }), VIT_CLASSES)
        }
        Family::Llama => {
            let cfg: llama::LlamaConfig = config::candle_config(spec)?;
            let cfg = cfg.into_config(false);
            let cache = llama::Cache::new(false, DType::F32, &cfg, device)?;
            let model = llama::Llama::load(vb, &cfg)?;
            let input_ids = token_ids(seed, "input_ids", b, spec.seq_len, cfg.vocab_size, device)?;
            (Box::new(LlamaLm { model, cache, input_ids }), cfg.vocab_size)
        }
        other => return Err(BuildError::Unsupported(format!("training is not implemented for {other}"))),
    };
    reseed_varmap(&varmap, spec.weights.seed())?;
    let labels = Tensor::from_vec(seeded_ids(seed, "labels", b, classes as u32), b, device)?;
    let opt = AdamW::new(varmap.all_vars(), ParamsAdamW { lr: 1e-5, ..Default::default() })?;
    Ok(Box::new(Train { net, labels, opt, device: device.clone(), output: None, _varmap: varmap }))
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
