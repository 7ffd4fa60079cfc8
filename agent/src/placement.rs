//! Where a leased cell runs on this machine, or why it cannot run here for real.
//!
//! This is the one place that maps a cell's hardware kind and engine to a device the
//! cell runs on: the built-in engine's, or one its engine's runner named. Everything it
//! cannot place is `unsupported` with the reason, decided before any work: a Metal, ROCm
//! or QNN cell run by candle on the CPU, or a `torch` cell run by candle, would store a
//! CPU or candle number under another label.
//!
//! Must never: fall back to another device or engine than the cell names.

use shared::cell::Cell;
use shared::spec::{Engine, HardwareKind};

use crate::engine;

/// The device a cell runs on (`cpu`, `<kind>:<index>`), or why it cannot run here.
pub type Placement = Result<String, NotPlaced>;

/// Why a cell does not run here; callers branch on the kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPlaced {
    /// This agent cannot run it for real at all: report it `unsupported`.
    #[error("{0}")]
    Unsupported(String),
    /// It could run here, but no device slot of its kind is free right now: another
    /// attempt may run it.
    #[error("{0}")]
    NoFreeSlot(String),
}

impl NotPlaced {
    pub fn reason(&self) -> &str {
        match self {
            NotPlaced::Unsupported(why) | NotPlaced::NoFreeSlot(why) => why,
        }
    }
}

/// Places `cell` on the slot it was given (`slot_device`: `cpu`, `cuda:3`), or says why
/// it cannot run on this agent. `has_runner`: whether the runner of the cell's engine
/// said hello here (which backends it has is the runner's to answer, at `load`).
pub fn place(cell: &Cell, slot_device: Option<&str>, has_runner: bool) -> Placement {
    use NotPlaced::{NoFreeSlot, Unsupported};
    debug_assert_eq!(Engine::Candle.as_str(), engine::ENGINE);
    let kind = cell.hardware.kind;
    if cell.engine != Engine::Candle {
        if !has_runner {
            return Err(Unsupported(format!(
                "engine `{engine}` has no runner on this agent: none is configured as runners.{engine}, or it did \
                 not answer its handshake (see `accelbench-agent doctor`)",
                engine = cell.engine.as_str(),
            )));
        }
    } else {
        candle_backend(kind)?;
    }
    match slot_device {
        Some(device) if device.split(':').next() == Some(kind.as_str()) => Ok(device.to_string()),
        Some(device) => Err(Unsupported(format!("a {} cell was given the {device} slot", kind.as_str()))),
        None => Err(NoFreeSlot(format!("no free {} device slot on this agent", kind.as_str()))),
    }
}

/// Whether the built-in engine drives devices of `kind` in this build.
pub fn built_in_drives(kind: HardwareKind) -> bool {
    candle_backend(kind).is_ok()
}

/// Whether the built-in engine has a backend for `kind` in this build.
fn candle_backend(kind: HardwareKind) -> Result<(), NotPlaced> {
    use NotPlaced::Unsupported;
    match kind {
        HardwareKind::Cuda if !cfg!(feature = "cuda") => {
            return Err(Unsupported(
                "this agent was built without CUDA (the `cuda` feature): the cell would run on the CPU".into(),
            ))
        }
        HardwareKind::Rocm | HardwareKind::Metal | HardwareKind::Qnn | HardwareKind::Xpu | HardwareKind::Npu => {
            return Err(Unsupported(format!(
                "the built-in candle engine has no {} backend on this agent: the cell would run on the CPU",
                kind.as_str()
            )))
        }
        HardwareKind::Cpu | HardwareKind::Cuda => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use shared::catalog::{Mode, Precision};
    use shared::spec::HardwareSelector;

    use super::*;

    fn cell(kind: HardwareKind, engine: Engine) -> Cell {
        Cell {
            model: "bert-tiny".into(),
            hardware: HardwareSelector { kind, min_memory_gib: None, name: None },
            hardware_class: None,
            agent_id: None,
            batch: 1,
            seq_len: 8,
            precision: Precision::Fp32,
            mode: Mode::Inference,
            engine,
        }
    }

    #[test]
    fn only_cpu_and_built_in_cuda_run_and_everything_else_says_why() {
        assert_eq!(place(&cell(HardwareKind::Cpu, Engine::Candle), Some("cpu"), false), Ok("cpu".to_string()));
        let why = place(&cell(HardwareKind::Cpu, Engine::Candle), None, false).expect_err("no slot");
        assert!(matches!(&why, NotPlaced::NoFreeSlot(w) if w.contains("no free cpu device slot")), "{why}");
        let cuda = place(&cell(HardwareKind::Cuda, Engine::Candle), Some("cuda:3"), false);
        if cfg!(feature = "cuda") {
            assert_eq!(cuda, Ok("cuda:3".to_string()));
        } else {
            assert!(cuda.is_err_and(|why| matches!(&why, NotPlaced::Unsupported(w) if w.contains("without CUDA"))));
        }
        for kind in [HardwareKind::Metal, HardwareKind::Rocm, HardwareKind::Qnn, HardwareKind::Xpu, HardwareKind::Npu] {
            let why = place(&cell(kind, Engine::Candle), None, false).expect_err("no backend");
            assert!(matches!(why, NotPlaced::Unsupported(_)), "{why}");
            let why = why.reason();
            assert!(why.contains(kind.as_str()) && why.contains("would run on the CPU"), "{why}");
        }
        for engine in Engine::ALL.iter().copied().filter(|e| *e != Engine::Candle) {
            let why = place(&cell(HardwareKind::Cpu, engine), Some("cpu"), false).expect_err("no runner");
            assert!(matches!(why, NotPlaced::Unsupported(_)), "{why}");
            assert!(why.reason().starts_with(&format!("engine `{}` has no runner", engine.as_str())), "{why}");
            // With its runner, on the slot it was given: even a kind candle lacks, which
            // the runner answers for itself when it loads.
            assert_eq!(place(&cell(HardwareKind::Cpu, engine), Some("cpu"), true), Ok("cpu".into()));
            assert_eq!(place(&cell(HardwareKind::Rocm, engine), Some("rocm:1"), true), Ok("rocm:1".into()));
            assert_eq!(place(&cell(HardwareKind::Npu, engine), Some("npu:0"), true), Ok("npu:0".into()));
        }
    }
}
