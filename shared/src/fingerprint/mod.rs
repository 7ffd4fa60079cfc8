//! What an agent knows about its machine (its fingerprint), its hardware classes and its
//! identity hash.
//!
//! [`Fingerprint`] is a declared wire and stored format: agents send it when they register
//! and the coordinator stores it. Fields are only ever added (with `#[serde(default)]`);
//! changing the meaning of one needs a new [`SCHEMA_VERSION`].
//!
//! Conventions:
//! - A fact every machine has (core counts, total memory) is a plain number; `0` means the
//!   probe could not read it, and that probe's [`ProbeReport`] says why.
//! - A fact some machines lack (a frequency, a GPU's UUID) is an `Option`.
//! - Each probe (CPU, memory, NVML, AMD sysfs, Apple, Snapdragon, …) leaves one
//!   [`ProbeReport`], found or not, so "no GPU" and "could not look" are told apart.
//!
//! This module must never do I/O: the agent's `detect` module reads the machine and fills
//! these types in; everything here is pure computation over them.
//!
//! Layout: this file holds the types; `cpu.rs` CPU model names and ISA flags;
//! `class.rs` the hardware classes a fingerprint offers; `identity.rs` its identity
//! hash; `bounds.rs` the size bounds the coordinator checks before storing one.

use serde::{Deserialize, Serialize};

use crate::hardware::HardwareKind;

mod bounds;
mod class;
mod cpu;
mod identity;
#[cfg(test)]
mod tests;

pub use bounds::{MAX_GPUS, MAX_LIST_LEN, MAX_STRING_BYTES};
pub use cpu::{ml_isa_flags, normalize_cpu_model, ML_ISA_FLAGS};

/// Version of the [`Fingerprint`] layout; bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything an agent knows about its machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub schema_version: u32,
    pub hostname: String,
    pub os: OsInfo,
    pub cpu: CpuInfo,
    pub memory: MemoryInfo,
    /// NUMA nodes; 1 where the machine reports none.
    pub numa_nodes: u32,
    /// GPUs and other accelerators, in probe order (NVIDIA, AMD, Apple, Qualcomm).
    #[serde(default)]
    pub gpus: Vec<GpuDevice>,
    /// The system on chip, where the machine is one (Snapdragon boards).
    #[serde(default)]
    pub soc: Option<SocInfo>,
    /// One report per probe, found or not.
    #[serde(default)]
    pub probes: Vec<ProbeReport>,
    pub software: SoftwareInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `NAME` from os-release (`Ubuntu`, `Debian GNU/Linux`), or `macOS`.
    pub name: String,
    /// `VERSION_ID` from os-release (`22.04`), or the macOS product version.
    pub version: String,
    /// Kernel release (`6.8.0-45-generic`, `Darwin 23.2.0`).
    pub kernel: String,
    /// Rust's spelling of the architecture: `x86_64`, `aarch64`.
    pub arch: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// `GenuineIntel`, `AuthenticAMD`, `ARM`, `Qualcomm`, `Apple`.
    pub vendor: String,
    /// As the machine names it (`Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz`); see
    /// [`normalize_cpu_model`] for the form used in hardware classes.
    pub model_name: String,
    /// Distinct core micro-architectures, in the order the machine lists them
    /// (`Cortex-A510`, `Cortex-X3`); empty where the model name says it all (x86).
    #[serde(default)]
    pub microarchitectures: Vec<String>,
    pub sockets: u32,
    pub physical_cores: u32,
    pub logical_cores: u32,
    pub base_frequency_mhz: Option<u32>,
    pub max_frequency_mhz: Option<u32>,
    /// The ML-relevant extensions present, sorted; see [`ML_ISA_FLAGS`].
    #[serde(default)]
    pub isa_flags: Vec<String>,
    /// The caches seen by one core (cpu0), smallest level first.
    #[serde(default)]
    pub caches: Vec<Cache>,
    /// The most threads the agent lets a cell use (`accelbench-agent run --cpu-threads`);
    /// `None` for all of them. Part of the CPU's hardware class (a CPU limited to 2
    /// threads is another machine for a benchmark), not of the fingerprint hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    pub level: u8,
    pub kind: CacheKind,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    Data,
    Instruction,
    Unified,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    pub total_bytes: u64,
    /// Volatile: never part of [`Fingerprint::hash`].
    pub available_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuVendor {
    Nvidia,
    Amd,
    Apple,
    Qualcomm,
    Intel,
}

/// One GPU or NPU. Every query may fail on its own, so nearly everything is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// Position within its backend (NVML index, DRM card number, …).
    pub index: u32,
    pub vendor: GpuVendor,
    /// The programming interface the device is driven through (`cuda`, `rocm`, `metal`,
    /// `qnn`, `xpu`, `npu`): the kind part of its hardware class. Never `cpu`, which reading refuses.
    #[serde(deserialize_with = "accelerator_kind")]
    pub backend: HardwareKind,
    /// Marketing name: `NVIDIA H100 80GB HBM3`, `AMD Instinct MI210`, `Apple M2 Max`,
    /// `SM8550`.
    pub name: String,
    #[serde(default)]
    pub uuid: Option<String>,
    /// Device memory; for unified-memory chips (Apple) the machine's memory.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// `9.0` for CUDA devices.
    #[serde(default)]
    pub compute_capability: Option<String>,
    #[serde(default)]
    pub driver_version: Option<String>,
    /// The CUDA version the driver supports, `12.4`.
    #[serde(default)]
    pub cuda_driver_version: Option<String>,
    #[serde(default)]
    pub power_limit_watts: Option<f64>,
    #[serde(default)]
    pub pcie: Option<PcieLink>,
    #[serde(default)]
    pub mig_mode: Option<bool>,
    /// GPU cores where the vendor counts them (Apple).
    #[serde(default)]
    pub cores: Option<u32>,
}

impl GpuDevice {
    /// A device with only the facts every probe knows; the rest start empty.
    pub fn new(index: u32, vendor: GpuVendor, backend: HardwareKind, name: impl Into<String>) -> Self {
        GpuDevice {
            index,
            vendor,
            backend,
            name: name.into(),
            uuid: None,
            memory_bytes: None,
            compute_capability: None,
            driver_version: None,
            cuda_driver_version: None,
            power_limit_watts: None,
            pcie: None,
            mig_mode: None,
            cores: None,
        }
    }
}

/// The kinds a device's backend may be: every [`HardwareKind`] but `cpu`.
const ACCELERATOR_KINDS: &[&str] = &["cuda", "rocm", "metal", "qnn", "xpu", "npu"];

/// Reads a device's backend, refusing `cpu` with the error any other unknown name gets.
fn accelerator_kind<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<HardwareKind, D::Error> {
    let name = String::deserialize(deserializer)?;
    match name.parse::<HardwareKind>() {
        Ok(kind) if kind != HardwareKind::Cpu => Ok(kind),
        _ => Err(serde::de::Error::unknown_variant(&name, ACCELERATOR_KINDS)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcieLink {
    pub generation: u32,
    pub width: u32,
}

/// A system on chip as Linux describes it in `/sys/devices/soc0` and the device tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocInfo {
    /// `Qualcomm`, from the CPU implementer or the device-tree model.
    pub vendor: String,
    /// soc0 `machine`: `SM8550`.
    pub machine: Option<String>,
    /// soc0 `family`: `Snapdragon`.
    pub family: Option<String>,
    /// soc0 `soc_id`: `519`.
    pub soc_id: Option<String>,
    /// soc0 `revision`: `2.0`.
    pub revision: Option<String>,
    /// The board, from `/proc/device-tree/model`.
    pub board_model: Option<String>,
    /// Where the Qualcomm AI Engine Direct (QNN) SDK is, when `QNN_SDK_ROOT` names a
    /// folder that exists.
    pub qnn_sdk_root: Option<String>,
}

impl SocInfo {
    /// The name used in the `qnn/` hardware class: the soc0 machine, else the soc id.
    pub fn name(&self) -> String {
        match (&self.machine, &self.soc_id) {
            (Some(machine), _) => machine.clone(),
            (None, Some(id)) => format!("{} soc {id}", self.vendor),
            (None, None) => format!("{} soc", self.vendor),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeStatus {
    /// The probe ran and found what it looks for.
    Found,
    /// The probe ran and the thing is not on this machine (no driver, no such file).
    Absent,
    /// The probe could not tell: a file was unreadable or garbled, a library call failed.
    Error,
}

/// What one probe found, or why it found nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// `cpu`, `memory`, `os`, `nvml`, `amdgpu`, `intel`, `apple`, `snapdragon`, `qnn`.
    pub probe: String,
    pub status: ProbeStatus,
    /// Lowercase, no closing full stop: `found 2 devices`, `libnvidia-ml.so not found`.
    pub reason: String,
}

impl ProbeReport {
    pub fn new(probe: &str, status: ProbeStatus, reason: impl Into<String>) -> Self {
        ProbeReport { probe: probe.to_owned(), status, reason: reason.into() }
    }
    pub fn found(probe: &str, reason: impl Into<String>) -> Self {
        Self::new(probe, ProbeStatus::Found, reason)
    }
    pub fn absent(probe: &str, reason: impl Into<String>) -> Self {
        Self::new(probe, ProbeStatus::Absent, reason)
    }
    pub fn error(probe: &str, reason: impl Into<String>) -> Self {
        Self::new(probe, ProbeStatus::Error, reason)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareInfo {
    pub agent_version: String,
    /// Cargo features the agent was built with (`cuda`).
    #[serde(default)]
    pub agent_features: Vec<String>,
}
