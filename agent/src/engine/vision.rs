//! Vision inference: ViT (image classification) and CLIP (image + text towers), one
//! forward pass over a batch of seeded 224×224 RGB images.

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{clip, vit};

use super::{config, dtype, normal_input, timed, token_ids, BuildError, Iteration, Workload, WorkloadSpec};

/// ImageNet-1k head, as in vit-base-patch16-224.
const VIT_LABELS: usize = 1000;

struct Vit {
    model: vit::Model,
    pixels: Tensor,
    device: Device,
    output: Option<Tensor>,
}

pub fn build_vit(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let cfg: vit::Config = config::candle_config(spec)?;
    let dt = dtype(spec.precision);
    let vb = spec.weights.var_builder(dt, device)?;
    let model = vit::Model::new(&cfg, VIT_LABELS, vb)?;
    let shape = [spec.batch, cfg.num_channels, cfg.image_size, cfg.image_size];
    let pixels = normal_input(spec.weights.input_seed(), "pixel_values", &shape, dt, device)?;
    Ok(Box::new(Vit { model, pixels, device: device.clone(), output: None }))
}

impl Workload for Vit {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        let (out, _) = timed(&self.device, || self.model.forward(&self.pixels))?;
        self.output = Some(out);
        Ok(Iteration::default())
    }

    fn output(&self) -> Option<&Tensor> {
        self.output.as_ref()
    }
}

struct Clip {
    model: clip::ClipModel,
    pixels: Tensor,
    input_ids: Tensor,
    device: Device,
    output: Option<Tensor>,
}

pub fn build_clip(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let cfg = config::clip_config(spec)?;
    let dt = dtype(spec.precision);
    let vb = spec.weights.var_builder(dt, device)?;
    let model = clip::ClipModel::new(vb, &cfg)?;
    let seed = spec.weights.input_seed();
    let shape = [spec.batch, 3, cfg.image_size, cfg.image_size];
    let pixels = normal_input(seed, "pixel_values", &shape, dt, device)?;
    // The text tower has a fixed context (77 for OpenAI CLIP): prompts never exceed it.
    let text_len = spec.seq_len.min(cfg.text_config.max_position_embeddings);
    let input_ids = token_ids(seed, "input_ids", spec.batch, text_len, cfg.text_config.vocab_size, device)?;
    Ok(Box::new(Clip { model, pixels, input_ids, device: device.clone(), output: None }))
}

impl Workload for Clip {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        let ((logits_per_text, _), _) = timed(&self.device, || self.model.forward(&self.pixels, &self.input_ids))?;
        self.output = Some(logits_per_text.to_dtype(DType::F32)?);
        Ok(Iteration::default())
    }

    fn output(&self) -> Option<&Tensor> {
        self.output.as_ref()
    }
}
