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

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the [`Fingerprint`] layout; bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// The instruction-set extensions that matter for ML kernels, in Linux `/proc/cpuinfo`
/// spelling (x86 `flags`, arm64 `Features`). Everything else is dropped from
/// [`CpuInfo::isa_flags`].
pub const ML_ISA_FLAGS: &[&str] = &[
    // x86
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    // arm
    "neon",
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
];

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
}

/// The programming interface a device is driven through; the first part of its hardware
/// class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cuda,
    Rocm,
    Metal,
    Qnn,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cuda => "cuda",
            Backend::Rocm => "rocm",
            Backend::Metal => "metal",
            Backend::Qnn => "qnn",
        }
    }
}

/// One GPU or NPU. Every query may fail on its own, so nearly everything is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// Position within its backend (NVML index, DRM card number, …).
    pub index: u32,
    pub vendor: GpuVendor,
    pub backend: Backend,
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
    /// This device's hardware class, `<backend>/<name>` with runs of spaces collapsed
    /// (`cuda/NVIDIA H100 80GB HBM3`); `None` for a device without a name. The one rule
    /// for accelerator classes: the agent's slots and the coordinator's device groups
    /// both come from it.
    pub fn hardware_class(&self) -> Option<String> {
        let name = collapse_spaces(&self.name);
        (!name.is_empty()).then(|| format!("{}/{name}", self.backend.as_str()))
    }
}

impl GpuDevice {
    /// A device with only the facts every probe knows; the rest start empty.
    pub fn new(index: u32, vendor: GpuVendor, backend: Backend, name: impl Into<String>) -> Self {
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
    /// `cpu`, `memory`, `os`, `nvml`, `amdgpu`, `apple`, `snapdragon`, `qnn`.
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

/// The stable part of a fingerprint, serialised to compute [`Fingerprint::hash`]. Field
/// order is the struct's, so the JSON is canonical.
#[derive(Serialize)]
struct Identity<'a> {
    domain: &'static str,
    cpu_vendor: &'a str,
    cpu_model: String,
    sockets: u32,
    physical_cores: u32,
    logical_cores: u32,
    isa_flags: Vec<&'a str>,
    memory_gib: u64,
    numa_nodes: u32,
    gpus: Vec<GpuIdentity<'a>>,
    soc: Option<(&'a Option<String>, &'a Option<String>)>,
    os_name: &'a str,
    os_version: &'a str,
    kernel: &'a str,
    arch: &'a str,
}

#[derive(Serialize)]
struct GpuIdentity<'a> {
    backend: &'static str,
    name: &'a str,
    uuid: &'a Option<String>,
    memory_mib: Option<u64>,
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

impl Fingerprint {
    /// One hardware class per distinct kind of device, CPU first, then accelerators in
    /// probe order: `cpu/Intel Xeon Platinum 8380`, `cuda/NVIDIA H100 80GB HBM3`,
    /// `rocm/AMD Instinct MI210`, `metal/Apple M2 Max`, `qnn/SM8550`.
    pub fn hardware_classes(&self) -> Vec<String> {
        let mut classes = Vec::new();
        let cpu = normalize_cpu_model(&self.cpu.model_name);
        if !cpu.is_empty() {
            classes.push(format!("cpu/{cpu}"));
        }
        for class in self.gpus.iter().filter_map(GpuDevice::hardware_class) {
            if !classes.contains(&class) {
                classes.push(class);
            }
        }
        classes
    }

    /// A stable SHA-256 (lowercase hex) of the machine's identity.
    ///
    /// It covers only facts that stay put while the machine does: CPU vendor, normalised
    /// model, sockets, physical and logical cores, ISA flags; total memory rounded to the
    /// nearest GiB; NUMA nodes; each accelerator's backend, name, UUID and memory rounded
    /// to the nearest MiB (sorted, so probe order does not matter); the SoC's machine and
    /// soc id; OS name, version, kernel and architecture.
    ///
    /// It leaves out what drifts or is configured: hostname, available memory,
    /// frequencies, caches, driver versions, power limits, PCIe link state, MIG mode,
    /// probe reports, the QNN SDK path and the agent's own version. A kernel or OS
    /// upgrade therefore changes the hash; a reboot or a rename does not.
    pub fn hash(&self) -> String {
        let mut isa_flags: Vec<&str> = self.cpu.isa_flags.iter().map(String::as_str).collect();
        isa_flags.sort_unstable();
        isa_flags.dedup();
        let mut gpus: Vec<GpuIdentity<'_>> = self
            .gpus
            .iter()
            .map(|gpu| GpuIdentity {
                backend: gpu.backend.as_str(),
                name: &gpu.name,
                uuid: &gpu.uuid,
                memory_mib: gpu.memory_bytes.map(|bytes| round_to(bytes, MIB)),
            })
            .collect();
        gpus.sort_by(|a, b| (a.backend, a.name, a.uuid, a.memory_mib).cmp(&(b.backend, b.name, b.uuid, b.memory_mib)));
        let identity = Identity {
            domain: "accelbench-fingerprint-identity-v1",
            cpu_vendor: &self.cpu.vendor,
            cpu_model: normalize_cpu_model(&self.cpu.model_name),
            sockets: self.cpu.sockets,
            physical_cores: self.cpu.physical_cores,
            logical_cores: self.cpu.logical_cores,
            isa_flags,
            memory_gib: round_to(self.memory.total_bytes, GIB),
            numa_nodes: self.numa_nodes,
            gpus,
            soc: self.soc.as_ref().map(|soc| (&soc.machine, &soc.soc_id)),
            os_name: &self.os.name,
            os_version: &self.os.version,
            kernel: &self.os.kernel,
            arch: &self.os.arch,
        };
        // Serialising plain structs of strings and integers cannot fail; fall back to the
        // debug form rather than panic should that ever change.
        let canonical =
            serde_json::to_vec(&identity).unwrap_or_else(|err| format!("unserialisable identity: {err}").into_bytes());
        hex::encode(Sha256::digest(&canonical))
    }
}

/// `value / unit`, rounded to the nearest whole unit.
fn round_to(value: u64, unit: u64) -> u64 {
    value / unit + u64::from(value % unit >= unit / 2)
}

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The CPU model as used in hardware classes: trademarks (`(R)`, `(TM)`), the words `CPU`
/// and `Processor`, core-count words (`16-Core`) and clock suffixes (`@ 2.30GHz`) removed,
/// spaces collapsed. `Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz` becomes
/// `Intel Xeon Platinum 8380`; `AMD EPYC 7313P 16-Core Processor` becomes `AMD EPYC 7313P`.
pub fn normalize_cpu_model(model: &str) -> String {
    let mut text = model.to_owned();
    for mark in ["(R)", "(r)", "(TM)", "(tm)", "(C)", "®", "™"] {
        text = text.replace(mark, " ");
    }
    // Everything from an `@` on is the clock speed.
    if let Some(at) = text.find('@') {
        text.truncate(at);
    }
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|word| {
            let lower = word.to_ascii_lowercase();
            !(lower == "cpu" || lower == "processor" || is_core_count_word(&lower))
        })
        .collect();
    words.join(" ")
}

/// `16-core`, `8-core`, `dual-core`, `quad-core`, `six-core`.
fn is_core_count_word(lower: &str) -> bool {
    match lower.strip_suffix("-core") {
        Some(count) => {
            count.chars().all(|c| c.is_ascii_digit()) && !count.is_empty()
                || matches!(count, "dual" | "quad" | "six" | "eight" | "twelve")
        }
        None => false,
    }
}

/// Keeps the ML-relevant flags of a `/proc/cpuinfo` flags or Features line, sorted and
/// without duplicates.
pub fn ml_isa_flags<'a>(flags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut kept: Vec<String> =
        flags.into_iter().filter(|flag| ML_ISA_FLAGS.contains(flag)).map(str::to_owned).collect();
    kept.sort_unstable();
    kept.dedup();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn xeon() -> Fingerprint {
        Fingerprint {
            schema_version: SCHEMA_VERSION,
            hostname: "node-a".into(),
            os: OsInfo {
                name: "Ubuntu".into(),
                version: "22.04".into(),
                kernel: "5.15.0-91-generic".into(),
                arch: "x86_64".into(),
            },
            cpu: CpuInfo {
                vendor: "GenuineIntel".into(),
                model_name: "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz".into(),
                microarchitectures: vec![],
                sockets: 2,
                physical_cores: 80,
                logical_cores: 160,
                base_frequency_mhz: Some(2300),
                max_frequency_mhz: Some(3400),
                isa_flags: ml_isa_flags(["avx512f", "avx2", "sse2", "avx"]),
                caches: vec![Cache { level: 1, kind: CacheKind::Data, size_bytes: 48 * 1024 }],
            },
            memory: MemoryInfo { total_bytes: 540_700_000_000, available_bytes: 500_000_000_000 },
            numa_nodes: 2,
            gpus: vec![h100(0, "GPU-aaaa"), h100(1, "GPU-bbbb")],
            soc: None,
            probes: vec![ProbeReport::found("nvml", "found 2 devices")],
            software: SoftwareInfo { agent_version: "0.1.0".into(), agent_features: vec![] },
        }
    }

    fn h100(index: u32, uuid: &str) -> GpuDevice {
        let mut gpu = GpuDevice::new(index, GpuVendor::Nvidia, Backend::Cuda, "NVIDIA H100 80GB HBM3");
        gpu.uuid = Some(uuid.into());
        gpu.memory_bytes = Some(85_520_809_984);
        gpu.compute_capability = Some("9.0".into());
        gpu
    }

    fn check_model(input: &str, expected: expect_test::Expect) {
        expected.assert_eq(&normalize_cpu_model(input));
    }

    #[test]
    fn cpu_models_normalise() {
        check_model("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", expect!["Intel Xeon Platinum 8380"]);
        check_model("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", expect!["Intel Xeon E5-2690 v4"]);
        check_model("AMD EPYC 7313P 16-Core Processor", expect!["AMD EPYC 7313P"]);
        check_model("  AMD   EPYC 7B13 ", expect!["AMD EPYC 7B13"]);
        check_model("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", expect!["Intel Core i7-8700"]);
        check_model("11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", expect!["11th Gen Intel Core i7-1165G7"]);
        check_model("Apple M2 Max", expect!["Apple M2 Max"]);
        check_model("", expect![""]);
    }

    #[test]
    fn isa_flags_keep_only_ml_ones_sorted() {
        let flags = ml_isa_flags("fpu sse2 avx2 avx avx512_vnni fma avx2 amx_tile".split(' '));
        assert_eq!(flags, ["amx_tile", "avx", "avx2", "avx512_vnni", "fma"]);
        let arm = ml_isa_flags("fp asimd evtstrm aes asimddp i8mm bf16 sve2".split(' '));
        assert_eq!(arm, ["asimd", "asimddp", "bf16", "i8mm", "sve2"]);
    }

    #[test]
    fn hardware_classes_one_per_device_kind() {
        let mut fp = xeon();
        let mut mi210 = GpuDevice::new(0, GpuVendor::Amd, Backend::Rocm, "AMD  Instinct MI210");
        mi210.memory_bytes = Some(68_702_699_520);
        fp.gpus.push(mi210);
        assert_eq!(
            fp.hardware_classes(),
            ["cpu/Intel Xeon Platinum 8380", "cuda/NVIDIA H100 80GB HBM3", "rocm/AMD Instinct MI210"]
        );
    }

    #[test]
    fn hash_ignores_volatile_facts() {
        let a = xeon();
        let mut b = xeon();
        b.memory.available_bytes = 12;
        b.memory.total_bytes += 100 * 1024 * 1024; // reserved memory moves a little
        b.hostname = "renamed".into();
        b.cpu.max_frequency_mhz = None;
        b.gpus.reverse();
        b.gpus[0].power_limit_watts = Some(350.0);
        b.gpus[1].driver_version = Some("550.54.15".into());
        b.probes.clear();
        b.software.agent_version = "9.9.9".into();
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 64);
        assert!(a.hash().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn hash_follows_identity() {
        let base = xeon().hash();
        let mut other_gpu = xeon();
        other_gpu.gpus[1].name = "NVIDIA A100-SXM4-80GB".into();
        assert_ne!(base, other_gpu.hash());
        let mut swapped_card = xeon();
        swapped_card.gpus[1].uuid = Some("GPU-cccc".into());
        assert_ne!(base, swapped_card.hash());
        let mut more_memory = xeon();
        more_memory.memory.total_bytes *= 2;
        assert_ne!(base, more_memory.hash());
        let mut new_kernel = xeon();
        new_kernel.os.kernel = "6.8.0-45-generic".into();
        assert_ne!(base, new_kernel.hash());
        let mut amx = xeon();
        amx.cpu.isa_flags.push("amx_tile".into());
        assert_ne!(base, amx.hash());
    }

    #[test]
    fn hash_is_pinned() {
        // The hash is stored by coordinators: it must not move between releases unless
        // SCHEMA_VERSION does.
        expect!["e200a7b64c79547dc5d26d319913b67c5239d21ef8d6c04cad8affaac073bc14"].assert_eq(&xeon().hash());
    }

    #[test]
    fn serde_round_trip() {
        let fp = xeon();
        let json = serde_json::to_string(&fp).expect("serialise");
        assert!(json.contains(r#""backend":"cuda""#));
        assert!(json.contains(r#""vendor":"nvidia""#));
        let back: Fingerprint = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, fp);
    }

    #[test]
    fn soc_name_falls_back_to_soc_id() {
        let mut soc = SocInfo {
            vendor: "Qualcomm".into(),
            machine: Some("SM8550".into()),
            soc_id: Some("519".into()),
            ..SocInfo::default()
        };
        assert_eq!(soc.name(), "SM8550");
        soc.machine = None;
        assert_eq!(soc.name(), "Qualcomm soc 519");
    }

    #[test]
    fn rounding_is_to_nearest() {
        assert_eq!(round_to(GIB + GIB / 2, GIB), 2);
        assert_eq!(round_to(GIB + GIB / 2 - 1, GIB), 1);
        assert_eq!(round_to(0, GIB), 0);
    }
}
