//! The runner protocol, version 1 (docs/RUNNERS.md): how an agent drives an engine that
//! is not built in (PyTorch, ONNX Runtime, OpenVINO, llama.cpp, or a lab's own) in a
//! child process it starts per cell, one JSON object per line: [`ToRunner`] on the
//! runner's stdin, [`FromRunner`] on its stdout; stderr is free text the agent keeps a
//! tail of.
//!
//! The agent stays in charge of what makes a number trustworthy: it starts and reaps the
//! process (time limit, peak memory from the kernel, crash/OOM/timeout statuses), runs the
//! warm-up and the stopping rule, and asks for iterations one batch at a time; the runner
//! only loads, runs and times what it is told, on the device it says it used.
//!
//! Everything a runner sends is outside input: [`parse_line`] bounds it and refuses
//! malformed lines, non-finite or negative timings and other protocol versions with an
//! error naming what was wrong, never a panic.

use serde::{Deserialize, Serialize};

/// The protocol version this agent speaks; a runner's hello must name it.
pub const PROTOCOL: u32 = 1;

/// The longest line either side may send; longer ones are refused unread.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Samples in one [`FromRunner::Samples`] at most.
pub const MAX_SAMPLES: usize = 1 << 20;

/// What the runner says: its first line is always a [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromRunner {
    Hello(Hello),
    /// The model is built on the device, with the weights, ready to run.
    Loaded(Loaded),
    /// One timed iteration, as the runner timed it around the work and the device's
    /// synchronisation (not the pipe).
    Iteration {
        seconds: f64,
        /// Generative families: prefill up to the first token's logits, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_token_seconds: Option<f64>,
        /// Generative families: each following decode step (as many as the load's
        /// `decode_steps`), in seconds.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        token_seconds: Vec<f64>,
    },
    /// Samples of a runner that must time itself (an engine that runs its own loop, as
    /// llama.cpp's decode does), in seconds.
    Samples {
        seconds: Vec<f64>,
    },
    /// The outputs of [`ToRunner::Outputs`] are written, as safetensors, to `path`.
    Outputs {
        path: String,
    },
    Error(RunnerError),
}

/// A runner's handshake: who it is and what it can run here. An agent reports an engine
/// present only when its runner answers with one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// The runner program's own name, e.g. `accelbench-torch`.
    pub runner: String,
    /// The engine it runs, as sweeps name it (`torch`, `onnxruntime`, …).
    pub engine: String,
    /// The engine library's version, e.g. torch's `2.5.1+cpu`.
    pub engine_version: String,
    /// The devices it can use on this machine now.
    pub devices: Vec<RunnerDevice>,
    /// Precisions (`fp32`, `bf16`, …) and modes (`inference`, `training`) and model
    /// families (`bert`, `llama`, …) it can run; names this agent does not know are
    /// ignored, so a newer runner still works with an older agent.
    pub precisions: Vec<String>,
    pub modes: Vec<String>,
    pub families: Vec<String>,
}

/// One device a runner can use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerDevice {
    /// In the agent's notation: `cpu`, or `<kind>:<index>` as the fingerprint numbers the
    /// devices of that hardware kind (`cuda:0`, `rocm:0`, `metal:0`, `qnn:0`, `xpu:0`,
    /// `npu:0`).
    pub device: String,
    /// What it is, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// ONNX Runtime's execution providers (or OpenVINO's device plugins) usable on it.
    #[serde(default)]
    pub execution_providers: Vec<String>,
}

/// What a runner built, which the result row records (never the request's words).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loaded {
    /// The device the work really runs on.
    pub device: String,
    /// The execution provider that really runs it (ONNX Runtime), if any.
    #[serde(default)]
    pub execution_provider: Option<String>,
    pub engine_version: String,
}

/// A failure the runner could name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// This runner cannot run the cell for real here (no such device, precision, family):
    /// the result is `unsupported` with the message.
    Unsupported,
    /// The engine ran out of device memory.
    OutOfMemory,
    /// Anything else: the result is `failed` with the message.
    Failed,
}

/// What the agent says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToRunner {
    /// Build this cell's model; answered by [`FromRunner::Loaded`] or an error.
    Load(Load),
    /// Run `iterations` iterations on the fixed inputs, answering one
    /// [`FromRunner::Iteration`] each (warm-up and timed alike: the agent decides which
    /// count). A runner that times itself answers with one [`FromRunner::Samples`].
    Run { iterations: u32 },
    /// Run once on the inputs in the safetensors file `inputs` and write the outputs
    /// (`hidden_states`, `logits`, or `tokens` for greedy decoding) to `outputs`, for the
    /// output check against a reference engine.
    Outputs { inputs: String, outputs: String },
    /// The cell is over: exit with status 0.
    End,
}

/// One cell, as the runner must build it: the same model config and weights every engine
/// gets, so that rows of different engines compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub protocol: u32,
    /// The catalog's model name and family.
    pub model: String,
    pub family: String,
    /// A folder in Hugging Face layout (`config.json` + `model.safetensors`) or a `.gguf`
    /// file: real weights, or the agent's seeded weights written out for this cell.
    pub weights: String,
    pub batch: u32,
    pub seq_len: u32,
    pub precision: String,
    pub mode: String,
    /// The device to run on, one of those the hello named.
    pub device: String,
    /// Seed of the synthetic inputs.
    pub seed: u64,
    /// Generative families: tokens to decode after the first in every iteration, each
    /// timed (0 for the others).
    #[serde(default)]
    pub decode_steps: u32,
}

/// Why a runner's line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("a line of {0} bytes, over the protocol's limit of {MAX_LINE_BYTES}")]
    TooLong(usize),
    #[error("not a runner message ({error}): {line}")]
    Malformed { error: String, line: String },
    #[error("the runner speaks protocol {0}; this agent speaks {PROTOCOL}")]
    Version(u32),
    #[error("{0}")]
    Invalid(String),
}

/// Parses and checks one line from a runner.
pub fn parse_line(line: &str) -> Result<FromRunner, ProtocolError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(ProtocolError::TooLong(line.len()));
    }
    let message: FromRunner = serde_json::from_str(line.trim_end())
        .map_err(|e| ProtocolError::Malformed { error: e.to_string(), line: line.chars().take(200).collect() })?;
    check(&message)?;
    Ok(message)
}

fn check(message: &FromRunner) -> Result<(), ProtocolError> {
    let invalid = |what: String| Err(ProtocolError::Invalid(what));
    match message {
        FromRunner::Hello(h) if h.protocol != PROTOCOL => Err(ProtocolError::Version(h.protocol)),
        FromRunner::Hello(h) if h.engine.trim().is_empty() || h.devices.is_empty() => {
            invalid(format!("a hello from `{}` must name its engine and at least one device", h.runner))
        }
        FromRunner::Iteration { seconds, .. } if !is_time(*seconds) => {
            invalid(format!("an iteration of {seconds} s: a time must be finite and positive"))
        }
        FromRunner::Iteration { first_token_seconds, token_seconds, .. } => {
            match first_token_seconds.iter().chain(token_seconds).find(|s| !is_time(**s)) {
                Some(bad) => invalid(format!("a token time of {bad} s: a time must be finite and positive")),
                None if token_seconds.len() > MAX_SAMPLES => {
                    invalid(format!("{} token times, at most {MAX_SAMPLES}", token_seconds.len()))
                }
                None => Ok(()),
            }
        }
        FromRunner::Samples { seconds } if seconds.is_empty() || seconds.len() > MAX_SAMPLES => {
            invalid(format!("{} samples: between 1 and {MAX_SAMPLES} expected", seconds.len()))
        }
        FromRunner::Samples { seconds } => match seconds.iter().find(|s| !is_time(**s)) {
            Some(bad) => invalid(format!("a sample of {bad} s: a time must be finite and positive")),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A duration a measurement may record: finite, above zero and under a day.
fn is_time(seconds: f64) -> bool {
    seconds.is_finite() && seconds > 0.0 && seconds < 86_400.0
}

/// One line to send: the message as JSON, newline-terminated.
pub fn line(message: &ToRunner) -> String {
    // Serialising these plain structs cannot fail (no maps with non-string keys).
    let mut text = serde_json::to_string(message).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> String {
        r#"{"type":"hello","protocol":1,"runner":"accelbench-torch","engine":"torch","engine_version":"2.5.1+cpu",
            "devices":[{"device":"cpu","name":"AMD EPYC"}],"precisions":["fp32","bf16","int3"],"modes":["inference"],
            "families":["bert"],"something_newer":true}"#
            .replace('\n', "")
    }

    #[test]
    fn a_hello_parses_and_tolerates_names_and_fields_from_newer_runners() {
        let FromRunner::Hello(h) = parse_line(&hello()).expect("a valid hello") else { panic!("not a hello") };
        assert_eq!((h.engine.as_str(), h.devices[0].device.as_str()), ("torch", "cpu"));
        assert_eq!(h.precisions, ["fp32", "bf16", "int3"]);
        assert!(h.devices[0].execution_providers.is_empty());
    }

    #[test]
    fn bad_lines_are_refused_with_what_was_wrong() {
        let cases = [
            (hello().replace(r#""protocol":1"#, r#""protocol":2"#), "speaks protocol 2"),
            (hello().replace(r#""engine":"torch""#, r#""engine":" ""#), "must name its engine"),
            (hello().replace(r#"[{"device":"cpu","name":"AMD EPYC"}]"#, "[]"), "at least one device"),
            (r#"{"type":"iteration","seconds":-1}"#.into(), "finite and positive"),
            (r#"{"type":"iteration","seconds":0}"#.into(), "finite and positive"),
            (r#"{"type":"iteration","seconds":1e300}"#.into(), "finite and positive"),
            (r#"{"type":"iteration","seconds":"fast"}"#.into(), "not a runner message"),
            (r#"{"type":"iteration","seconds":1,"first_token_seconds":0}"#.into(), "a token time of 0 s"),
            (r#"{"type":"iteration","seconds":1,"token_seconds":[0.1,-1]}"#.into(), "a token time of -1 s"),
            (r#"{"type":"samples","seconds":[]}"#.into(), "0 samples"),
            (r#"{"type":"samples","seconds":[0.1, -0.0]}"#.into(), "a sample of -0 s"),
            (r#"{"type":"teleport"}"#.into(), "not a runner message"),
            ("Traceback (most recent call last):".into(), "not a runner message"),
            (r#"{"type":"error","kind":"exploded","message":"x"}"#.into(), "not a runner message"),
            (format!(r#"{{"type":"outputs","path":"{}"}}"#, "x".repeat(MAX_LINE_BYTES)), "over the protocol's limit"),
        ];
        for (line, said) in cases {
            let error = parse_line(&line).expect_err(&line[..line.len().min(80)]).to_string();
            assert!(error.contains(said), "{error} (wanted `{said}`)");
        }
    }

    #[test]
    fn every_message_round_trips() {
        let from = [
            FromRunner::Loaded(Loaded {
                device: "cuda:0".into(),
                execution_provider: Some("CUDAExecutionProvider".into()),
                engine_version: "1.20.1".into(),
            }),
            FromRunner::Iteration { seconds: 0.0125, first_token_seconds: None, token_seconds: Vec::new() },
            FromRunner::Iteration { seconds: 0.03, first_token_seconds: Some(0.01), token_seconds: vec![0.01, 0.01] },
            FromRunner::Samples { seconds: vec![0.5, 0.25] },
            FromRunner::Outputs { path: "/tmp/out.safetensors".into() },
            FromRunner::Error(RunnerError { kind: ErrorKind::OutOfMemory, message: "CUDA out of memory".into() }),
        ];
        for message in from {
            let text = serde_json::to_string(&message).expect("serialises");
            assert_eq!(parse_line(&text).expect("parses back"), message);
        }
        let load = ToRunner::Load(Load {
            protocol: PROTOCOL,
            model: "bert-tiny".into(),
            family: "bert".into(),
            weights: "/w/bert-tiny".into(),
            batch: 4,
            seq_len: 128,
            precision: "bf16".into(),
            mode: "inference".into(),
            device: "cpu".into(),
            seed: 7,
            decode_steps: 16,
        });
        for message in [load, ToRunner::Run { iterations: 3 }, ToRunner::End] {
            let text = line(&message);
            assert!(text.ends_with('\n') && !text[..text.len() - 1].contains('\n'), "{text}");
            assert_eq!(serde_json::from_str::<ToRunner>(&text).expect("parses back"), message);
        }
    }
}
