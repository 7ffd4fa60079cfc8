//! The child side of a cell: `accelbench-agent exec-cell`. Reads one [`CellRequest`]
//! from stdin, builds the workload, measures it, and writes [`CellEvent`] lines to
//! stdout ending with the result. It never decides `crashed`, `oom` or `timeout`: a
//! child in that state cannot speak, which is why the parent decides those.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;
use shared::catalog;
use shared::result::{Energy, Generation, Memory, Provenance, ResultRecord, Status, RESULT_SCHEMA_VERSION};
use shared::stats;

use super::{CellEvent, CellRequest};
use crate::engine::weights::Weights;
use crate::engine::{self, export, BuildError, WorkloadSpec};
use crate::measure::{self, energy::EnergyProbe, gpu::GpuMonitor, Measured};
use crate::runners::RunnerSession;
use shared::runner::Load;
use telemetry::propagate::{self, TraceParent};

/// Runs the request read from `input`, writing events to `out`.
pub fn exec_cell(input: impl Read, mut out: impl Write) -> anyhow::Result<()> {
    let req: CellRequest = serde_json::from_reader(input).context("reading the cell request from stdin")?;
    let span = tracing::info_span!(
        "exec_cell",
        sweep_id = req.sweep_id.as_deref(),
        cell_key = %req.cell_key,
        attempt = req.attempt,
        agent_id = req.agent_id.as_deref(),
        model = %req.coordinates.model,
    );
    // The agent's span for this cell, handed over in the environment.
    propagate::set_parent(&span, TraceParent::from_env().as_ref());
    let _in_span = span.enter();
    let mut record = record_for(&req, now_ms());
    emit(&mut out, &CellEvent::Loading)?;
    match run(&req, &mut record, &mut out) {
        Ok(()) => {}
        Err(RunError::Unsupported(reason)) => {
            record.status = Status::Unsupported;
            record.error = Some(reason);
        }
        Err(RunError::Failed(e)) => {
            // A runner that said it ran out of memory: the status a kernel OOM kill gets.
            let oom = e.chain().any(|cause| cause.is::<crate::runners::OutOfMemory>());
            record.status = if oom { Status::Oom } else { Status::Failed };
            record.error = Some(format!("{e:#}"));
        }
    }
    record.provenance.finished_at_ms = now_ms();
    emit(&mut out, &CellEvent::Result { record: Box::new(record) })
}

enum RunError {
    Unsupported(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Failed(e)
    }
}

fn run(req: &CellRequest, record: &mut ResultRecord, out: &mut impl Write) -> Result<(), RunError> {
    let c = &req.coordinates;
    let model = catalog::lookup(&c.model).ok_or_else(|| RunError::Unsupported(format!("unknown model {}", c.model)))?;
    // The built-in engine runs in this process; any other through its runner, whose
    // process the GPU monitor follows for memory.
    let (mut workload, pid) = if c.engine == engine::ENGINE {
        (candle_workload(req, model, record)?, std::process::id())
    } else {
        let mut session = runner_workload(req, model, record)?;
        record.validation = Some(super::validate::validate(req, model, &mut session));
        let pid = session.pid();
        (Box::new(session) as Box<dyn engine::Workload>, pid)
    };
    emit(out, &CellEvent::Warmup)?;
    // Device memory is watched from the warm-up on (its first iteration allocates most);
    // energy only over the timed loop, restarted where it begins.
    let mut gpu = cuda_ordinal(&req.device).and_then(|index| GpuMonitor::start(index, pid));
    let mut rapl = None;
    let started = Instant::now();
    let max_seconds = req.measure.max_seconds;
    let mut last_emit = Instant::now();
    let on_timed_start = || {
        rapl = EnergyProbe::rapl(Path::new("/sys/class/powercap"));
        if let Some(g) = gpu.as_mut() {
            g.restart_energy();
        }
    };
    let measured = measure::measure_with(&req.measure, workload.as_mut(), on_timed_start, |n, ns| {
        // Throttled: a fast model would otherwise write thousands of lines a second.
        if last_emit.elapsed().as_millis() >= 100 {
            last_emit = Instant::now();
            let ev = CellEvent::Progress { n, last_ns: ns, elapsed_s: started.elapsed().as_secs_f64(), max_seconds };
            let _ = emit(out, &ev);
        }
    })?;
    fill_measurements(record, &measured, workload.generation_shape(), c.batch);
    if let Some(reading) = rapl.and_then(EnergyProbe::stop) {
        record.energy = energy(reading.joules, reading.source, &measured);
    }
    // On a GPU cell the GPU's own counter is the energy that matters; RAPL covers only
    // the host package.
    if let Some(g) = gpu.map(GpuMonitor::stop) {
        if let (Some(j), Some(src)) = (g.joules, g.energy_source) {
            record.energy = energy(j, src, &measured);
        }
        record.memory.peak_device_bytes = g.peak_device_bytes;
        record.memory.device_source = g.peak_device_bytes.map(|_| "nvml-process".to_string());
    }
    if let Some(t) = workload.output() {
        record.output_check = Some(engine::output_check(t)?);
    }
    record.status = Status::Ok;
    record.error = None;
    Ok(())
}

/// The workload the cell's coordinates describe, on the request's weights.
fn workload_spec(req: &CellRequest, model: &'static catalog::ModelSpec) -> WorkloadSpec {
    let c = &req.coordinates;
    WorkloadSpec {
        model,
        batch: c.batch as usize,
        seq_len: c.seq_len as usize,
        precision: c.precision,
        mode: c.mode,
        weights: req.weights.clone(),
    }
}

/// The candle engine's workload of the cell, on the device it names.
fn candle_workload(
    req: &CellRequest,
    model: &'static catalog::ModelSpec,
    record: &mut ResultRecord,
) -> Result<Box<dyn engine::Workload>, RunError> {
    let device = open_device(&req.device)?;
    record.provenance.device = Some(device_name(&device, &req.device));
    engine::build(&workload_spec(req, model), &device).map_err(|e| match e {
        BuildError::Unsupported(r) => RunError::Unsupported(r),
        BuildError::Failed(e) => RunError::Failed(e.context("building the model")),
    })
}

/// The cell's runner, past its hello and `load`, on the same weights candle would run
/// (the seeded ones written out in Hugging Face layout, or the real files). The record
/// names what the runner says it loaded: its engine, version and device.
fn runner_workload(
    req: &CellRequest,
    model: &'static catalog::ModelSpec,
    record: &mut ResultRecord,
) -> Result<RunnerSession, RunError> {
    let c = &req.coordinates;
    let argv = req.runner.as_ref().ok_or_else(|| {
        RunError::Unsupported(format!(
            "this agent has no runner for engine `{}` (set runners.{} in its config; see docs/RUNNERS.md)",
            c.engine, c.engine
        ))
    })?;
    let unsupported_or_failed = |e: BuildError| match e {
        BuildError::Unsupported(r) => RunError::Unsupported(r),
        BuildError::Failed(e) => RunError::Failed(e),
    };
    let spec = workload_spec(req, model);
    let weights = match &req.weights {
        // Quantized cells run a GGUF (llama.cpp's format), the others a Hugging Face folder.
        Weights::Random { .. } if c.precision.is_quantized() => export::seeded_gguf(&spec, &export::default_cache()),
        Weights::Random { seed } => export::seeded_hf_folder(model, *seed, &export::default_cache()),
        Weights::Dir { path, sha256, .. } if path.is_file() => {
            export::folder_for_file(model, path, sha256, &export::default_cache())
        }
        Weights::Dir { path, .. } | Weights::Gguf { path, .. } => Ok(path.clone()),
        Weights::Named { source, .. } => Err(BuildError::Unsupported(crate::engine::weights::not_found(source))),
    }
    .map_err(unsupported_or_failed)?;
    let device = runner_device(&req.device);
    let load = Load {
        protocol: shared::runner::PROTOCOL,
        model: model.name.to_string(),
        family: model.family.to_string(),
        weights: weights.display().to_string(),
        batch: c.batch,
        seq_len: c.seq_len,
        precision: c.precision.to_string(),
        mode: c.mode.to_string(),
        device: device.clone(),
        seed: req.weights.input_seed(),
        decode_steps: if engine::generates(model.family) { engine::DECODE_STEPS } else { 0 },
    };
    let session = RunnerSession::start(&c.engine, argv, &load).map_err(unsupported_or_failed)?;
    let provenance = &mut record.provenance;
    provenance.engine = session.hello.engine.clone();
    provenance.engine_version = session.loaded.engine_version.clone();
    let ran_on = if session.loaded.device == device {
        req.device.clone()
    } else {
        format!("{} (asked for {})", session.loaded.device, req.device)
    };
    provenance.device = Some(match &session.loaded.execution_provider {
        Some(ep) => format!("{ran_on} via {ep}"),
        None => ran_on,
    });
    Ok(session)
}

/// The name the runner knows the cell's device by: a GPU the agent pinned the cell to
/// (`CUDA_VISIBLE_DEVICES`) is the runner's only one, `cuda:0`.
fn runner_device(device: &str) -> String {
    match visible_ordinal(device) {
        Some(n) => format!("cuda:{n}"),
        None => device.to_string(),
    }
}

fn cuda_ordinal(device: &str) -> Option<u32> {
    device.strip_prefix("cuda:")?.parse().ok()
}

/// The CUDA ordinal of physical GPU `device` (`cuda:N`) in this process: 0 when the
/// runner made it the only visible device (`CUDA_VISIBLE_DEVICES=N`), else N.
fn visible_ordinal(device: &str) -> Option<usize> {
    let n = cuda_ordinal(device)?;
    let pinned = std::env::var("CUDA_VISIBLE_DEVICES").ok().is_some_and(|v| v.trim() == n.to_string());
    Some(if pinned { 0 } else { n as usize })
}

/// The name of an opened device, from the device itself. A CUDA device is named by the
/// physical GPU the runner pinned this process to (`requested`, its NVML index): inside
/// the process, `CUDA_VISIBLE_DEVICES` makes it ordinal 0.
fn device_name(device: &Device, requested: &str) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } if visible_ordinal(requested) == Some(gpu_id) => requested.into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id} (asked for {requested})"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Opens `name` (`cpu`, `cuda:N`) as a cell would, for callers outside a cell.
pub(crate) fn open(name: &str) -> anyhow::Result<Device> {
    open_device(name).map_err(|e| match e {
        RunError::Unsupported(why) => anyhow::anyhow!("{why}"),
        RunError::Failed(e) => e,
    })
}

fn open_device(name: &str) -> Result<Device, RunError> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    if name.starts_with("cuda:") {
        let ordinal = visible_ordinal(name).ok_or_else(|| RunError::Unsupported(format!("bad device {name}")))?;
        if !cfg!(feature = "cuda") {
            return Err(RunError::Unsupported("this agent was built without the cuda feature".into()));
        }
        cuda_present(ordinal)?;
        return Device::new_cuda(ordinal).map_err(|e| RunError::Failed(anyhow::anyhow!("opening {name}: {e}")));
    }
    Err(RunError::Unsupported(format!("device {name} is not supported by the candle engine")))
}

/// Whether the driver answers and has a device `ordinal`, asked before candle opens it,
/// so that a missing device is `unsupported` with a reason rather than a failure.
#[cfg(feature = "cuda")]
fn cuda_present(ordinal: usize) -> Result<(), RunError> {
    use cudarc::driver::result;
    result::init().map_err(|e| RunError::Unsupported(format!("the cuda driver did not start: {e:?}")))?;
    let count = result::device::get_count()
        .map_err(|e| RunError::Unsupported(format!("the cuda driver could not count devices: {e:?}")))?;
    if !usize::try_from(count).is_ok_and(|count| ordinal < count) {
        return Err(RunError::Unsupported(format!("no device cuda:{ordinal} (the driver sees {count})")));
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn cuda_present(_ordinal: usize) -> Result<(), RunError> {
    Err(RunError::Unsupported("this agent was built without the cuda feature".into()))
}

fn fill_measurements(record: &mut ResultRecord, m: &Measured, generation: Option<(u32, u32)>, batch: u32) {
    record.latency_ns = stats::summarize(&m.samples_ns);
    record.samples_ns = m.samples_ns.clone();
    record.warmup_iterations = m.warmup_iterations;
    record.stop_reason = Some(m.stop);
    record.throughput_items_per_s = record.latency_ns.as_ref().map(|s| f64::from(batch) / (s.p50 / 1e9));
    if let (Some((prompt, steps)), Some(ttft), Some(itl)) =
        (generation, stats::summarize(&m.first_token_ns), stats::summarize(&m.token_ns))
    {
        let decode_s: f64 = m.token_ns.iter().sum::<f64>() / 1e9;
        record.generation = Some(Generation {
            prompt_tokens: prompt,
            decode_steps: steps,
            time_to_first_token_ns: ttft,
            inter_token_ns: itl,
            decode_tokens_per_s: f64::from(batch) * m.token_ns.len() as f64 / decode_s,
        });
    }
}

fn energy(joules: f64, source: &str, m: &Measured) -> Energy {
    let n = m.samples_ns.len().max(1) as f64;
    Energy {
        joules_per_iteration: Some(joules / n),
        mean_power_watts: Some(joules / m.timed.as_secs_f64().max(1e-9)),
        source: Some(source.to_string()),
    }
}

/// The record before anything ran: coordinates and provenance, status `failed` until
/// proven otherwise.
pub(crate) fn record_for(req: &CellRequest, started_at_ms: i64) -> ResultRecord {
    ResultRecord {
        schema_version: RESULT_SCHEMA_VERSION,
        sweep_id: req.sweep_id.clone(),
        cell_key: req.cell_key.clone(),
        attempt: req.attempt,
        coordinates: req.coordinates.clone(),
        status: Status::Failed,
        error: Some("did not run".into()),
        stderr_tail: None,
        latency_ns: None,
        samples_ns: Vec::new(),
        warmup_iterations: 0,
        stop_reason: None,
        throughput_items_per_s: None,
        generation: None,
        memory: Memory::default(),
        energy: Energy::default(),
        output_check: None,
        provenance: Provenance {
            agent_id: req.agent_id.clone(),
            agent_version: crate::VERSION.to_string(),
            git_commit: crate::GIT_COMMIT.to_string(),
            // Another engine's version is its runner's to say, once it has loaded.
            engine: req.coordinates.engine.clone(),
            engine_version: if req.coordinates.engine == engine::ENGINE {
                engine::ENGINE_VERSION.to_string()
            } else {
                String::new()
            },
            hardware_class: req.coordinates.hardware_class.clone(),
            fingerprint_hash: req.fingerprint_hash.clone(),
            weights_source: req.weights.source(),
            started_at_ms,
            finished_at_ms: 0,
            // Set once the device is open: it names what ran, not what was asked for.
            device: None,
        },
        validation: None,
    }
}

fn emit(out: &mut impl Write, ev: &CellEvent) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, ev)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
