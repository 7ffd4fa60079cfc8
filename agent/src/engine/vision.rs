//! Vision inference: ViT (image classification) and CLIP (image + text towers), one
//! forward pass over a batch of seeded 224×224 RGB images.

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::{clip, vit};

use super::fused::{self, Dims, EncoderStack};
use super::{config, dtype, normal_input, timed, token_ids, BuildError, Iteration, Workload, WorkloadSpec};

/// ImageNet-1k head, as in vit-base-patch16-224.
pub(super) const VIT_LABELS: usize = 1000;

struct Vit {
    model: VitModel,
    pixels: Tensor,
    device: Device,
    output: Option<Tensor>,
}

pub fn build_vit(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let cfg: vit::Config = config::candle_config(spec)?;
    let dt = dtype(spec.precision);
    let vb = spec.weights.var_builder(dt, device)?;
    let model = VitModel::load(&cfg, vb)?;
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

/// ViT for image classification: candle-transformers' model, or on the CPU in f32 the
/// same weights with the encoder stack on accelbench's kernels ([`fused`]).
pub(super) enum VitModel {
    Stock(vit::Model),
    Fused { embeddings: vit::Embeddings, encoder: EncoderStack, layernorm: LayerNorm, classifier: Linear },
}

impl VitModel {
    /// Hugging Face's `ViTForImageClassification` names: `vit.embeddings`,
    /// `vit.encoder`, `vit.layernorm`, `classifier`.
    pub(super) fn load(cfg: &vit::Config, vb: VarBuilder) -> candle_core::Result<VitModel> {
        if !fused::applies(vb.device(), vb.dtype()) || cfg.hidden_act != candle_nn::Activation::Gelu {
            return Ok(VitModel::Stock(vit::Model::new(cfg, VIT_LABELS, vb)?));
        }
        if cfg.num_attention_heads == 0 || cfg.hidden_size % cfg.num_attention_heads != 0 {
            candle_core::bail!(
                "hidden_size {} is not a multiple of {} heads",
                cfg.hidden_size,
                cfg.num_attention_heads
            );
        }
        let dims = Dims {
            layers: cfg.num_hidden_layers,
            hidden: cfg.hidden_size,
            heads: cfg.num_attention_heads,
            intermediate: cfg.intermediate_size,
            eps: cfg.layer_norm_eps,
        };
        let v = vb.pp("vit");
        Ok(VitModel::Fused {
            embeddings: vit::Embeddings::new(cfg, false, v.pp("embeddings"))?,
            encoder: EncoderStack::load_vit(v.pp("encoder"), dims)?,
            layernorm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, v.pp("layernorm"))?,
            classifier: linear(cfg.hidden_size, VIT_LABELS, vb.pp("classifier"))?,
        })
    }

    /// Logits (batch, labels) from the CLS token.
    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            VitModel::Stock(model) => model.forward(pixels),
            VitModel::Fused { embeddings, encoder, layernorm, classifier } => {
                let hidden = encoder.forward(&embeddings.forward(pixels, None, false)?)?;
                classifier.forward(&layernorm.forward(&hidden.i((.., 0, ..))?)?)
            }
        }
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
