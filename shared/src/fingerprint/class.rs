//! Hardware classes: what two machines share when their results are comparable,
//! `<kind>/<device name>` (`cpu/AMD EPYC 7B13`, `cuda/NVIDIA H100 80GB HBM3`), one per
//! distinct kind of device of a fingerprint.
//!
//! Must never: put a volatile fact (a driver version, a UUID) into a class.

use super::{normalize_cpu_model, Fingerprint, GpuDevice};
use crate::hardware::{HardwareClass, HardwareKind};

impl GpuDevice {
    /// This device's hardware class, `<backend>/<name>` with runs of spaces collapsed
    /// (`cuda/NVIDIA H100 80GB HBM3`); `None` for a device without a name. The one rule
    /// for accelerator classes: the agent's slots and the coordinator's device groups
    /// both come from it.
    pub fn hardware_class(&self) -> Option<String> {
        let name = collapse_spaces(&self.name);
        HardwareClass::new(self.backend, &name).map(String::from)
    }
}

impl Fingerprint {
    /// One hardware class per distinct kind of device, CPU first, then accelerators in
    /// probe order: `cpu/Intel Xeon Platinum 8380` (`cpu/Intel Xeon Platinum 8380 (2
    /// threads)` for an agent limited to 2 threads), `cuda/NVIDIA H100 80GB HBM3`,
    /// `rocm/AMD Instinct MI210`, `metal/Apple M2 Max`, `qnn/SM8550`.
    pub fn hardware_classes(&self) -> Vec<String> {
        let mut classes = Vec::new();
        let mut cpu = normalize_cpu_model(&self.cpu.model_name);
        if !cpu.is_empty() {
            match self.cpu.threads_limit {
                Some(1) => cpu.push_str(" (1 thread)"),
                Some(n) => cpu.push_str(&format!(" ({n} threads)")),
                None => {}
            }
        }
        if let Some(cpu) = HardwareClass::new(HardwareKind::Cpu, &cpu) {
            classes.push(String::from(cpu));
        }
        for class in self.gpus.iter().filter_map(GpuDevice::hardware_class) {
            if !classes.contains(&class) {
                classes.push(class);
            }
        }
        classes
    }

    /// The first of [`Fingerprint::hardware_classes`] of `kind`: the CPU's class for
    /// [`HardwareKind::Cpu`], the first accelerator's of that kind otherwise.
    pub fn hardware_class_of(&self, kind: HardwareKind) -> Option<String> {
        self.hardware_classes().into_iter().find(|class| HardwareClass::split(class).0 == kind.as_str())
    }
}

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
