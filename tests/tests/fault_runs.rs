//! Seeded fault runs over real processes (see `e2e::fault` and docs/RELIABILITY.md):
//! every run must end with nothing lost, duplicated, mislabelled or stuck, and every
//! query over the warehouse answering.
//!
//! `ACCELBENCH_FAULT_RUNS` (default 10) runs seeds `ACCELBENCH_FAULT_SEED` (default 1)
//! onwards; `ops/fault-runs.sh` runs many and sums the counts.

#[tokio::test(flavor = "multi_thread")]
async fn seeded_fault_runs_lose_duplicate_mislabel_and_strand_nothing() {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (first, n_runs) = (env("ACCELBENCH_FAULT_SEED", 1), env("ACCELBENCH_FAULT_RUNS", 10));
    let mut dirty = Vec::new();
    for seed in first..first + n_runs {
        let report = e2e::fault::run(seed).await.unwrap_or_else(|e| panic!("fault run {seed} could not run: {e:#}"));
        // One line per run, for ops/fault-runs.sh to sum.
        println!("fault-run {report}");
        if !report.clean() {
            dirty.push(report.to_string());
        }
    }
    assert!(dirty.is_empty(), "{} of {n_runs} fault runs broke a promise:\n{}", dirty.len(), dirty.join("\n"));
}
