//! Hardware detection: builds this machine's [`Fingerprint`] (`accelbench-agent detect`).
//!
//! Entry points:
//! - [`detect`]: the real machine (`/`, the process environment, NVML, and on macOS
//!   `sysctl` and `system_profiler`).
//! - [`detect_from`]: everything that reads files, from any root folder, so tests feed it
//!   fixture trees (`agent/tests/fixtures/`).
//! - [`render_text`]: the human-readable summary.
//!
//! One file per probe: [`cpu`] (`/proc/cpuinfo`, cpu topology, frequencies, caches),
//! [`system`] (memory, NUMA, OS, hostname), [`nvidia`] (NVML), [`amd`] (amdgpu sysfs),
//! [`intel`] (Intel GPUs and NPUs in sysfs),
//! [`apple`] (macOS command output), [`snapdragon`] (soc0, device tree, QNN SDK).
//! Parsers take text, readers take a root path; only [`detect`] touches the real `/`.
//!
//! Detection must never panic or fail on what the machine says: a missing or garbled file
//! degrades to `None`, `0` or an empty list, and the probe's [`ProbeReport`] says why. It
//! never reads the process environment below [`ProbeEnv::from_process`].

pub mod amd;
pub mod apple;
pub mod cpu;
pub mod intel;
pub mod nvidia;
pub mod snapdragon;
pub mod system;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use shared::fingerprint::{Fingerprint, ProbeReport, ProbeStatus, SoftwareInfo, SCHEMA_VERSION};

/// What detection takes from the process environment, passed in so tests can set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEnv {
    /// Rust's name for the architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// `QNN_SDK_ROOT`, where set.
    pub qnn_sdk_root: Option<PathBuf>,
}

impl ProbeEnv {
    /// The running process's architecture and environment.
    pub fn from_process() -> Self {
        ProbeEnv {
            arch: std::env::consts::ARCH.to_owned(),
            qnn_sdk_root: std::env::var_os("QNN_SDK_ROOT").filter(|value| !value.is_empty()).map(PathBuf::from),
        }
    }
}

/// This machine's fingerprint. Never fails: whatever could not be read is reported in
/// [`Fingerprint::probes`].
pub fn detect() -> Fingerprint {
    let env = ProbeEnv::from_process();
    #[cfg(target_os = "macos")]
    let mut fp = apple::detect_macos(&env);
    #[cfg(not(target_os = "macos"))]
    let mut fp = {
        let mut fp = detect_from(Path::new("/"), &env);
        if fp.memory.total_bytes == 0 {
            cross_check_memory(&mut fp);
        }
        fp
    };
    let (nvidia_gpus, nvml_report) = nvidia::probe();
    // NVIDIA first: the documented probe order.
    fp.gpus.splice(0..0, nvidia_gpus);
    fp.probes.push(nvml_report);
    fp
}

/// Falls back to sysinfo when `/proc/meminfo` could not be read.
#[cfg(not(target_os = "macos"))]
fn cross_check_memory(fp: &mut Fingerprint) {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    if sys.total_memory() > 0 {
        fp.memory.total_bytes = sys.total_memory();
        fp.memory.available_bytes = sys.available_memory();
        fp.probes.push(ProbeReport::found("memory", "total and available memory from sysinfo"));
    }
}

/// A Linux fingerprint from the files under `root` (`/` on the real machine): CPU,
/// memory, NUMA, OS, hostname, AMD and Intel GPUs, Intel NPUs and a Snapdragon SoC. NVML is not file-based and
/// is left to [`detect`].
pub fn detect_from(root: &Path, env: &ProbeEnv) -> Fingerprint {
    let mut probes = Vec::new();

    let cpuinfo_text = read_text(root, "proc/cpuinfo");
    let cpuinfo = cpuinfo_text.as_deref().map(cpu::parse_cpuinfo).unwrap_or_default();
    let (mut cpu, mut cpu_report) = cpu::probe(root, &cpuinfo);
    if let Err(why) = &cpuinfo_text {
        cpu_report.reason = format!("{why}; {}", cpu_report.reason);
    }
    probes.push(cpu_report);

    let (memory, memory_report) = system::memory(root);
    probes.push(memory_report);
    let numa_nodes = system::numa_nodes(root);
    let (mut os, os_report) = system::os(root);
    os.arch = env.arch.clone();
    probes.push(os_report);

    let mut gpus = Vec::new();
    let (amd_gpus, amd_report) = amd::probe(root);
    gpus.extend(amd_gpus);
    probes.push(amd_report);
    let (intel_devices, intel_report) = intel::probe(root);
    gpus.extend(intel_devices);
    probes.push(intel_report);

    let (soc, soc_reports) = snapdragon::probe(root, &cpuinfo, env);
    probes.extend(soc_reports);
    if let Some(soc) = &soc {
        // An Arm SoC's cpuinfo names core designs, not a product: the SoC is the product.
        if cpu::model_is_composed(&cpu) {
            cpu.model_name = snapdragon::cpu_model_name(soc);
        }
        gpus.push(snapdragon::npu_device(soc));
    }

    Fingerprint {
        schema_version: SCHEMA_VERSION,
        hostname: system::hostname(root),
        os,
        cpu,
        memory,
        numa_nodes,
        gpus,
        soc,
        probes,
        software: software(),
    }
}

pub(crate) fn software() -> SoftwareInfo {
    let mut agent_features = Vec::new();
    if cfg!(feature = "cuda") {
        agent_features.push("cuda".to_owned());
    }
    SoftwareInfo { agent_version: env!("CARGO_PKG_VERSION").to_owned(), agent_features }
}

/// `root` joined with a path written relative to `/`.
pub(crate) fn at(root: &Path, relative: &str) -> PathBuf {
    root.join(relative.trim_start_matches('/'))
}

/// A text file under `root`, or why not (lowercase, for a [`ProbeReport`]).
pub(crate) fn read_text(root: &Path, relative: &str) -> Result<String, String> {
    let path = at(root, relative);
    match fs::read(&path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(err) => Err(format!("cannot read {}: {}", path.display(), lower_io(&err))),
    }
}

/// A one-value sysfs file, trimmed of whitespace and NULs; `None` if missing or empty.
pub(crate) fn read_value(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let value = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!value.is_empty()).then(|| value.to_owned())
}

/// The names of the entries of `dir` that start with `prefix` and continue with digits
/// only, with those digits, sorted by number (`cpu0`, `cpu1`, … `cpu10`).
pub(crate) fn numbered_entries(dir: &Path, prefix: &str) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let number = name.to_str()?.strip_prefix(prefix)?;
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((number.parse().ok()?, entry.path()))
        })
        .collect();
    found.sort();
    found
}

fn lower_io(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "not found".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string().to_lowercase(),
    }
}

/// A human-readable summary, one fact per line, for `accelbench-agent detect`.
pub fn render_text(fp: &Fingerprint) -> String {
    let mut out = String::new();
    let cpu = &fp.cpu;
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<10} {value}");
    };
    line("host", fp.hostname.clone());
    line("os", format!("{} {} (kernel {}, {})", fp.os.name, fp.os.version, fp.os.kernel, fp.os.arch));
    let mut cpu_line = format!(
        "{} ({}): {} socket{}, {} cores, {} threads",
        cpu.model_name,
        cpu.vendor,
        cpu.sockets,
        if cpu.sockets == 1 { "" } else { "s" },
        cpu.physical_cores,
        cpu.logical_cores
    );
    match (cpu.base_frequency_mhz, cpu.max_frequency_mhz) {
        (Some(base), Some(max)) => {
            let _ = write!(cpu_line, ", {base}-{max} MHz");
        }
        (Some(mhz), None) | (None, Some(mhz)) => {
            let _ = write!(cpu_line, ", {mhz} MHz");
        }
        (None, None) => {}
    }
    line("cpu", cpu_line);
    if !cpu.microarchitectures.is_empty() {
        line("cores", cpu.microarchitectures.join(", "));
    }
    line("isa", if cpu.isa_flags.is_empty() { "-".to_owned() } else { cpu.isa_flags.join(" ") });
    if !cpu.caches.is_empty() {
        let caches: Vec<String> = cpu
            .caches
            .iter()
            .map(|cache| {
                let kind = match cache.kind {
                    shared::fingerprint::CacheKind::Data => "d",
                    shared::fingerprint::CacheKind::Instruction => "i",
                    shared::fingerprint::CacheKind::Unified => "",
                };
                format!("L{}{kind} {}", cache.level, bytes(cache.size_bytes))
            })
            .collect();
        line("caches", caches.join(", "));
    }
    line(
        "memory",
        format!(
            "{} total, {} available, {} NUMA node{}",
            bytes(fp.memory.total_bytes),
            bytes(fp.memory.available_bytes),
            fp.numa_nodes,
            if fp.numa_nodes == 1 { "" } else { "s" }
        ),
    );
    for gpu in &fp.gpus {
        let mut parts = vec![gpu.backend.as_str().to_owned(), gpu.name.clone()];
        if let Some(memory) = gpu.memory_bytes {
            parts.push(bytes(memory));
        }
        if let Some(cores) = gpu.cores {
            parts.push(format!("{cores} cores"));
        }
        if let Some(cc) = &gpu.compute_capability {
            parts.push(format!("cc {cc}"));
        }
        if let Some(driver) = &gpu.driver_version {
            parts.push(format!("driver {driver}"));
        }
        if let Some(cuda) = &gpu.cuda_driver_version {
            parts.push(format!("cuda {cuda}"));
        }
        if let Some(watts) = gpu.power_limit_watts {
            parts.push(format!("{watts:.0} W"));
        }
        if let Some(pcie) = gpu.pcie {
            parts.push(format!("pcie gen{} x{}", pcie.generation, pcie.width));
        }
        if gpu.mig_mode == Some(true) {
            parts.push("mig".to_owned());
        }
        if let Some(uuid) = &gpu.uuid {
            parts.push(uuid.clone());
        }
        line(&format!("gpu {}", gpu.index), parts.join(", "));
    }
    if let Some(soc) = &fp.soc {
        let mut parts = vec![format!("{} {}", soc.vendor, soc.name())];
        if let Some(family) = &soc.family {
            parts.push(family.clone());
        }
        if let Some(id) = &soc.soc_id {
            parts.push(format!("soc id {id}"));
        }
        if let Some(board) = &soc.board_model {
            parts.push(board.clone());
        }
        parts.push(match &soc.qnn_sdk_root {
            Some(root) => format!("qnn sdk {root}"),
            None => "no qnn sdk".to_owned(),
        });
        line("soc", parts.join(", "));
    }
    for probe in &fp.probes {
        let status = match probe.status {
            ProbeStatus::Found => "found",
            ProbeStatus::Absent => "absent",
            ProbeStatus::Error => "error",
        };
        line("probe", format!("{}: {status}, {}", probe.probe, probe.reason));
    }
    line("classes", fp.hardware_classes().join(", "));
    line("hash", fp.hash());
    out
}

/// Bytes in binary units with one decimal: `48.0 KiB`, `503.5 GiB`.
fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(48 * 1024), "48.0 KiB");
        assert_eq!(bytes(1_310_720), "1.2 MiB");
        assert_eq!(bytes(68_702_699_520), "64.0 GiB");
    }

    #[test]
    fn paths_join_under_root() {
        assert_eq!(at(Path::new("/fixture"), "/proc/cpuinfo"), Path::new("/fixture/proc/cpuinfo"));
        assert_eq!(at(Path::new("/"), "proc/meminfo"), Path::new("/proc/meminfo"));
    }
}
