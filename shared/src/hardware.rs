//! Hardware, one concept in one place: the kind of device a cell runs on
//! ([`HardwareKind`]) and the hardware class ([`HardwareClass`], `<kind>/<device name>`,
//! e.g. `cuda/NVIDIA H100 80GB HBM3`), what two machines share when their results are
//! comparable.
//!
//! Everything that takes a class apart or puts one together goes through this module,
//! so the separator and the order of the parts are known here only.
//!
//! Must never: depend on another module of this crate but [`crate::diagnostic`] (specs,
//! cells and fingerprints all build on it), or change a spelling: kinds and classes are
//! stored and sent as these strings.

use std::fmt;

use crate::diagnostic::{named_enum, UnknownName};

named_enum! {
    /// The kind of accelerator (or none) a cell runs on: the part of a hardware class
    /// before the `/`. Also the programming interface a device is driven through
    /// ([`GpuDevice::backend`](crate::fingerprint::GpuDevice::backend), never `cpu`
    /// there).
    pub enum HardwareKind as "hardware kind" {
        Cpu = "cpu",
        Cuda = "cuda",
        Rocm = "rocm",
        Metal = "metal",
        /// Qualcomm AI Engine (Snapdragon NPU) through QNN.
        Qnn = "qnn",
        /// An Intel GPU (Arc, Data Center GPU Flex/Max, integrated Xe): oneAPI's and
        /// PyTorch's `xpu`, OpenVINO's `GPU`.
        Xpu = "xpu",
        /// An Intel NPU (Core Ultra's AI Boost), through OpenVINO's `NPU` device.
        Npu = "npu",
    }
}

/// A hardware class: a known [`HardwareKind`], a `/`, and a non-empty device name
/// (`cpu/AMD EPYC 7B13`, `cuda/NVIDIA H100 80GB HBM3`, `qnn/SM8550`).
///
/// Stored and sent as the plain string; reading one checks the shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HardwareClass {
    text: String,
    kind: HardwareKind,
}

/// A text that is not a hardware class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hardware class `{0}`, expected <kind>/<device name> with a kind among {kinds}", kinds = HardwareKind::NAMES.join(", "))]
pub struct InvalidHardwareClass(pub String);

impl HardwareClass {
    /// The class of a device of `kind` named `device`; `None` for an empty name.
    pub fn new(kind: HardwareKind, device: &str) -> Option<HardwareClass> {
        (!device.is_empty()).then(|| HardwareClass { text: format!("{kind}/{device}"), kind })
    }

    /// Reads `kind/device name`: the kind spelt exactly as [`HardwareKind`] spells it,
    /// the name not empty.
    pub fn parse(text: &str) -> Result<HardwareClass, InvalidHardwareClass> {
        let invalid = || InvalidHardwareClass(text.to_owned());
        let (kind, device) = text.split_once('/').ok_or_else(invalid)?;
        let kind: HardwareKind = kind.parse().map_err(|_: UnknownName| invalid())?;
        HardwareClass::new(kind, device).ok_or_else(invalid)
    }

    /// The parts of a class-shaped text, unjudged: what comes before the first `/` (the
    /// kind's place) and what comes after it (the device name's); a text without a `/`
    /// is all kind. For texts that need not be valid classes: globs over classes,
    /// classes stored before they were checked.
    pub fn split(text: &str) -> (&str, &str) {
        text.split_once('/').unwrap_or((text, ""))
    }

    pub fn kind(&self) -> HardwareKind {
        self.kind
    }

    /// The device name: `NVIDIA H100 80GB HBM3`.
    pub fn device(&self) -> &str {
        &self.text[self.kind.as_str().len() + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for HardwareClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for HardwareClass {
    type Err = InvalidHardwareClass;
    fn from_str(text: &str) -> Result<HardwareClass, InvalidHardwareClass> {
        HardwareClass::parse(text)
    }
}

impl TryFrom<String> for HardwareClass {
    type Error = InvalidHardwareClass;
    fn try_from(text: String) -> Result<HardwareClass, InvalidHardwareClass> {
        HardwareClass::parse(&text)
    }
}

impl From<HardwareClass> for String {
    fn from(class: HardwareClass) -> String {
        class.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_parse_into_kind_and_device() {
        let h100 = HardwareClass::parse("cuda/NVIDIA H100 80GB HBM3").expect("a class");
        assert_eq!(h100.kind(), HardwareKind::Cuda);
        assert_eq!(h100.device(), "NVIDIA H100 80GB HBM3");
        assert_eq!(h100.to_string(), "cuda/NVIDIA H100 80GB HBM3");
        let cpu: HardwareClass = "cpu/AMD EPYC 7B13".parse().expect("a class");
        assert_eq!((cpu.kind(), cpu.device()), (HardwareKind::Cpu, "AMD EPYC 7B13"));
        // Only the first `/` separates: device names may hold one.
        let odd = HardwareClass::parse("metal/Apple M2/Max").expect("a class");
        assert_eq!(odd.device(), "Apple M2/Max");
        assert_eq!(HardwareClass::new(HardwareKind::Qnn, "SM8550"), HardwareClass::parse("qnn/SM8550").ok());
        assert_eq!(HardwareClass::new(HardwareKind::Cpu, ""), None);
    }

    #[test]
    fn malformed_classes_are_refused() {
        for bad in ["cpu", "cpu/", "tpu/v5e", "CUDA/NVIDIA H100", "/NVIDIA H100", ""] {
            let err = HardwareClass::parse(bad).expect_err(bad);
            assert_eq!(err, InvalidHardwareClass(bad.to_owned()));
        }
        assert_eq!(
            InvalidHardwareClass("tpu/v5e".into()).to_string(),
            "invalid hardware class `tpu/v5e`, expected <kind>/<device name> with a kind among cpu, cuda, rocm, metal, qnn, xpu, npu"
        );
    }

    #[test]
    fn split_takes_any_text_apart() {
        assert_eq!(HardwareClass::split("cuda/NVIDIA H100"), ("cuda", "NVIDIA H100"));
        assert_eq!(HardwareClass::split("cuda/*a100*"), ("cuda", "*a100*"));
        assert_eq!(HardwareClass::split("cpu"), ("cpu", ""));
        assert_eq!(HardwareClass::split("a/b/c"), ("a", "b/c"));
    }

    #[test]
    fn classes_are_plain_strings_on_the_wire() {
        let class = HardwareClass::parse("rocm/AMD Instinct MI210").expect("a class");
        let json = serde_json::to_string(&class).expect("serialises");
        assert_eq!(json, "\"rocm/AMD Instinct MI210\"");
        assert_eq!(serde_json::from_str::<HardwareClass>(&json).expect("parses"), class);
        assert!(serde_json::from_str::<HardwareClass>("\"gpu/x\"").is_err());
        assert_eq!(String::from(class), "rocm/AMD Instinct MI210");
    }

    #[test]
    fn kinds_keep_their_spellings() {
        for kind in HardwareKind::ALL {
            assert_eq!(serde_json::to_string(kind).expect("serialises"), format!("\"{kind}\""));
        }
        assert_eq!(HardwareKind::NAMES, ["cpu", "cuda", "rocm", "metal", "qnn", "xpu", "npu"]);
    }
}
