//! Encoder-decoder inference: T5 (text) and Whisper (audio). One iteration is an
//! encoder pass plus [`DECODE_STEPS`](super::DECODE_STEPS) + 1 greedy decoder steps;
//! the first decoder step counts toward time-to-first-token.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{t5, whisper};

use super::{
    config, dtype, greedy_next, normal_input, timed, token_ids, BuildError, Iteration, Workload, WorkloadSpec,
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
        let mut logits = self.model.decode(&self.start_ids, &encoded)?;
        let mut next = greedy_next(&logits)?;
        self.device.synchronize()?;
        let first_token = start.elapsed();
        let mut token_steps = Vec::with_capacity(DECODE_STEPS as usize);
        for _ in 0..DECODE_STEPS {
            let ((l, n), d) = timed(&self.device, || {
                let l = self.model.decode(&next, &encoded)?;
                let n = greedy_next(&l)?;
                Ok((l, n))
            })?;
            logits = l;
            next = n;
            token_steps.push(d);
        }
        self.output = Some(logits);
        Ok(Iteration { first_token: Some(first_token), token_steps })
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
        let mut logits = self.step(&tokens, &audio, true)?;
        tokens = Tensor::cat(&[&tokens, &greedy_next(&logits)?], 1)?;
        self.device.synchronize()?;
        let first_token = start.elapsed();
        let mut token_steps = Vec::with_capacity(DECODE_STEPS as usize);
        let device = self.device.clone();
        for _ in 0..DECODE_STEPS {
            let (l, d) = timed(&device, || self.step(&tokens, &audio, false))?;
            tokens = Tensor::cat(&[&tokens, &greedy_next(&l)?], 1)?;
            logits = l;
            token_steps.push(d);
        }
        self.output = Some(logits);
        Ok(Iteration { first_token: Some(first_token), token_steps })
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
    fn step(&mut self, tokens: &Tensor, audio: &Tensor, flush: bool) -> candle_core::Result<Tensor> {
        let hidden = self.model.decoder.forward(tokens, audio, flush)?;
        let last = hidden.narrow(1, hidden.dim(1)? - 1, 1)?;
        self.model.decoder.final_linear(&last)?.squeeze(1)?.to_dtype(DType::F32)
    }
}
