//! The deterministic simulation (layer A) outside `cargo test`: replay one seed, or run
//! many and report seeds per second.
//!
//! `cargo run -p coordinator --example sim -- --seed 42` replays seed 42 and prints its
//! configuration, fault plan and counts (or the violation).
//! `cargo run -p coordinator --example sim -- --seeds 100000` runs seeds 0..100000 on
//! every core and prints how many failed and seeds/s, with the CPU.

use std::time::Instant;

use coordinator::sim::{run_seed, Violation};

/// Deterministic simulation of a coordinator cluster under faults.
#[derive(clap::Parser)]
struct Args {
    /// Replay this one seed and print what happened.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run seeds `first..first+seeds`.
    #[arg(long, default_value_t = 100_000)]
    seeds: u64,
    #[arg(long, default_value_t = 0)]
    first: u64,
}

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    if let Some(seed) = args.seed {
        return match run_seed(seed) {
            Ok(report) => {
                println!("seed {seed}: passed at {} ms of virtual time", report.ended_ms);
                println!("config: {:?}", report.config);
                for (at, fault) in &report.faults {
                    println!("  at {at:>6} ms: {fault:?}");
                }
                println!("counts: {:?}", report.counts);
                Ok(())
            }
            Err(violation) => {
                println!("config: {:?}", coordinator::sim::Config::for_seed(seed));
                let config = coordinator::sim::Config::for_seed(seed);
                for (at, fault) in coordinator::sim::plan_faults(seed, &config) {
                    println!("  at {at:>6} ms: {fault:?}");
                }
                Err(violation.into())
            }
        };
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let started = Instant::now();
    let (first, n) = (args.first, args.seeds);
    let failures: Vec<Violation> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (first + t..first + n)
                        .step_by(threads as usize)
                        .filter_map(|seed| run_seed(seed).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    let took = started.elapsed().as_secs_f64();
    let cpu = agent::detect::detect().cpu;
    println!("CPU: {} ({} logical cores; {threads} threads)", cpu.model_name, cpu.logical_cores);
    println!(
        "seeds {first}..{}: {} passed, {} failed, {:.1} s, {:.0} seeds/s",
        first + n,
        n - failures.len() as u64,
        failures.len(),
        took,
        n as f64 / took
    );
    for violation in failures.iter().take(10) {
        println!("{violation}");
    }
    anyhow::ensure!(failures.is_empty(), "{} seeds failed", failures.len());
    Ok(())
}
