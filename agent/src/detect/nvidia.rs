//! The NVIDIA probe, through NVML (`libnvidia-ml.so`, loaded at run time by nvml-wrapper).
//!
//! `Nvml::init()` failing is a normal answer ("no NVIDIA driver here"): the probe returns
//! no devices and an `absent` report. Every per-device query may fail on its own (old
//! drivers, MIG, unsupported boards) and then leaves its field `None`. This module must
//! never panic, and never abort detection.

use std::panic::{catch_unwind, AssertUnwindSafe};

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use shared::fingerprint::{GpuDevice, GpuVendor, PcieLink, ProbeReport};
use shared::hardware::HardwareKind;

const PROBE: &str = "nvml";

/// The NVIDIA GPUs NVML sees, and what the probe found or why it found nothing.
pub fn probe() -> (Vec<GpuDevice>, ProbeReport) {
    // nvml-wrapper does not panic on a missing library, but a driver bug must not take the
    // agent down either.
    match catch_unwind(AssertUnwindSafe(probe_nvml)) {
        Ok(answer) => answer,
        Err(_) => (Vec::new(), ProbeReport::error(PROBE, "nvml probe panicked")),
    }
}

fn probe_nvml() -> (Vec<GpuDevice>, ProbeReport) {
    let nvml = match Nvml::init() {
        Ok(nvml) => nvml,
        Err(err) => return (Vec::new(), init_failure(&err)),
    };
    let count = match nvml.device_count() {
        Ok(count) => count,
        Err(err) => return (Vec::new(), ProbeReport::error(PROBE, format!("cannot count devices: {err}"))),
    };
    let driver_version = nvml.sys_driver_version().ok();
    let cuda_driver_version = nvml.sys_cuda_driver_version().ok().map(cuda_version);
    let mut devices = Vec::new();
    let mut failures = Vec::new();
    for index in 0..count {
        let device = match nvml.device_by_index(index) {
            Ok(device) => device,
            Err(err) => {
                failures.push(format!("device {index}: {err}"));
                continue;
            }
        };
        let name = device.name().unwrap_or_else(|_| format!("NVIDIA GPU {index}"));
        let mut gpu = GpuDevice::new(index, GpuVendor::Nvidia, HardwareKind::Cuda, name);
        gpu.uuid = device.uuid().ok();
        gpu.memory_bytes = device.memory_info().ok().map(|memory| memory.total);
        gpu.compute_capability = device.cuda_compute_capability().ok().map(|cc| format!("{}.{}", cc.major, cc.minor));
        gpu.driver_version = driver_version.clone();
        gpu.cuda_driver_version = cuda_driver_version.clone();
        gpu.power_limit_watts = device
            .enforced_power_limit()
            .or_else(|_| device.power_management_limit())
            .ok()
            .map(|milliwatts| f64::from(milliwatts) / 1000.0);
        // The maximum link, not the current one: an idle GPU drops to a slower link.
        gpu.pcie = match (device.max_pcie_link_gen(), device.max_pcie_link_width()) {
            (Ok(generation), Ok(width)) => Some(PcieLink { generation, width }),
            _ => None,
        };
        gpu.mig_mode = device.mig_mode().ok().map(|mode| mode.current == 1);
        devices.push(gpu);
    }
    let mut reason = format!("found {} device{}", devices.len(), if devices.len() == 1 { "" } else { "s" });
    if let Some(driver) = &driver_version {
        reason.push_str(&format!(", driver {driver}"));
    }
    let report = if failures.is_empty() {
        if devices.is_empty() {
            ProbeReport::absent(PROBE, "nvml loaded but reports no devices")
        } else {
            ProbeReport::found(PROBE, reason)
        }
    } else {
        ProbeReport::error(PROBE, format!("{reason}; {}", failures.join("; ")))
    };
    (devices, report)
}

/// The report for an `Nvml::init()` failure: a missing library or driver is `absent`,
/// anything else an `error`.
pub fn init_failure(err: &NvmlError) -> ProbeReport {
    match err {
        NvmlError::LibloadingError(inner) => {
            ProbeReport::absent(PROBE, format!("no nvidia driver: cannot load libnvidia-ml.so ({inner})"))
        }
        NvmlError::LibraryNotFound => ProbeReport::absent(PROBE, "no nvidia driver: nvml library not found"),
        NvmlError::DriverNotLoaded => ProbeReport::absent(PROBE, "no nvidia driver: the kernel driver is not loaded"),
        NvmlError::NoPermission => ProbeReport::error(PROBE, "nvml init refused: no permission"),
        other => ProbeReport::error(PROBE, format!("nvml init failed: {other}")),
    }
}

/// NVML's CUDA driver version number as `major.minor`: `12040` is `12.4`.
pub fn cuda_version(version: i32) -> String {
    format!("{}.{}", version / 1000, (version % 1000) / 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fingerprint::ProbeStatus;

    #[test]
    fn missing_driver_is_absent_not_error() {
        let report = init_failure(&NvmlError::DriverNotLoaded);
        assert_eq!(report.probe, "nvml");
        assert_eq!(report.status, ProbeStatus::Absent);
        assert!(report.reason.contains("driver"), "{}", report.reason);
        assert_eq!(init_failure(&NvmlError::LibraryNotFound).status, ProbeStatus::Absent);
        assert_eq!(init_failure(&NvmlError::Unknown).status, ProbeStatus::Error);
    }

    #[test]
    fn cuda_versions() {
        assert_eq!(cuda_version(12040), "12.4");
        assert_eq!(cuda_version(11080), "11.8");
        assert_eq!(cuda_version(12090), "12.9");
    }
}
