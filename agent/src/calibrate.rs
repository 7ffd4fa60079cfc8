//! Calibration micro-benchmarks ([`shared::calibration`]): a GEMM per float precision and
//! a memory copy, on each device this agent runs cells on.
//!
//! Each device is calibrated in a child process (`exec-calibration`), as cells are: a
//! CUDA context opened here would stay in the agent for its whole life, and a crash in a
//! kernel must not take the agent down. The agent calibrates when it starts and keeps
//! the figures in its spool folder (`calibrations.json`) until its fingerprint or
//! version changes, so a restart costs nothing; `--recalibrate` measures again.
//!
//! Method: one untimed repetition, then repetitions until [`BUDGET`] has passed (at
//! least [`MIN_REPS`], at most [`MAX_REPS`]); the rate is taken at the median time. The
//! device is synchronised after each repetition, so a GPU's queue is timed, not its
//! launch. Sizes are fixed per device kind so figures of one class are comparable. The
//! copy is the engine's own device-to-device copy into a buffer allocated beforehand (on
//! a CPU, one stream: what one cell's tensor copies see, not the socket's peak).
//!
//! Must never: report a figure from another device than the one named, or a rate that
//! did not come from a timed run (a failed kind is left out, not filled in).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use shared::calibration::{Calibration, CalibrationKind};
use shared::catalog::Precision;
use shared::fingerprint::Fingerprint;

use crate::cell::{child, runner};
use crate::engine;
use crate::slots::Slots;

/// Timed repetitions stop once this much time has passed...
const BUDGET: Duration = Duration::from_millis(250);
/// ...but never before this many...
const MIN_REPS: usize = 3;
/// ...and never after this many.
const MAX_REPS: usize = 50;
/// The longest a device's calibration child may run before it is killed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// The precisions a GEMM is measured at: the float formats cells run in.
const GEMM_PRECISIONS: [Precision; 3] = [Precision::Fp32, Precision::Bf16, Precision::Fp16];
/// The cache file in the spool folder.
const CACHE_FILE: &str = "calibrations.json";

/// Matrix side and copy size for a device: big enough to reach the device's steady
/// rate, small enough to take well under a second on a laptop CPU.
fn sizes(device: &str) -> (usize, usize) {
    if device == "cpu" {
        (512, 64 << 20)
    } else {
        (4096, 512 << 20)
    }
}

/// Measures every kind on `device` in this process (the `exec-calibration` side).
/// Kinds the device cannot run (bf16 on a GPU without it) are left out with a warning.
pub fn measure_device(device_name: &str, hardware_class: &str) -> anyhow::Result<Vec<Calibration>> {
    let device = child::open(device_name)?;
    let (n, copy_bytes) = sizes(device_name);
    let mut out = Vec::new();
    for precision in GEMM_PRECISIONS {
        match time_gemm(&device, n, precision) {
            Ok(t) => out.push(figure(device_name, hardware_class, CalibrationKind::Gemm, precision, n as u64, t)),
            Err(e) => tracing::warn!(device = device_name, %precision, error = %e, "GEMM calibration failed"),
        }
    }
    let t = time_copy(&device, copy_bytes).context("memory copy calibration")?;
    out.push(figure(device_name, hardware_class, CalibrationKind::Copy, Precision::Fp32, copy_bytes as u64, t));
    Ok(out)
}

/// Repetition times of one kind, and what one repetition does.
struct Timed {
    median_seconds: f64,
    n_samples: usize,
    /// FLOPs (GEMM) or bytes moved (copy) per repetition.
    work: f64,
}

fn figure(device: &str, class: &str, kind: CalibrationKind, precision: Precision, size: u64, t: Timed) -> Calibration {
    Calibration {
        device: device.to_string(),
        hardware_class: class.to_string(),
        kind,
        precision,
        size,
        rate: t.work / t.median_seconds,
        n_samples: u32::try_from(t.n_samples).unwrap_or(u32::MAX),
        median_seconds: t.median_seconds,
        engine: engine::ENGINE.to_string(),
        engine_version: engine::ENGINE_VERSION.to_string(),
        measured_at_ms: child::now_ms(),
    }
}

fn time_gemm(device: &Device, n: usize, precision: Precision) -> anyhow::Result<Timed> {
    let dtype = engine::dtype(precision);
    // Values in [-1, 1) keep every precision finite; the timing does not depend on them.
    let a = Tensor::rand(-1f32, 1f32, (n, n), device)?.to_dtype(dtype)?;
    let b = Tensor::rand(-1f32, 1f32, (n, n), device)?.to_dtype(dtype)?;
    let (median_seconds, n_samples) = median_time(device, || {
        a.matmul(&b)?;
        Ok(())
    })?;
    Ok(Timed { median_seconds, n_samples, work: 2.0 * (n as f64).powi(3) })
}

fn time_copy(device: &Device, bytes: usize) -> anyhow::Result<Timed> {
    // Into a buffer allocated (and touched) once: a fresh one each time would time the
    // allocator and first-touch page faults, not the memory.
    let src = Tensor::ones(bytes / 4, DType::F32, device)?;
    let dst = Tensor::zeros(bytes / 4, DType::F32, device)?;
    let (median_seconds, n_samples) = median_time(device, || Ok(dst.slice_set(&src, 0, 0)?))?;
    // A copy reads every byte once and writes it once.
    Ok(Timed { median_seconds, n_samples, work: 2.0 * bytes as f64 })
}

/// Median wall time of `rep` (after one untimed run) and how many runs it is over.
fn median_time(device: &Device, mut rep: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<(f64, usize)> {
    rep()?;
    device.synchronize()?;
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < MIN_REPS || (times.len() < MAX_REPS && started.elapsed() < BUDGET) {
        let t = Instant::now();
        rep()?;
        device.synchronize()?;
        times.push(t.elapsed().as_secs_f64());
    }
    let median = shared::stats::percentile(&times, 0.5).unwrap_or(0.0);
    anyhow::ensure!(median > 0.0, "the clock did not advance over a repetition");
    Ok((median, times.len()))
}

/// `exec-calibration`: measures `device` and writes the calibrations as one JSON array.
pub fn exec_calibration(device: &str, hardware_class: &str, mut out: impl Write) -> anyhow::Result<()> {
    let found = measure_device(device, hardware_class)?;
    serde_json::to_writer(&mut out, &found)?;
    writeln!(out)?;
    Ok(())
}

/// Calibrates every device slot of this machine, each in a child process of `exe`.
/// A device whose child fails is left out with a warning: the agent still works, and
/// predictions for its class say that no calibration exists.
pub fn calibrate_all(exe: &Path, fp: &Fingerprint) -> Vec<Calibration> {
    let mut out = Vec::new();
    // Calibration runs the built-in engine: devices only runners drive have none.
    let built_in = |slot: &&crate::slots::Slot| {
        let kind = shared::hardware::HardwareClass::split(&slot.class).0;
        kind.parse().is_ok_and(crate::placement::built_in_drives)
    };
    for slot in Slots::of(fp).all().filter(built_in) {
        match calibrate_device(exe, &slot.device, &slot.class) {
            Ok(found) => out.extend(found),
            Err(e) => tracing::warn!(device = slot.device, error = %format!("{e:#}"), "calibration failed"),
        }
    }
    out
}

/// Calibrates one device (`cpu`, `cuda:N`) of hardware class `class` in a child process
/// of `exe` (its `exec-calibration` subcommand), checking every figure it answers.
pub fn calibrate_device(exe: &Path, device: &str, class: &str) -> anyhow::Result<Vec<Calibration>> {
    let mut command = Command::new(exe);
    runner::pin_device(&mut command, device);
    runner::die_with_parent(&mut command);
    let mut child = command
        .args(["exec-calibration", "--device", device, "--class", class])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} exec-calibration", exe.display()))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let reader = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).last());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("calibrating {device} took longer than {} s", CHILD_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let line = reader.join().map_err(|_| anyhow::anyhow!("reading the calibration child failed"))?;
    anyhow::ensure!(status.success(), "calibrating {device}: the child exited with {status}");
    let found: Vec<Calibration> =
        serde_json::from_str(line.as_deref().unwrap_or("")).context("reading the calibration child's answer")?;
    for c in &found {
        c.check().map_err(|e| anyhow::anyhow!(e))?;
        anyhow::ensure!(c.device == device, "asked to calibrate {device}, got a figure for {}", c.device);
    }
    Ok(found)
}

/// A calibration's rate as people read it: `78.6 GFLOP/s`, `11.4 GB/s`.
pub fn human_rate(c: &Calibration) -> String {
    let unit = match c.kind {
        CalibrationKind::Gemm => "GFLOP/s",
        CalibrationKind::Copy => "GB/s",
    };
    format!("{:.1} {unit}", c.rate / 1e9)
}

/// Prints calibrations as a table (rates in GFLOP/s and GB/s) or as JSON lines.
pub fn print(out: &mut impl Write, found: &[Calibration], json: bool) -> anyhow::Result<()> {
    if json {
        for c in found {
            writeln!(out, "{}", serde_json::to_string(c)?)?;
        }
        return Ok(());
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(["device", "hardware class", "kind", "precision", "size", "rate", "median", "samples"]);
    for c in found {
        let size = match c.kind {
            CalibrationKind::Gemm => format!("n={}", c.size),
            CalibrationKind::Copy => format!("{} MiB", c.size >> 20),
        };
        let rate = human_rate(c);
        t.add_row(vec![
            c.device.clone(),
            c.hardware_class.clone(),
            c.kind.to_string(),
            c.precision.to_string(),
            size,
            rate,
            format!("{:.2} ms", c.median_seconds * 1e3),
            c.n_samples.to_string(),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(())
}

/// What is kept beside the spool: the calibrations and what they were measured as.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    fingerprint_hash: String,
    agent_version: String,
    calibrations: Vec<Calibration>,
}

/// This machine's calibrations: from `dir`'s cache when it was made by this version on
/// this fingerprint (and `fresh` is false), else measured now and cached.
pub fn load_or_measure(dir: &Path, exe: &Path, fp: &Fingerprint, fresh: bool) -> Vec<Calibration> {
    let path = dir.join(CACHE_FILE);
    let hash = fp.hash();
    if !fresh {
        if let Some(cached) =
            read_cache(&path).filter(|c| c.fingerprint_hash == hash && c.agent_version == crate::LONG_VERSION)
        {
            return cached.calibrations;
        }
    }
    let calibrations = calibrate_all(exe, fp);
    if !calibrations.is_empty() {
        let cached = Cached { fingerprint_hash: hash, agent_version: crate::LONG_VERSION.into(), calibrations };
        if let Err(e) = write_cache(&path, &cached) {
            tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "could not keep the calibrations");
        }
        return cached.calibrations;
    }
    calibrations
}

/// Whether `dir` holds calibrations this agent version measured on this machine (what
/// [`load_or_measure`] reuses).
pub fn cached_for(dir: &Path, fp: &Fingerprint) -> bool {
    read_cache(&dir.join(CACHE_FILE))
        .is_some_and(|c| c.fingerprint_hash == fp.hash() && c.agent_version == crate::LONG_VERSION)
}

/// A cache that cannot be read or parsed is measured again, never trusted.
fn read_cache(path: &Path) -> Option<Cached> {
    let text = std::fs::read_to_string(path).ok()?;
    let cached: Cached = serde_json::from_str(&text).ok()?;
    cached.calibrations.iter().all(|c| c.check().is_ok()).then_some(cached)
}

fn write_cache(path: &Path, cached: &Cached) -> anyhow::Result<()> {
    let tmp: PathBuf = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(cached)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_gemm_and_copy_measure_positive_rates_with_their_sizes() {
        let found = measure_device("cpu", "cpu/Test CPU").expect("test value");
        let kinds: Vec<_> = found.iter().map(|c| (c.kind, c.precision)).collect();
        assert!(kinds.contains(&(CalibrationKind::Gemm, Precision::Fp32)), "{kinds:?}");
        assert!(kinds.contains(&(CalibrationKind::Copy, Precision::Fp32)), "{kinds:?}");
        for c in &found {
            assert_eq!(c.check(), Ok(()), "{c:?}");
            assert!(c.n_samples as usize >= MIN_REPS);
            assert_eq!(c.device, "cpu");
        }
        let gemm = found.iter().find(|c| c.kind == CalibrationKind::Gemm).expect("test value");
        // The rate is the work over the median time, by definition.
        let work = 2.0 * (gemm.size as f64).powi(3);
        assert!((gemm.rate * gemm.median_seconds / work - 1.0).abs() < 1e-9);
    }

    #[test]
    fn an_unknown_device_is_an_error_not_a_cpu_figure() {
        assert!(measure_device("metal:0", "metal/Apple M3").is_err());
    }

    #[test]
    fn a_corrupt_or_foreign_cache_is_not_trusted() {
        let dir = tempfile::tempdir().expect("test value");
        let path = dir.path().join(CACHE_FILE);
        std::fs::write(&path, "{ not json").expect("test value");
        assert!(read_cache(&path).is_none());
        let mut c = measure_device("cpu", "cpu/Test CPU").expect("test value");
        c[0].rate = -1.0;
        let cached = Cached { fingerprint_hash: "h".into(), agent_version: "v".into(), calibrations: c };
        write_cache(&path, &cached).expect("test value");
        assert!(read_cache(&path).is_none(), "a negative rate in the cache is measured again");
    }
}
