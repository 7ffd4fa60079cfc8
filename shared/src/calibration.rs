//! Calibrations: what one device measurably does at the two things every model needs,
//! dense matrix multiplication (a GEMM per float precision) and moving memory (a copy).
//!
//! An agent measures them on each device it runs cells on when it starts (and keeps them
//! beside its spool until its fingerprint or version changes) and sends them when it
//! registers; the coordinator stores them in the warehouse's `calibrations` table.
//! `accelbench predict` reads them as each hardware class's compute rate and bandwidth.
//! They are measurements with their own provenance, never datasheet figures.
//!
//! Must never: carry a rate that is not finite and positive (see [`Calibration::check`]).

use serde::{Deserialize, Serialize};

use crate::catalog::Precision;
use crate::diagnostic::named_enum;

named_enum! {
    /// Which micro-benchmark a calibration is.
    pub enum CalibrationKind as "calibration kind" {
        /// An n×n by n×n matrix product; the rate is FLOP/s at 2n³ FLOPs a product.
        Gemm = "gemm",
        /// A copy of one buffer into a new one; the rate is bytes/s, read plus written.
        Copy = "copy",
    }
}

impl CalibrationKind {
    /// The unit of [`Calibration::rate`].
    pub fn unit(self) -> &'static str {
        match self {
            CalibrationKind::Gemm => "flop/s",
            CalibrationKind::Copy => "bytes/s",
        }
    }
}

/// The most calibrations one registration may carry (a few per device).
pub const MAX_CALIBRATIONS: usize = 256;

/// Longest string field a calibration may carry, in bytes.
const MAX_TEXT: usize = 512;

/// One micro-benchmark on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The device it ran on as the engine opened it: `cpu`, `cuda:0`.
    pub device: String,
    /// That device's hardware class: `cpu/AMD EPYC 7B13`.
    pub hardware_class: String,
    pub kind: CalibrationKind,
    /// The element type: the GEMM's precision; a copy moves `fp32` elements.
    pub precision: Precision,
    /// GEMM: n of the n×n×n product. Copy: bytes of the buffer copied.
    pub size: u64,
    /// GEMM: FLOP/s at the median time. Copy: bytes read and written per second at the
    /// median time.
    pub rate: f64,
    /// Timed repetitions the median is taken over.
    pub n_samples: u32,
    /// Median time of one repetition.
    pub median_seconds: f64,
    /// The engine that ran it and its version, as in result provenance.
    pub engine: String,
    pub engine_version: String,
    /// When it was measured, ms since the Unix epoch.
    pub measured_at_ms: i64,
}

impl Calibration {
    /// Why this calibration cannot be stored, if it cannot: a rate or time that is not
    /// finite and positive, no samples, a text field too long or empty.
    pub fn check(&self) -> Result<(), String> {
        let positive = |what: &str, x: f64| {
            if x.is_finite() && x > 0.0 {
                Ok(())
            } else {
                Err(format!("calibration {} on {}: {what} {x} is not a finite positive number", self.kind, self.device))
            }
        };
        positive("rate", self.rate)?;
        positive("median_seconds", self.median_seconds)?;
        if self.n_samples == 0 || self.size == 0 {
            return Err(format!("calibration {} on {}: no samples or zero size", self.kind, self.device));
        }
        for (what, text) in [
            ("device", &self.device),
            ("hardware_class", &self.hardware_class),
            ("engine", &self.engine),
            ("engine_version", &self.engine_version),
        ] {
            if text.is_empty() || text.len() > MAX_TEXT {
                return Err(format!(
                    "calibration {}: {what} must be 1 to {MAX_TEXT} bytes, got {}",
                    self.kind,
                    text.len()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemm() -> Calibration {
        Calibration {
            device: "cpu".into(),
            hardware_class: "cpu/Test CPU".into(),
            kind: CalibrationKind::Gemm,
            precision: Precision::Fp32,
            size: 512,
            rate: 2.0 * 512f64.powi(3) / 0.01,
            n_samples: 10,
            median_seconds: 0.01,
            engine: "candle".into(),
            engine_version: "0.11".into(),
            measured_at_ms: 1_765_000_000_000,
        }
    }

    #[test]
    fn a_sound_calibration_passes_and_round_trips_through_json() {
        let c = gemm();
        assert_eq!(c.check(), Ok(()));
        let json = serde_json::to_string(&c).expect("test value");
        assert!(json.contains("\"kind\":\"gemm\"") && json.contains("\"precision\":\"fp32\""), "{json}");
        assert_eq!(serde_json::from_str::<Calibration>(&json).expect("test value"), c);
    }

    #[test]
    fn rates_that_are_not_finite_and_positive_are_refused_by_name() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = Calibration { rate: bad, ..gemm() }.check().expect_err("refused");
            assert!(err.contains("rate"), "{err}");
        }
        let err = Calibration { median_seconds: 0.0, ..gemm() }.check().expect_err("refused");
        assert!(err.contains("median_seconds"), "{err}");
        assert!(Calibration { n_samples: 0, ..gemm() }.check().is_err());
        let err = Calibration { device: "x".repeat(MAX_TEXT + 1), ..gemm() }.check().expect_err("refused");
        assert!(err.contains("device"), "{err}");
        assert!(Calibration { hardware_class: String::new(), ..gemm() }.check().is_err());
    }

    #[test]
    fn units_follow_the_kind() {
        assert_eq!(CalibrationKind::Gemm.unit(), "flop/s");
        assert_eq!(CalibrationKind::Copy.unit(), "bytes/s");
        assert_eq!("copy".parse::<CalibrationKind>().expect("test value"), CalibrationKind::Copy);
        assert!("memcpy".parse::<CalibrationKind>().is_err());
    }
}
