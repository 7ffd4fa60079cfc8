//! The AMD GPU probe: amdgpu's sysfs under `/sys/class/drm/card*/device/` (`vendor`
//! 0x1002, `device`, `mem_info_vram_total`, `product_name`, `unique_id`, and the PCI
//! `max_link_speed`/`max_link_width`), see the kernel's amdgpu documentation.
//!
//! Reads from a root folder so fixture trees stand in for `/`. A card with garbled files
//! is skipped or loses the field, never panics the agent.

use std::path::Path;

use shared::fingerprint::{GpuDevice, GpuVendor, PcieLink, ProbeReport};
use shared::hardware::HardwareKind;

use super::{at, numbered_entries, read_value};

const PROBE: &str = "amdgpu";
/// AMD's PCI vendor id.
pub const AMD_VENDOR_ID: u32 = 0x1002;

/// The AMD GPUs under `<root>/sys/class/drm`, numbered in card order from 0.
pub fn probe(root: &Path) -> (Vec<GpuDevice>, ProbeReport) {
    let drm = at(root, "sys/class/drm");
    // `card0`, `card1`: connectors (`card0-DP-1`) and render nodes do not match.
    let cards = numbered_entries(&drm, "card");
    let mut gpus = Vec::new();
    for (_, card) in &cards {
        let device = card.join("device");
        let Some(vendor) = read_value(&device.join("vendor")).and_then(|v| parse_hex(&v)) else {
            continue;
        };
        if vendor != AMD_VENDOR_ID {
            continue;
        }
        let device_id = read_value(&device.join("device")).and_then(|v| parse_hex(&v));
        let product = read_value(&device.join("product_name"));
        let index = u32::try_from(gpus.len()).unwrap_or(u32::MAX);
        let mut gpu =
            GpuDevice::new(index, GpuVendor::Amd, HardwareKind::Rocm, marketing_name(product.as_deref(), device_id));
        gpu.memory_bytes = read_value(&device.join("mem_info_vram_total"))
            .and_then(|bytes| bytes.parse::<u64>().ok())
            .filter(|&bytes| bytes > 0);
        gpu.uuid = read_value(&device.join("unique_id"));
        gpu.driver_version = read_value(&at(root, "sys/module/amdgpu/version"));
        gpu.pcie = pcie_link(
            read_value(&device.join("max_link_speed")).as_deref(),
            read_value(&device.join("max_link_width")).as_deref(),
        );
        gpus.push(gpu);
    }
    let report = if gpus.is_empty() {
        if cards.is_empty() {
            ProbeReport::absent(PROBE, "no drm cards in /sys/class/drm")
        } else {
            ProbeReport::absent(PROBE, format!("{} drm cards, none with vendor 0x1002", cards.len()))
        }
    } else {
        ProbeReport::found(PROBE, format!("found {} devices", gpus.len()))
    };
    (gpus, report)
}

/// `product_name` where the board has one (Instinct boards do), else `AMD GPU 0x<device>`.
pub fn marketing_name(product_name: Option<&str>, device_id: Option<u32>) -> String {
    match (product_name.map(str::trim).filter(|p| !p.is_empty()), device_id) {
        (Some(product), _) => product.split_whitespace().collect::<Vec<_>>().join(" "),
        (None, Some(id)) => format!("AMD GPU 0x{id:04x}"),
        (None, None) => "AMD GPU".to_owned(),
    }
}

/// PCIe generation from a sysfs link speed (`16.0 GT/s PCIe`) and the width (`16`).
pub fn pcie_link(speed: Option<&str>, width: Option<&str>) -> Option<PcieLink> {
    let gts: f64 = speed?.split_whitespace().next()?.parse().ok()?;
    let generation = match gts {
        s if s < 3.0 => 1,
        s if s < 6.0 => 2,
        s if s < 10.0 => 3,
        s if s < 20.0 => 4,
        s if s < 40.0 => 5,
        s if s < 80.0 => 6,
        _ => 7,
    };
    let width = width?.trim().parse().ok()?;
    Some(PcieLink { generation, width })
}

pub(crate) fn parse_hex(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fall_back_to_device_id() {
        assert_eq!(marketing_name(Some("AMD Instinct MI210\n"), Some(0x740f)), "AMD Instinct MI210");
        assert_eq!(marketing_name(None, Some(0x744c)), "AMD GPU 0x744c");
        assert_eq!(marketing_name(Some("  "), Some(0x744c)), "AMD GPU 0x744c");
        assert_eq!(marketing_name(None, None), "AMD GPU");
    }

    #[test]
    fn pcie_generations() {
        assert_eq!(pcie_link(Some("16.0 GT/s PCIe"), Some("16")), Some(PcieLink { generation: 4, width: 16 }));
        assert_eq!(pcie_link(Some("8.0 GT/s PCIe"), Some("8")).map(|l| l.generation), Some(3));
        assert_eq!(pcie_link(Some("Unknown"), Some("16")), None);
        assert_eq!(pcie_link(None, Some("16")), None);
    }
}
