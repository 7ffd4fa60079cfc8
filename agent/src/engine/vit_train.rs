//! ViT for training: the layers and weight names of Hugging Face's
//! `ViTForImageClassification` (as candle-transformers' `vit::Model` loads them), built
//! only from differentiable ops: its layer norms are `layer_norm_slow` and its softmax
//! the plain one ([`super::bert_train`] says why). Tests check that every weight gets a
//! gradient and that the logits match the inference model's.

use candle_core::{Module, Tensor};
use candle_nn::{conv2d, linear, linear_no_bias, Activation, Conv2d, Conv2dConfig, Linear, VarBuilder};
use candle_transformers::models::vit::Config;

use super::bert_train::{self_attention, Norm};

pub struct TrainVit {
    projection: Conv2d,
    cls_token: Tensor,
    position: Tensor,
    layers: Vec<Layer>,
    norm: Norm,
    classifier: Linear,
}

/// One pre-norm encoder layer: attention, then the feed-forward block, each added back.
struct Layer {
    before: Norm,
    qkv: [Linear; 3],
    attention_out: Linear,
    after: Norm,
    intermediate: Linear,
    act: Activation,
    out: Linear,
    heads: usize,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Layer> {
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        let this = vb.pp("attention").pp("attention");
        let projection = |name: &str| {
            if cfg.qkv_bias {
                linear(h, h, this.pp(name))
            } else {
                linear_no_bias(h, h, this.pp(name))
            }
        };
        Ok(Layer {
            before: Norm::load(h, eps, vb.pp("layernorm_before"))?,
            qkv: [projection("query")?, projection("key")?, projection("value")?],
            attention_out: linear(h, h, vb.pp("attention").pp("output").pp("dense"))?,
            after: Norm::load(h, eps, vb.pp("layernorm_after"))?,
            intermediate: linear(h, cfg.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            act: cfg.hidden_act,
            out: linear(cfg.intermediate_size, h, vb.pp("output").pp("dense"))?,
            heads: cfg.num_attention_heads,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let [q, k, v] = &self.qkv;
        let attended = self_attention(&self.before.forward(x)?, [q, k, v], self.heads)?;
        let x = (self.attention_out.forward(&attended)? + x)?;
        let inner = self.act.forward(&self.intermediate.forward(&self.after.forward(&x)?)?)?;
        self.out.forward(&inner)? + x
    }
}

impl TrainVit {
    /// Loads from `vb` laid out as `ViTForImageClassification` (`vit.*`, `classifier`).
    pub fn load(vb: VarBuilder, cfg: &Config, classes: usize) -> candle_core::Result<TrainVit> {
        let (h, v) = (cfg.hidden_size, vb.pp("vit"));
        let e = v.pp("embeddings");
        let n_patches = (cfg.image_size / cfg.patch_size).pow(2);
        let conv = Conv2dConfig { stride: cfg.patch_size, ..Default::default() };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(v.pp("encoder").pp("layer").pp(i), cfg))
            .collect::<candle_core::Result<_>>()?;
        Ok(TrainVit {
            projection: conv2d(cfg.num_channels, h, cfg.patch_size, conv, e.pp("patch_embeddings").pp("projection"))?,
            cls_token: e.get((1, 1, h), "cls_token")?,
            position: e.get((1, n_patches + 1, h), "position_embeddings")?,
            layers,
            norm: Norm::load(h, cfg.layer_norm_eps, v.pp("layernorm"))?,
            classifier: linear(h, classes, vb.pp("classifier"))?,
        })
    }

    /// Class logits (batch, classes) from the [CLS] position.
    pub fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let batch = pixels.dim(0)?;
        let patches = self.projection.forward(pixels)?.flatten_from(2)?.transpose(1, 2)?;
        let cls = self.cls_token.broadcast_as((batch, 1, self.cls_token.dim(2)?))?;
        let mut x = Tensor::cat(&[&cls, &patches], 1)?.broadcast_add(&self.position)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        let first = x.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
        self.classifier.forward(&self.norm.forward(&first)?)
    }
}
