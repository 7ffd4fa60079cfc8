//! Encoder-only inference (BERT): one forward pass over (batch, seq_len) token ids.

use candle_core::{Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config};

use super::{config, dtype, timed, token_ids, BuildError, Iteration, Workload, WorkloadSpec};

struct Bert {
    model: BertModel,
    input_ids: Tensor,
    token_type_ids: Tensor,
    device: Device,
    output: Option<Tensor>,
}

pub fn build(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let cfg: Config = config::candle_config(spec)?;
    if spec.seq_len > cfg.max_position_embeddings {
        return Err(BuildError::Unsupported(format!(
            "seq_len {} exceeds max_position_embeddings {}",
            spec.seq_len, cfg.max_position_embeddings
        )));
    }
    let vb = spec.weights.var_builder(dtype(spec.precision), device)?;
    // Checkpoints of BertForMaskedLM nest the encoder under `bert.`; bare BertModel
    // files do not. Random weights take the bare layout.
    let vb = if spec.weights.contains("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
    let model = BertModel::load(vb, &cfg)?;
    let seed = spec.weights.input_seed();
    let input_ids = token_ids(seed, "input_ids", spec.batch, spec.seq_len, cfg.vocab_size, device)?;
    let token_type_ids = input_ids.zeros_like()?;
    Ok(Box::new(Bert { model, input_ids, token_type_ids, device: device.clone(), output: None }))
}

impl Workload for Bert {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        let (out, _) = timed(&self.device, || self.model.forward(&self.input_ids, &self.token_type_ids, None))?;
        self.output = Some(out);
        Ok(Iteration::default())
    }

    fn output(&self) -> Option<&Tensor> {
        self.output.as_ref()
    }
}
