//! A series of runs of one cell, in time order (one value per run, its median latency),
//! and what can be wrong with one: the one error type of the change-point detector, the
//! regression alarms and the baseline rules.
//!
//! Must never: reorder or drop runs; an index in an answer is an index into the caller's
//! slice.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("the series has {n_runs} runs; {n_needed} are needed (two segments of the minimum segment size)")]
    TooFewRuns { n_runs: usize, n_needed: usize },
    #[error("run {run_idx} has the value {value}; a latency must be finite and not negative")]
    InvalidValue { run_idx: usize, value: f64 },
    #[error("option {name} is {value}; {allowed}")]
    InvalidOption { name: &'static str, value: String, allowed: &'static str },
}

/// Refuses a series holding a value that is not a latency: NaN, infinite or negative.
pub(crate) fn check_series(series: &[f64]) -> Result<(), SeriesError> {
    match first_invalid(series) {
        Some((run_idx, value)) => Err(SeriesError::InvalidValue { run_idx, value }),
        None => Ok(()),
    }
}

/// Like [`check_series`] for the raw samples of run `run_idx`.
pub(crate) fn check_run_samples(run_idx: usize, samples: &[f64]) -> Result<(), SeriesError> {
    match first_invalid(samples) {
        Some((_, value)) => Err(SeriesError::InvalidValue { run_idx, value }),
        None => Ok(()),
    }
}

/// Refuses an option value outside its range, saying what is allowed.
pub(crate) fn check_option(
    name: &'static str,
    value: f64,
    is_allowed: bool,
    allowed: &'static str,
) -> Result<(), SeriesError> {
    if is_allowed {
        Ok(())
    } else {
        Err(SeriesError::InvalidOption { name, value: value.to_string(), allowed })
    }
}

fn first_invalid(values: &[f64]) -> Option<(usize, f64)> {
    values.iter().copied().enumerate().find(|&(_, x)| !(x.is_finite() && x >= 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_run_is_named() {
        assert_eq!(check_series(&[1.0, 2.0]), Ok(()));
        assert_eq!(
            check_series(&[1.0, -2.0, f64::INFINITY]),
            Err(SeriesError::InvalidValue { run_idx: 1, value: -2.0 })
        );
        assert!(matches!(check_series(&[f64::NAN]), Err(SeriesError::InvalidValue { run_idx: 0, .. })));
        assert_eq!(
            check_run_samples(7, &[1.0, f64::NEG_INFINITY]),
            Err(SeriesError::InvalidValue { run_idx: 7, value: f64::NEG_INFINITY })
        );
    }

    #[test]
    fn too_few_runs_says_how_many_there_are_and_are_needed() {
        let err = SeriesError::TooFewRuns { n_runs: 4, n_needed: 6 };
        assert_eq!(err.to_string(), "the series has 4 runs; 6 are needed (two segments of the minimum segment size)");
    }
}
