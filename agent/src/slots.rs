//! The agent's device slots: one for the CPU and one per accelerator device, each running
//! at most one cell at a time. They mirror the device groups the coordinator plans with
//! (one group per hardware class, one slot per device), so an 8-GPU box runs eight
//! cells at once, each pinned to its own GPU.
//!
//! Must never: hand one slot to two cells, or a slot of another class than the lease's.

use shared::fingerprint::Fingerprint;
use shared::hardware::{HardwareClass, HardwareKind};

/// One place a cell can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Its hardware class, as registered: `cpu/AMD EPYC 7B13`, `cuda/NVIDIA H100 80GB HBM3`.
    pub class: String,
    /// The device a cell in it opens: `cpu`, or `<kind>:<index>` (`cuda:<NVML index>`,
    /// `rocm:0`, `xpu:1`), the notation runners use too.
    pub device: String,
}

/// The slots of this machine and which are busy.
#[derive(Debug, Clone)]
pub struct Slots {
    slots: Vec<(Slot, bool)>,
}

impl Slots {
    /// One CPU slot (the machine's CPU class) and one slot per accelerator device of any
    /// kind: a runner may drive a device the built-in engine cannot, and
    /// [`crate::placement`] answers a cell its engine cannot run there `unsupported`.
    pub fn of(fp: &Fingerprint) -> Slots {
        let mut slots = Vec::new();
        if let Some(cpu) = fp.hardware_class_of(HardwareKind::Cpu) {
            slots.push((Slot { class: cpu, device: "cpu".into() }, false));
        }
        for gpu in &fp.gpus {
            if let Some(class) = gpu.hardware_class() {
                slots.push((Slot { class, device: format!("{}:{}", gpu.backend, gpu.index) }, false));
            }
        }
        Slots { slots }
    }

    /// Every slot, busy or not, in order (the CPU first).
    pub fn all(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().map(|(slot, _)| slot)
    }

    pub fn n_free(&self) -> usize {
        self.slots.iter().filter(|(_, busy)| !busy).count()
    }

    /// Takes a free slot of `class` (the lease's device group), or else, for a lease that
    /// names none, a free slot whose class has `kind` (`cpu`, `cuda`, …). Returns its
    /// position, for [`Slots::release`].
    pub fn take(&mut self, class: &str, kind: &str) -> Option<(usize, Slot)> {
        let fits = |s: &Slot| {
            if class.is_empty() {
                HardwareClass::split(&s.class).0 == kind
            } else {
                s.class == class
            }
        };
        let idx = self.slots.iter().position(|(s, busy)| !busy && fits(s))?;
        self.slots[idx].1 = true;
        Some((idx, self.slots[idx].0.clone()))
    }

    pub fn release(&mut self, idx: usize) {
        if let Some((_, busy)) = self.slots.get_mut(idx) {
            *busy = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8-GPU box (fixture fingerprint): nine slots, and eight leases of the GPU class
    /// get eight different GPUs.
    #[test]
    fn an_eight_gpu_box_runs_one_cell_per_gpu() {
        let json = include_str!("../tests/fixtures/h100x8-fingerprint.json");
        let fp: Fingerprint = serde_json::from_str(json).expect("fixture fingerprint");
        let mut slots = Slots::of(&fp);
        assert_eq!(slots.n_free(), 9);
        let class = "cuda/NVIDIA H100 80GB HBM3";
        let mut devices: Vec<String> =
            (0..8).map(|_| slots.take(class, "cuda").expect("a free gpu").1.device).collect();
        devices.sort();
        let expected: Vec<String> = (0..8).map(|i| format!("cuda:{i}")).collect();
        assert_eq!(devices, expected);
        assert!(slots.take(class, "cuda").is_none(), "a ninth cell has no gpu");
        let (cpu_idx, cpu) = slots.take("", "cpu").expect("the cpu slot");
        assert_eq!(cpu.device, "cpu");
        assert_eq!(slots.n_free(), 0);
        slots.release(cpu_idx);
        assert_eq!(slots.take("", "cpu").map(|(i, _)| i), Some(cpu_idx));
    }

    /// Accelerators the built-in engine lacks get slots too (a runner may drive them),
    /// named as runners name them.
    #[test]
    fn every_accelerator_kind_gets_a_slot() {
        use shared::fingerprint::{GpuDevice, GpuVendor};
        let json = include_str!("../tests/fixtures/h100x8-fingerprint.json");
        let mut fp: Fingerprint = serde_json::from_str(json).expect("fixture fingerprint");
        fp.gpus = vec![
            GpuDevice::new(0, GpuVendor::Intel, HardwareKind::Xpu, "Intel Arc A770"),
            GpuDevice::new(0, GpuVendor::Intel, HardwareKind::Npu, "Intel NPU (Meteor Lake)"),
            GpuDevice::new(1, GpuVendor::Amd, HardwareKind::Rocm, "AMD Instinct MI210"),
        ];
        let mut slots = Slots::of(&fp);
        let devices: Vec<&str> = slots.all().map(|s| s.device.as_str()).collect();
        assert_eq!(devices, ["cpu", "xpu:0", "npu:0", "rocm:1"]);
        let (_, npu) = slots.take("npu/Intel NPU (Meteor Lake)", "npu").expect("the npu slot");
        assert_eq!(npu.device, "npu:0");
        assert!(slots.take("npu/Intel NPU (Meteor Lake)", "npu").is_none(), "one cell at a time on it");
    }
}
