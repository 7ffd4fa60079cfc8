//! The Qualcomm Snapdragon probe: `/sys/devices/soc0/{machine,family,soc_id,revision}`
//! (Documentation/ABI/testing/sysfs-devices-soc), the NUL-terminated
//! `/proc/device-tree/model`, the Arm cpuinfo (`CPU implementer` 0x51 is Qualcomm) and the
//! QNN SDK named by `QNN_SDK_ROOT` (taken from [`ProbeEnv`], never from the process).
//!
//! A Qualcomm SoC becomes [`SocInfo`] plus one `qnn` device for its NPU. Other SoCs (an
//! i.MX, a Raspberry Pi) are not Snapdragons and give nothing. Never panics on what the
//! files say.

use std::path::Path;

use shared::fingerprint::{GpuDevice, GpuVendor, ProbeReport, SocInfo};
use shared::hardware::HardwareKind;

use super::cpu::Cpuinfo;
use super::{at, read_value, ProbeEnv};

const PROBE: &str = "snapdragon";
const QUALCOMM_IMPLEMENTER: u32 = 0x51;

/// The Snapdragon under `root`, if this is one, with the reports of the `snapdragon` and
/// (when it is one) `qnn` probes.
pub fn probe(root: &Path, cpuinfo: &Cpuinfo, env: &ProbeEnv) -> (Option<SocInfo>, Vec<ProbeReport>) {
    let soc0 = at(root, "sys/devices/soc0");
    let mut soc = SocInfo {
        vendor: "Qualcomm".to_owned(),
        machine: read_value(&soc0.join("machine")),
        family: read_value(&soc0.join("family")),
        soc_id: read_value(&soc0.join("soc_id")),
        revision: read_value(&soc0.join("revision")),
        board_model: read_value(&at(root, "proc/device-tree/model"))
            .or_else(|| read_value(&at(root, "sys/firmware/devicetree/base/model"))),
        qnn_sdk_root: None,
    };
    let hardware = cpuinfo.first("Hardware");
    let evidence = if soc.family.as_deref() == Some("Snapdragon") {
        "soc0 family Snapdragon"
    } else if cpuinfo.arm_implementer() == Some(QUALCOMM_IMPLEMENTER) {
        "cpu implementer 0x51"
    } else if mentions_qualcomm(soc.board_model.as_deref()) {
        "device-tree model"
    } else if mentions_qualcomm(hardware) {
        "cpuinfo hardware line"
    } else {
        return (None, vec![ProbeReport::absent(PROBE, "no qualcomm soc: soc0, device tree and cpuinfo name none")]);
    };
    if soc.machine.is_none() {
        soc.machine = soc.board_model.as_deref().and_then(chip_in_text).or_else(|| hardware.and_then(chip_in_text));
    }

    let qnn_report = match &env.qnn_sdk_root {
        None => ProbeReport::absent("qnn", "QNN_SDK_ROOT is not set"),
        Some(path) if path.is_dir() => {
            soc.qnn_sdk_root = Some(path.display().to_string());
            ProbeReport::found("qnn", format!("sdk at {}", path.display()))
        }
        Some(path) => ProbeReport::absent("qnn", format!("QNN_SDK_ROOT={} is not a folder", path.display())),
    };
    let report = ProbeReport::found(PROBE, format!("{} (from {evidence})", soc.name()));
    (Some(soc), vec![report, qnn_report])
}

/// The CPU model name for a Snapdragon, whose cpuinfo names only core designs:
/// `Qualcomm Snapdragon SM8550`.
pub fn cpu_model_name(soc: &SocInfo) -> String {
    match &soc.family {
        Some(family) if family != &soc.vendor => format!("{} {family} {}", soc.vendor, soc.name()),
        _ => format!("{} {}", soc.vendor, soc.name()),
    }
}

/// The SoC's NPU, driven through QNN, as a device: hardware class `qnn/<soc name>`.
pub fn npu_device(soc: &SocInfo) -> GpuDevice {
    GpuDevice::new(0, GpuVendor::Qualcomm, HardwareKind::Qnn, soc.name())
}

fn mentions_qualcomm(text: Option<&str>) -> bool {
    text.is_some_and(|text| text.to_ascii_lowercase().contains("qualcomm"))
}

/// A Qualcomm part number in free text: `SM8550` in `Qualcomm Technologies, Inc. SM8550
/// QRD`, `SDM845` in `Qualcomm Technologies, Inc SDM845`.
pub fn chip_in_text(text: &str) -> Option<String> {
    const PREFIXES: [&str; 10] = ["SDM", "SDA", "QCS", "QCM", "MSM", "APQ", "X1E", "SM", "SC", "SA"];
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|word| {
            PREFIXES.iter().any(|prefix| {
                word.strip_prefix(prefix)
                    .is_some_and(|rest| rest.len() >= 3 && rest.bytes().take(3).all(|b| b.is_ascii_digit()))
            })
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chips_in_free_text() {
        assert_eq!(chip_in_text("Qualcomm Technologies, Inc. SM8550 QRD").as_deref(), Some("SM8550"));
        assert_eq!(chip_in_text("Qualcomm Technologies, Inc SDM845").as_deref(), Some("SDM845"));
        assert_eq!(chip_in_text("Raspberry Pi 4 Model B Rev 1.4"), None);
        assert_eq!(chip_in_text("SMART board"), None);
    }

    #[test]
    fn cpu_model_and_npu_names() {
        let soc = SocInfo {
            vendor: "Qualcomm".into(),
            machine: Some("SM8550".into()),
            family: Some("Snapdragon".into()),
            ..SocInfo::default()
        };
        assert_eq!(cpu_model_name(&soc), "Qualcomm Snapdragon SM8550");
        let npu = npu_device(&soc);
        assert_eq!(npu.name, "SM8550");
        assert_eq!(npu.backend, HardwareKind::Qnn);
    }
}
