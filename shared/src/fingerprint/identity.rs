//! The identity hash of a fingerprint: a SHA-256 over the facts that stay put while
//! the machine does.
//!
//! Must never: change for a given machine between releases unless
//! [`SCHEMA_VERSION`](super::SCHEMA_VERSION) does (coordinators store it).

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{normalize_cpu_model, Fingerprint};

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

pub(super) const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

impl Fingerprint {
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
pub(super) fn round_to(value: u64, unit: u64) -> u64 {
    value / unit + u64::from(value % unit >= unit / 2)
}
