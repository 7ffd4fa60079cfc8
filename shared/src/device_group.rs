//! Device groups: the identical devices of one hardware class on one agent, as the
//! coordinator plans with them. [`device_groups`] is the one rule that turns a
//! fingerprint into groups (one CPU group, one group per accelerator class with a slot
//! per device), and [`DeviceGroup::can_run`] the one rule of which cells a group runs.
//!
//! [`DeviceGroup`] is a stored format: the coordinator keeps agents' groups in its
//! replicated state (Raft log and snapshots), so its serde shape only grows by fields
//! with a default that old entries read as (`engines`: the built-in engine only, and a
//! group with only that writes no `engines`, as before the field existed).
//!
//! Must never: do I/O, or give a group a class its fingerprint does not list.

use serde::{Deserialize, Serialize};

use crate::cell::Cell;
use crate::fingerprint::Fingerprint;
use crate::hardware::{HardwareClass, HardwareKind};
use crate::spec::Engine;

/// Identical devices of one hardware class on one agent: how many cells of that class it
/// runs at once, and the least memory among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGroup {
    /// e.g. `cuda/NVIDIA H100 80GB HBM3` or `cpu/AMD EPYC 7B13`. A string, not a
    /// [`HardwareClass`]: groups stored before classes were checked must still read.
    pub class: String,
    /// Device memory (host memory for the CPU group); `None` when unknown.
    pub memory_bytes: Option<u64>,
    /// Cells that may run at once; one per device unless the agent says otherwise.
    pub slots: u32,
    /// The engines that run on these devices: the built-in one, and each engine whose
    /// runner named a device of this group in its hello (docs/RUNNERS.md).
    #[serde(default = "built_in_only", skip_serializing_if = "is_built_in_only")]
    pub engines: Vec<Engine>,
}

fn built_in_only() -> Vec<Engine> {
    vec![Engine::Candle]
}

fn is_built_in_only(engines: &Vec<Engine>) -> bool {
    *engines == built_in_only()
}

impl DeviceGroup {
    /// A group that runs the built-in engine only.
    pub fn new(class: String, memory_bytes: Option<u64>, slots: u32) -> DeviceGroup {
        DeviceGroup { class, memory_bytes, slots, engines: built_in_only() }
    }

    /// The part of the class before the `/`: `cuda`, `cpu`, …
    pub fn kind(&self) -> &str {
        HardwareClass::split(&self.class).0
    }

    /// Whether this group can run `cell`: a resolved cell needs exactly this class; an
    /// unresolved one needs its selector (kind and name glob) to match. Either way the
    /// selector's memory floor must be met, and unknown memory does not meet a floor;
    /// and the cell's engine must run on these devices.
    pub fn can_run(&self, cell: &Cell) -> bool {
        let class_ok = match &cell.hardware_class {
            Some(class) => *class == self.class,
            None => cell.hardware.matches_class(&self.class),
        };
        class_ok && self.has_memory_for(cell) && self.engines.contains(&cell.engine)
    }

    fn has_memory_for(&self, cell: &Cell) -> bool {
        let Some(gib) = cell.hardware.min_memory_gib else { return true };
        self.memory_bytes.is_some_and(|bytes| bytes as f64 >= gib * GIB)
    }
}

const GIB: f64 = (1u64 << 30) as f64;

/// The device groups an agent offers, from its fingerprint: one CPU group (one slot, the
/// machine's memory) and one group per accelerator class (one slot per device, the least
/// memory among them).
pub fn device_groups(fingerprint: &Fingerprint) -> Vec<DeviceGroup> {
    let classes = fingerprint.hardware_classes();
    let mut groups: Vec<DeviceGroup> = Vec::new();
    if let Some(cpu) = fingerprint.hardware_class_of(HardwareKind::Cpu) {
        groups.push(DeviceGroup::new(cpu, Some(fingerprint.memory.total_bytes), 1));
    }
    for gpu in &fingerprint.gpus {
        let Some(class) = gpu.hardware_class().filter(|c| classes.contains(c)) else { continue };
        match groups.iter_mut().find(|g| g.class == class) {
            Some(group) => {
                group.slots += 1;
                group.memory_bytes = min_known(group.memory_bytes, gpu.memory_bytes);
            }
            None => groups.push(DeviceGroup::new(class, gpu.memory_bytes, 1)),
        }
    }
    groups
}

/// The smaller of two memories; unknown on either side makes the group's memory unknown,
/// since a cell could land on the device we know nothing about.
fn min_known(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a?.min(b?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{CpuInfo, GpuDevice, GpuVendor, MemoryInfo, OsInfo, SoftwareInfo, SCHEMA_VERSION};

    fn machine(gpus: Vec<GpuDevice>) -> Fingerprint {
        Fingerprint {
            schema_version: SCHEMA_VERSION,
            hostname: "h".into(),
            os: OsInfo::default(),
            cpu: CpuInfo { model_name: "AMD EPYC 7B13 64-Core Processor".into(), ..CpuInfo::default() },
            memory: MemoryInfo { total_bytes: 256 << 30, available_bytes: 0 },
            numa_nodes: 1,
            gpus,
            soc: None,
            probes: vec![],
            software: SoftwareInfo::default(),
        }
    }

    fn gpu(index: u32, kind: HardwareKind, name: &str, memory_gib: Option<u64>) -> GpuDevice {
        let mut device = GpuDevice::new(index, GpuVendor::Nvidia, kind, name);
        device.memory_bytes = memory_gib.map(|gib| gib << 30);
        device
    }

    #[test]
    fn one_group_per_class_with_a_slot_per_device() {
        let fp = machine(vec![
            gpu(0, HardwareKind::Cuda, "NVIDIA A10", Some(24)),
            gpu(1, HardwareKind::Cuda, "NVIDIA  A10", Some(23)),
            gpu(2, HardwareKind::Cuda, "NVIDIA H100 80GB HBM3", None),
            gpu(3, HardwareKind::Cuda, "", Some(8)),
        ]);
        let groups = device_groups(&fp);
        let shown: Vec<(&str, Option<u64>, u32)> =
            groups.iter().map(|g| (g.class.as_str(), g.memory_bytes.map(|b| b >> 30), g.slots)).collect();
        assert_eq!(
            shown,
            [
                ("cpu/AMD EPYC 7B13", Some(256), 1),
                ("cuda/NVIDIA A10", Some(23), 2),
                ("cuda/NVIDIA H100 80GB HBM3", None, 1),
            ]
        );
        assert_eq!(groups[1].kind(), "cuda");
    }

    #[test]
    fn unknown_memory_on_any_device_makes_the_group_memory_unknown() {
        assert_eq!(min_known(Some(1), Some(2)), Some(1));
        assert_eq!(min_known(Some(1), None), None);
        assert_eq!(min_known(None, Some(2)), None);
    }

    #[test]
    fn a_group_runs_the_engines_it_lists_and_old_entries_read_as_the_built_in_one_only() {
        let stored = r#"{"class":"cpu/x","memory_bytes":null,"slots":1}"#;
        let mut group: DeviceGroup = serde_json::from_str(stored).expect("an entry from before engines");
        assert_eq!(group.engines, [Engine::Candle]);
        assert_eq!(serde_json::to_string(&group).expect("json"), stored, "unchanged on disk");
        let cell = |engine| Cell {
            model: "bert-tiny".into(),
            hardware: crate::spec::HardwareSelector { kind: HardwareKind::Cpu, min_memory_gib: None, name: None },
            hardware_class: Some("cpu/x".into()),
            agent_id: None,
            batch: 1,
            seq_len: 8,
            precision: crate::catalog::Precision::Fp32,
            mode: crate::catalog::Mode::Inference,
            engine,
        };
        assert!(group.can_run(&cell(Engine::Candle)) && !group.can_run(&cell(Engine::Torch)));
        group.engines.push(Engine::Torch);
        assert!(group.can_run(&cell(Engine::Torch)) && !group.can_run(&cell(Engine::Llamacpp)));
        let again: DeviceGroup = serde_json::from_str(&serde_json::to_string(&group).expect("json")).expect("read");
        assert_eq!(again, group);
    }
}
