//! Encoder-decoder inference: T5 (text) and Whisper (audio). One iteration is an
//! encoder pass plus [`DECODE_STEPS`](super::DECODE_STEPS) + 1 greedy decoder steps;
//! the first decoder step counts toward time-to-first-token.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{t5, whisper};

use super::{
    config, decode_phase, dtype, greedy_next, normal_input, token_ids, BuildError, Iteration, Workload, WorkloadSpec,
    DECODE_STEPS,
};

struct T5 {
    model: t5::T5ForConditionalGeneration,
    input_ids: Tensor,
    start_ids: Tensor,
    device: Device,
    output: Option<Tensor>,
    prompt: u32,
}

pub fn build_t5(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let mut cfg: t5::Config = config::candle_config(spec)?;
    cfg.use_cache = true;
    let vb = spec.weights.var_builder(dtype(spec.precision), device)?;
    let model = t5::T5ForConditionalGeneration::load(vb, &cfg)?;
    let input_ids =
        token_ids(spec.weights.input_seed(), "input_ids", spec.batch, spec.seq_len, cfg.vocab_size, device)?;
    let start = cfg.decoder_start_token_id.unwrap_or(cfg.pad_token_id) as u32;
    let start_ids = Tensor::from_vec(vec![start; spec.batch], (spec.batch, 1), device)?;
    Ok(Box::new(T5 { model, input_ids, start_ids, device: device.clone(), output: None, prompt: spec.seq_len as u32 }))
}

impl Workload for T5 {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        self.model.clear_kv_cache();
        let start = Instant::now();
        let encoded = self.model.encode(&self.input_ids)?;
        // With the KV cache on, each step after the first feeds only the newest token.
        let logits = self.model.decode(&self.start_ids, &encoded)?;
        self.device.synchronize()?;
        let first_token = start.elapsed();
        let model = &mut self.model;
        let (token_steps, logits) =
            decode_phase(&self.device, logits, |prev| model.decode(&greedy_next(prev)?, &encoded))?;
        self.output = Some(logits);
        Ok(Iteration { first_token: Some(first_token), token_steps, own_time: None })
    }

    fn output(&self) -> Option<&Tensor> {
        self.output.as_ref()
    }

    fn generation_shape(&self) -> Option<(u32, u32)> {
        Some((self.prompt, DECODE_STEPS))
    }
}

/// Whisper's fixed input: 30 s of audio as mel frames (the encoder's whole context).
const WHISPER_FRAMES: usize = 3000;
/// `<|startoftranscript|>` of the multilingual vocabulary.
const WHISPER_SOT: u32 = 50258;

struct Whisper {
    model: whisper::model::Whisper,
    mel: Tensor,
    batch: usize,
    device: Device,
    output: Option<Tensor>,
}

pub fn build_whisper(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let cfg: whisper::Config = config::candle_config(spec)?;
    let dt = dtype(spec.precision);
    let vb = spec.weights.var_builder(dt, device)?;
    let model = whisper::model::Whisper::load(&vb, cfg.clone())?;
    let shape = [spec.batch, cfg.num_mel_bins, WHISPER_FRAMES];
    let mel = normal_input(spec.weights.input_seed(), "mel", &shape, dt, device)?;
    Ok(Box::new(Whisper { model, mel, batch: spec.batch, device: device.clone(), output: None }))
}

impl Workload for Whisper {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        let start = Instant::now();
        let audio = self.model.encoder.forward(&self.mel, true)?;
        // candle's whisper decoder caches only cross-attention keys and values, so every
        // step re-runs the whole token prefix, as candle's own whisper example does.
        let mut tokens = Tensor::from_vec(vec![WHISPER_SOT; self.batch], (self.batch, 1), &self.device)?;
        let logits = Self::step(&mut self.model, &tokens, &audio, true)?;
        self.device.synchronize()?;
        let first_token = start.elapsed();
        let model = &mut self.model;
        let (token_steps, logits) = decode_phase(&self.device, logits, |prev| {
            tokens = Tensor::cat(&[&tokens, &greedy_next(prev)?], 1)?;
            Self::step(model, &tokens, &audio, false)
        })?;
        self.output = Some(logits);
        Ok(Iteration { first_token: Some(first_token), token_steps, own_time: None })
    }

    fn output(&self) -> Option<&Tensor> {
        self.output.as_ref()
    }

    fn generation_shape(&self) -> Option<(u32, u32)> {
        Some((1, DECODE_STEPS))
    }
}

impl Whisper {
    /// Logits (batch, vocab) of the last position.
    fn step(
        model: &mut whisper::model::Whisper,
        tokens: &Tensor,
        audio: &Tensor,
        flush: bool,
    ) -> candle_core::Result<Tensor> {
        let hidden = model.decoder.forward(tokens, audio, flush)?;
        let last = hidden.narrow(1, hidden.dim(1)? - 1, 1)?;
        model.decoder.final_linear(&last)?.squeeze(1)?.to_dtype(DType::F32)
    }
}
