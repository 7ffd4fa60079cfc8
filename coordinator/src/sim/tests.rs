//! Layer A in `cargo test`: thousands of seeds, the seeds that once failed, and proof
//! that the checks can fail.

use super::*;

/// Seeds that failed once, kept so the bug they found stays fixed.
const REGRESSIONS: &[u64] = &[];

/// How many seeds `cargo test` runs; `ACCELBENCH_SIM_SEEDS` raises or lowers it.
fn n_seeds() -> u64 {
    std::env::var("ACCELBENCH_SIM_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

#[test]
fn every_seed_keeps_the_invariants() {
    let n = n_seeds();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let failures: Vec<Violation> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..n).step_by(threads as usize).filter_map(|seed| run_seed(seed).err()).collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a simulation thread panicked")).collect()
    });
    let shown: Vec<String> = failures.iter().take(5).map(|v| v.to_string()).collect();
    assert!(failures.is_empty(), "{} of {n} seeds failed; first ones:\n{}", failures.len(), shown.join("\n"));
}

#[test]
fn regression_seeds_pass() {
    for &seed in REGRESSIONS {
        if let Err(violation) = run_seed(seed) {
            panic!("{violation}");
        }
    }
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [1, 77, 1234] {
        let (a, b) = (run_seed(seed).expect("passes"), run_seed(seed).expect("passes"));
        assert_eq!((a.counts, a.ended_ms), (b.counts, b.ended_ms), "seed {seed}");
    }
}

#[test]
fn runs_really_exercise_the_faults() {
    let reports: Vec<Report> = (0..200).map(|seed| run_seed(seed).expect("passes")).collect();
    let total = |f: fn(&Counts) -> u64| reports.iter().map(|r| f(&r.counts)).sum::<u64>();
    assert!(total(|c| c.crashes) > 50, "crashes: {}", total(|c| c.crashes));
    assert!(total(|c| c.storage_faults) > 5, "storage faults: {}", total(|c| c.storage_faults));
    assert!(total(|c| c.snapshots_sent) > 5, "snapshots sent: {}", total(|c| c.snapshots_sent));
    assert!(total(|c| c.expired) > 5, "leases expired: {}", total(|c| c.expired));
    assert!(total(|c| c.refused) > 5, "stale results refused: {}", total(|c| c.refused));
    assert!(total(|c| c.dropped) > 100, "messages dropped: {}", total(|c| c.dropped));
    assert!(reports.iter().any(|r| r.config.nodes == 5) && reports.iter().any(|r| r.config.nodes == 3));
    // A run ends when every cell is final, which may be before a re-sent result's
    // answer reaches its agent: most results, not all, are acknowledged by then.
    let cells: u64 = reports.iter().map(|r| r.config.cells as u64).sum();
    assert!(total(|c| c.acked) * 10 >= cells * 9, "{} acknowledged for {cells} cells", total(|c| c.acked));
}

#[test]
fn disks_that_lie_about_fsync_are_caught() {
    // Every node forgets everything when all of them crash together.
    let caught: Vec<Violation> = (0..20)
        .filter_map(|seed| {
            let config = Config { lying_disks: true, ..Config::for_seed(seed) };
            run(seed, config, vec![(6_000, Fault::CrashAll { down_ms: 500 })]).err()
        })
        .collect();
    assert!(caught.len() >= 15, "only {} of 20 seeds caught the lying disks", caught.len());
    let kinds = [
        "acknowledged result lost",
        "log divergence",
        "replica divergence",
        "sweep lost",
        "cell moved backwards",
        "result lost or changed",
    ];
    for violation in &caught {
        assert!(kinds.contains(&violation.what), "{violation}");
    }
}
