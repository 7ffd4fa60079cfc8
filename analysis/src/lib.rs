//! Statistics over stored benchmark results, behind `accelbench compare` (two sample sets
//! of one cell) and `accelbench regressions` (one cell's history of runs).
//!
//! Layout:
//! - [`compare`]: two sample sets → ratio of medians, its bootstrap interval, a verdict.
//! - [`changepoint`]: E-divisive means change points of a series of run medians.
//! - [`regressions`]: those change points, and a t-test of the latest runs against the
//!   runs before them, as alarms (slower) and improvements (faster).
//! - [`baselines`]: the simpler rules the detector is scored against (the old 7-run
//!   mean, a z-score, Mann–Whitney U on pooled samples).
//! - [`series`]: the checks on a series of runs, and their error.
//! - [`predict`]: a benchmark cell's latency or peak memory from measured rows and
//!   catalog and calibration numbers, with an 80 % prediction interval from held-out
//!   errors, and the baselines it is scored against.
//! - [`scorecard`]: how often the answers above are wrong: the detector's false alarms
//!   and power on replayed noise beside the baselines at the same false-alarm rate, the
//!   predictor's errors on held-out batches, models, precisions and classes, and the
//!   regret of the class a recommendation picks for a model never measured.
//! - `bootstrap`, `rng`, `normal`, `student_t`: the resampling, the seeded generator, and
//!   the normal and Student's t tails behind them.
//!
//! Architecture invariant: pure. No I/O, no clock, no threads, no async, no DuckDB: the
//! caller fetches the numbers and passes plain slices. Every random choice comes from a
//! seed in the options, so the same input and seed give the same answer, bit for bit.

pub mod baselines;
mod bootstrap;
pub mod changepoint;
pub mod compare;
mod normal;
pub mod predict;
pub mod regressions;
mod rng;
pub mod scorecard;
pub mod series;
mod student_t;
#[cfg(test)]
mod testing;

/// A closed interval `[low, high]`: of a ratio new / base, or of a predicted value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    low: f64,
    high: f64,
}

impl Interval {
    /// `None` unless `low <= high`, which also rules out NaN.
    pub fn new(low: f64, high: f64) -> Option<Interval> {
        (low <= high).then_some(Interval { low, high })
    }

    pub fn low(&self) -> f64 {
        self.low
    }

    pub fn high(&self) -> f64 {
        self.high
    }

    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// Which way a latency moved. Latency is the measure here, so higher is slower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Slower,
    Faster,
}
