//! Bench: what the measurement loop itself costs per iteration, on an empty workload.
//!
//! `cargo run -p agent --example harness_overhead`
//!
//! Prints the median sample the loop records for a workload that does nothing (the
//! floor of every latency we report: clock reads and the call) and the loop's whole
//! per-iteration cost (wall time of the timed phase / iterations, which adds the sample
//! bookkeeping and the periodic CI check). Recorded in docs/PERFORMANCE.md.

use candle_core::Tensor;
use shared::spec::MeasurePolicy;

struct Empty;

impl agent::engine::Workload for Empty {
    fn iterate(&mut self) -> anyhow::Result<agent::engine::Iteration> {
        Ok(agent::engine::Iteration::default())
    }

    fn output(&self) -> Option<&Tensor> {
        None
    }
}

fn main() -> anyhow::Result<()> {
    let policy = MeasurePolicy {
        warmup_iterations: 1000,
        warmup_min_seconds: 0.1,
        min_iterations: 100_000,
        min_seconds: 1.0,
        max_seconds: 3.0,
        // Unreachable on purpose: the empty loop runs its full minimum.
        target_relative_ci: 1e-12,
    };
    for round in 1..=3 {
        let m = agent::measure::measure(&policy, &mut Empty, |_, _| {})?;
        let s = shared::stats::summarize(&m.samples_ns).ok_or_else(|| anyhow::anyhow!("no samples"))?;
        let per_iter = m.timed.as_nanos() as f64 / m.samples_ns.len() as f64;
        println!(
            "round {round}: {} iterations, recorded sample p50 {:.0} ns (p99 {:.0} ns), loop cost {per_iter:.0} ns/iteration",
            m.samples_ns.len(),
            s.p50,
            s.p99
        );
    }
    Ok(())
}
