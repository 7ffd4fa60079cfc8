//! The measurement loop of DESIGN.md, independent of any engine.
//!
//! Warm-up first (at least `warmup_iterations` and at least `warmup_min_seconds`), then
//! timed iterations until both `min_iterations` and `min_seconds` hold; from then on the
//! loop stops as soon as the 95% CI of the median is within `target_relative_ci`, and
//! `max_seconds` caps the timed phase whatever happens. Every iteration ends with a
//! device synchronise inside [`Workload::iterate`] before the clock stops. Raw samples
//! are kept; everything else is derived from them.
//!
//! [`decide`] is the pure stopping rule, unit-tested without a clock.

pub mod energy;
pub mod gpu;

use std::time::{Duration, Instant};

use shared::result::StopReason;
use shared::spec::MeasurePolicy;
use shared::stats;

use crate::engine::Workload;

/// Raw outcome of the timed phase.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Per-iteration wall time, nanoseconds, in order.
    pub samples_ns: Vec<f64>,
    pub warmup_iterations: u32,
    pub stop: StopReason,
    /// Generative families: time to first token of each timed iteration.
    pub first_token_ns: Vec<f64>,
    /// Generative families: every decode step of every timed iteration.
    pub token_ns: Vec<f64>,
    /// Wall time of the timed phase (for energy and mean power).
    pub timed: Duration,
}

/// What the loop does after an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Continue,
    Stop(StopReason),
}

/// The stopping rule. `rel_ci` is the relative half-width of the 95% CI of the median
/// over the samples so far (None while it cannot be computed).
pub fn decide(policy: &MeasurePolicy, n: u32, elapsed_s: f64, rel_ci: Option<f64>) -> Decision {
    let minimums = n >= policy.min_iterations && elapsed_s >= policy.min_seconds;
    if minimums && rel_ci.is_some_and(|ci| ci <= policy.target_relative_ci) {
        return Decision::Stop(StopReason::CiTarget);
    }
    if n as usize >= shared::result::MAX_SAMPLES {
        return Decision::Stop(StopReason::MaxSamples);
    }
    if elapsed_s >= policy.max_seconds {
        let reason = if minimums { StopReason::MaxSeconds } else { StopReason::MaxSecondsBeforeMinimums };
        return Decision::Stop(reason);
    }
    Decision::Continue
}

/// Runs warm-up and the timed loop over `workload`. `on_sample` sees each timed sample
/// (progress reporting).
pub fn measure(
    policy: &MeasurePolicy,
    workload: &mut dyn Workload,
    on_sample: impl FnMut(u32, f64),
) -> anyhow::Result<Measured> {
    measure_with(policy, workload, || {}, on_sample)
}

/// [`measure`], calling `on_timed_start` once between the warm-up and the first timed
/// iteration: energy counters start there, so that they cover the timed loop alone.
pub fn measure_with(
    policy: &MeasurePolicy,
    workload: &mut dyn Workload,
    on_timed_start: impl FnOnce(),
    mut on_sample: impl FnMut(u32, f64),
) -> anyhow::Result<Measured> {
    let warmup_start = Instant::now();
    let mut warmup_iterations = 0u32;
    while warmup_iterations < policy.warmup_iterations
        || warmup_start.elapsed().as_secs_f64() < policy.warmup_min_seconds
    {
        workload.iterate()?;
        warmup_iterations += 1;
        if warmup_start.elapsed().as_secs_f64() >= policy.max_seconds {
            // A model this slow would spend the whole budget warming up.
            break;
        }
    }

    let mut m = Measured {
        samples_ns: Vec::new(),
        warmup_iterations,
        stop: StopReason::MaxSecondsBeforeMinimums,
        first_token_ns: Vec::new(),
        token_ns: Vec::new(),
        timed: Duration::ZERO,
    };
    on_timed_start();
    let start = Instant::now();
    let mut last_ci_check = Instant::now();
    let mut ci_interval = Duration::from_millis(20);
    let mut rel_ci = None;
    loop {
        let t0 = Instant::now();
        let it = workload.iterate()?;
        let ns = it.own_time.unwrap_or_else(|| t0.elapsed()).as_nanos() as f64;
        m.samples_ns.push(ns);
        if let Some(ft) = it.first_token {
            m.first_token_ns.push(ft.as_nanos() as f64);
        }
        m.token_ns.extend(it.token_steps.iter().map(|d| d.as_nanos() as f64));
        on_sample(m.samples_ns.len() as u32, ns);
        // Sorting every sample on every iteration would cost more than a fast
        // iteration itself: check every 20 ms, and never spend more than a tenth of the
        // loop's time on it (with millions of samples a sort takes milliseconds).
        if last_ci_check.elapsed() >= ci_interval || ns > 20e6 {
            let t = Instant::now();
            rel_ci = stats::summarize(&m.samples_ns).map(|s| s.relative_ci_half_width()).filter(|v| v.is_finite());
            ci_interval = Duration::from_millis(20).max(t.elapsed() * 10);
            last_ci_check = Instant::now();
        }
        if let Decision::Stop(reason) = decide(policy, m.samples_ns.len() as u32, start.elapsed().as_secs_f64(), rel_ci)
        {
            m.stop = reason;
            break;
        }
    }
    m.timed = start.elapsed();
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> MeasurePolicy {
        MeasurePolicy {
            warmup_iterations: 1,
            warmup_min_seconds: 0.0,
            min_iterations: 10,
            min_seconds: 1.0,
            max_seconds: 5.0,
            target_relative_ci: 0.02,
        }
    }

    #[test]
    fn never_stops_before_both_minimums() {
        let p = policy();
        assert_eq!(decide(&p, 9, 2.0, Some(0.0)), Decision::Continue);
        assert_eq!(decide(&p, 50, 0.5, Some(0.0)), Decision::Continue);
        assert_eq!(decide(&p, 10, 1.0, Some(0.01)), Decision::Stop(StopReason::CiTarget));
    }

    #[test]
    fn keeps_going_until_the_ci_is_tight_then_caps() {
        let p = policy();
        assert_eq!(decide(&p, 100, 3.0, Some(0.05)), Decision::Continue);
        assert_eq!(decide(&p, 100, 3.0, None), Decision::Continue);
        assert_eq!(decide(&p, 100, 5.0, Some(0.05)), Decision::Stop(StopReason::MaxSeconds));
        assert_eq!(decide(&p, 3, 5.0, Some(0.05)), Decision::Stop(StopReason::MaxSecondsBeforeMinimums));
    }

    #[test]
    fn stops_at_the_most_samples_one_record_holds() {
        let p = MeasurePolicy { min_seconds: 60.0, max_seconds: 120.0, ..policy() };
        let max = shared::result::MAX_SAMPLES as u32;
        assert_eq!(decide(&p, max - 1, 1.0, Some(0.5)), Decision::Continue);
        assert_eq!(decide(&p, max, 1.0, Some(0.5)), Decision::Stop(StopReason::MaxSamples));
    }

    /// Counts its iterations; no device, no tensors.
    struct Counting(std::rc::Rc<std::cell::Cell<u32>>);

    impl Workload for Counting {
        fn iterate(&mut self) -> anyhow::Result<crate::engine::Iteration> {
            self.0.set(self.0.get() + 1);
            Ok(crate::engine::Iteration::default())
        }

        fn output(&self) -> Option<&candle_core::Tensor> {
            None
        }
    }

    /// Says each iteration took 7 ms, whatever the clock says.
    struct SelfTimed;

    impl Workload for SelfTimed {
        fn iterate(&mut self) -> anyhow::Result<crate::engine::Iteration> {
            Ok(crate::engine::Iteration { own_time: Some(Duration::from_millis(7)), ..Default::default() })
        }

        fn output(&self) -> Option<&candle_core::Tensor> {
            None
        }
    }

    #[test]
    fn a_workload_that_times_itself_is_recorded_at_its_own_time() {
        let p =
            MeasurePolicy { warmup_iterations: 1, min_iterations: 5, min_seconds: 0.0, max_seconds: 0.05, ..policy() };
        let m = measure(&p, &mut SelfTimed, |_, _| {}).expect("cannot fail");
        assert!(m.samples_ns.len() >= 5);
        assert!(m.samples_ns.iter().all(|&ns| ns == 7e6), "{:?}", m.samples_ns);
    }

    #[test]
    fn the_timed_start_hook_runs_once_after_the_warm_up() {
        let p =
            MeasurePolicy { warmup_iterations: 3, min_iterations: 5, min_seconds: 0.0, max_seconds: 0.2, ..policy() };
        let count = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut seen_at = Vec::new();
        let m = measure_with(&p, &mut Counting(count.clone()), || seen_at.push(count.get()), |_, _| {})
            .expect("a counting workload cannot fail");
        assert_eq!(seen_at, vec![3]);
        assert_eq!(m.warmup_iterations, 3);
        assert_eq!(count.get() as usize, 3 + m.samples_ns.len());
    }
}
