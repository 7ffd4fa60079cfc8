//! The Intel GPU and NPU probe: GPUs under `/sys/class/drm/card*/device/` with PCI
//! `vendor` 0x8086 (driven by `i915` or `xe`), NPUs under `/sys/class/accel/accel*/device/`
//! with the same vendor (driven by `intel_vpu`, the Core Ultra's "AI Boost").
//!
//! They become devices of kind `xpu` (an Intel GPU: oneAPI's and PyTorch's name for it,
//! OpenVINO's `GPU.N`) and `npu` (OpenVINO's `NPU`). The built-in engine drives neither;
//! runners do (OpenVINO, PyTorch's XPU build), through the agent's device names `xpu:N`
//! and `npu:N`. Neither driver says a marketing name in sysfs, so the name comes from the
//! PCI device id: a table of common parts, else `Intel GPU 0x<id>`.
//!
//! Reads from a root folder so fixture trees stand in for `/`; never panics on what the
//! files say.

use std::path::Path;

use shared::fingerprint::{GpuDevice, GpuVendor, ProbeReport};
use shared::hardware::HardwareKind;

use super::amd::{parse_hex, pcie_link};
use super::{at, numbered_entries, read_value};

const PROBE: &str = "intel";
/// Intel's PCI vendor id.
pub const INTEL_VENDOR_ID: u32 = 0x8086;

/// Intel GPUs (in card order) and NPUs (in accel order) under `root`, each numbered from 0
/// within its kind.
pub fn probe(root: &Path) -> (Vec<GpuDevice>, ProbeReport) {
    let gpus = intel_devices(root, "sys/class/drm", "card", HardwareKind::Xpu);
    let npus = intel_devices(root, "sys/class/accel", "accel", HardwareKind::Npu);
    let report = match (gpus.len(), npus.len()) {
        (0, 0) => ProbeReport::absent(PROBE, "no drm card or accel device with vendor 0x8086"),
        (g, n) => ProbeReport::found(PROBE, format!("found {g} gpus and {n} npus")),
    };
    (gpus.into_iter().chain(npus).collect(), report)
}

/// The Intel devices among `<root>/<class_dir>/<prefix>N`, as devices of `kind`,
/// numbered in PCI address order (the order runners are told to use: OpenVINO's PCI info,
/// `ZE_ENABLE_PCI_ID_DEVICE_ORDER` for Level Zero), else in entry order.
fn intel_devices(root: &Path, class_dir: &str, prefix: &str, kind: HardwareKind) -> Vec<GpuDevice> {
    let mut entries = numbered_entries(&at(root, class_dir), prefix);
    // sysfs links `device` to the PCI function: `../../../0000:03:00.0`.
    let pci_address = |entry: &std::path::PathBuf| {
        std::fs::read_link(entry.join("device")).ok()?.file_name().map(|name| name.to_string_lossy().into_owned())
    };
    entries.sort_by_cached_key(|(number, entry)| (pci_address(entry), *number));
    let mut found = Vec::new();
    for (_, entry) in entries {
        let device = entry.join("device");
        if read_value(&device.join("vendor")).and_then(|v| parse_hex(&v)) != Some(INTEL_VENDOR_ID) {
            continue;
        }
        let device_id = read_value(&device.join("device")).and_then(|v| parse_hex(&v));
        let index = u32::try_from(found.len()).unwrap_or(u32::MAX);
        let mut dev = GpuDevice::new(index, GpuVendor::Intel, kind, marketing_name(kind, device_id));
        // The driver (`i915`, `xe`, `intel_vpu`) has a version only when built as a module
        // that declares one.
        let driver = std::fs::read_link(device.join("driver")).ok();
        let driver = driver.as_ref().and_then(|link| link.file_name()).map(|name| name.to_string_lossy());
        dev.driver_version = driver.and_then(|name| read_value(&at(root, &format!("sys/module/{name}/version"))));
        dev.pcie = pcie_link(
            read_value(&device.join("max_link_speed")).as_deref(),
            read_value(&device.join("max_link_width")).as_deref(),
        );
        found.push(dev);
    }
    found
}

/// Common parts by PCI device id (Intel's published ids); others are named by their id.
const KNOWN: &[(HardwareKind, u32, &str)] = &[
    (HardwareKind::Xpu, 0x56a0, "Intel Arc A770"),
    (HardwareKind::Xpu, 0x56a1, "Intel Arc A750"),
    (HardwareKind::Xpu, 0x56a5, "Intel Arc A380"),
    (HardwareKind::Xpu, 0xe20b, "Intel Arc B580"),
    (HardwareKind::Xpu, 0xe20c, "Intel Arc B570"),
    (HardwareKind::Xpu, 0x56c0, "Intel Data Center GPU Flex 170"),
    (HardwareKind::Xpu, 0x56c1, "Intel Data Center GPU Flex 140"),
    (HardwareKind::Xpu, 0x0bd5, "Intel Data Center GPU Max 1550"),
    (HardwareKind::Xpu, 0x0bda, "Intel Data Center GPU Max 1100"),
    (HardwareKind::Xpu, 0x7d55, "Intel Arc Graphics (Meteor Lake)"),
    (HardwareKind::Xpu, 0x7dd5, "Intel Graphics (Meteor Lake)"),
    (HardwareKind::Xpu, 0x64a0, "Intel Arc 140V (Lunar Lake)"),
    (HardwareKind::Xpu, 0x9a49, "Intel Iris Xe Graphics (Tiger Lake)"),
    (HardwareKind::Xpu, 0x46a6, "Intel Iris Xe Graphics (Alder Lake)"),
    (HardwareKind::Npu, 0x7d1d, "Intel NPU (Meteor Lake)"),
    (HardwareKind::Npu, 0xad1d, "Intel NPU (Arrow Lake)"),
    (HardwareKind::Npu, 0x643e, "Intel NPU (Lunar Lake)"),
    (HardwareKind::Npu, 0xb03e, "Intel NPU (Panther Lake)"),
];

/// The name of an Intel device of `kind` with PCI device id `id`.
pub fn marketing_name(kind: HardwareKind, id: Option<u32>) -> String {
    let what = if kind == HardwareKind::Npu { "NPU" } else { "GPU" };
    match id {
        Some(id) => KNOWN
            .iter()
            .find(|(k, known, _)| *k == kind && *known == id)
            .map(|(_, _, name)| name.to_string())
            .unwrap_or_else(|| format!("Intel {what} 0x{id:04x}")),
        None => format!("Intel {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_device_id() {
        assert_eq!(marketing_name(HardwareKind::Xpu, Some(0x56a0)), "Intel Arc A770");
        assert_eq!(marketing_name(HardwareKind::Npu, Some(0x7d1d)), "Intel NPU (Meteor Lake)");
        // An NPU id is no GPU's name, and unknown ids keep their number.
        assert_eq!(marketing_name(HardwareKind::Xpu, Some(0x7d1d)), "Intel GPU 0x7d1d");
        assert_eq!(marketing_name(HardwareKind::Npu, Some(0x1234)), "Intel NPU 0x1234");
        assert_eq!(marketing_name(HardwareKind::Xpu, None), "Intel GPU");
    }

    #[test]
    fn garbled_and_foreign_devices_are_skipped() {
        let root = tempfile::tempdir().expect("tempdir");
        let write = |path: &str, text: &str| {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        write("sys/class/drm/card0/device/vendor", "0x10de\n");
        write("sys/class/drm/card1/device/vendor", "not hex");
        write("sys/class/drm/card2/device/vendor", "0x8086\n");
        write("sys/class/drm/card2/device/device", "\0\0");
        write("sys/class/accel/accel0/device/vendor", "0x8086");
        write("sys/class/accel/accel0/device/device", "0x643e");
        let (devices, report) = probe(root.path());
        let names: Vec<(HardwareKind, u32, &str)> =
            devices.iter().map(|d| (d.backend, d.index, d.name.as_str())).collect();
        assert_eq!(names, [(HardwareKind::Xpu, 0, "Intel GPU"), (HardwareKind::Npu, 0, "Intel NPU (Lunar Lake)")]);
        assert_eq!(report.reason, "found 1 gpus and 1 npus");
        let (none, report) = probe(&root.path().join("nowhere"));
        assert!(none.is_empty() && report.reason.contains("no drm card or accel device"), "{report:?}");
    }

    /// A discrete card probed before the integrated one still comes second: devices are
    /// numbered by PCI address, as the runners number them.
    #[test]
    fn gpus_are_numbered_in_pci_order() {
        let root = tempfile::tempdir().expect("tempdir");
        for (card, address, id) in [("card0", "0000:03:00.0", "0x56a0"), ("card1", "0000:00:02.0", "0x7d55")] {
            let function = root.path().join("sys/devices/pci0000:00").join(address);
            std::fs::create_dir_all(&function).expect("mkdir");
            std::fs::write(function.join("vendor"), "0x8086\n").expect("vendor");
            std::fs::write(function.join("device"), id).expect("device");
            let card = root.path().join("sys/class/drm").join(card);
            std::fs::create_dir_all(&card).expect("mkdir");
            std::os::unix::fs::symlink(&function, card.join("device")).expect("link");
        }
        let (devices, _) = probe(root.path());
        let names: Vec<(u32, &str)> = devices.iter().map(|d| (d.index, d.name.as_str())).collect();
        assert_eq!(names, [(0, "Intel Arc Graphics (Meteor Lake)"), (1, "Intel Arc A770")]);
    }
}
