#!/usr/bin/env bash
# Runs many seeded fault runs (tests/src/fault.rs) and sums what they found.
#   ops/reliability/fault-runs.sh [RUNS] [FIRST_SEED]
# Each run starts a coordinator and 2-4 agents on loopback, injects 3-6 faults into a
# sweep of 100 cells, heals, drains and counts lost, duplicated, mislabelled and stuck
# cells and failed queries. Every run's line goes to fault-runs.log; the totals are
# printed at the end. Replay one seed with
#   ACCELBENCH_FAULT_SEED=S ACCELBENCH_FAULT_RUNS=1 cargo test -p e2e --test fault_runs -- --nocapture
set -uo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-1000}"
first="${2:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
log="${FAULT_LOG:-fault-runs.log}"
cargo build --workspace --bins >&2 || exit 2
# One test process per run: a run that breaks a promise is logged, and the next goes on.
for seed in $(seq "$first" $((first + runs - 1))); do
    ACCELBENCH_FAULT_SEED="$seed" ACCELBENCH_FAULT_RUNS=1 \
        cargo test -q -p e2e --test fault_runs -- --nocapture 2>&1 | grep -E '^fault-run |could not run' >>"$log"
done
awk '
    /^fault-run / {
        n++
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2] }
        if ($0 !~ /lost=0 duplicated=0 mislabelled=0 stuck=0 unacknowledged=0 failed_queries=0/) bad++
    }
    /could not run/ { broken++ }
    END {
        printf "%d runs (%d could not run): %d cells, %d ok; lost=%d duplicated=%d mislabelled=%d stuck=%d unacknowledged=%d failed_queries=%d; runs with a problem: %d\n",
            n, broken, v["cells"], v["ok"], v["lost"], v["duplicated"], v["mislabelled"], v["stuck"], v["unacknowledged"], v["failed_queries"], bad
    }' "$log"
