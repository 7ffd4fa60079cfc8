#!/usr/bin/env bash
# Runs many seeded fault runs (tests/src/fault.rs) and sums what they found.
#   ops/reliability/fault-runs.sh [RUNS] [FIRST_SEED] [JOBS]
# Each run starts a coordinator and 2-4 agents on loopback, injects 3-6 faults into a
# sweep of 100 cells, heals, drains and counts lost, duplicated, mislabelled and stuck
# cells and failed queries. JOBS runs go at once (default 2; a run is mostly waiting on
# leases and restarts, and on two cores 3 at once gives the most runs an hour).
#
# The binaries are built once and copied to a folder of their own (FAULT_BIN, default
# ~/.cache/accelbench-faultbin/<commit>), so a build during a long campaign cannot swap
# them. Every run's line goes to FAULT_LOG (default fault-runs.log in that folder); seeds
# already in it are skipped, so an interrupted campaign resumes where it stopped. The
# totals are printed at the end. Replay one seed with
#   ACCELBENCH_FAULT_SEED=S ACCELBENCH_FAULT_RUNS=1 cargo test -p e2e --test fault_runs -- --nocapture
set -uo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-1000}"
first="${2:-1}"
jobs="${3:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit-dirty"
bin="${FAULT_BIN:-$HOME/.cache/accelbench-faultbin/$commit}"
log="${FAULT_LOG:-$bin/fault-runs.log}"

if [ ! -x "$bin/deps/fault_runs" ]; then
    cargo build --workspace --bins >&2 || exit 2
    test_exe="$(cargo test -p e2e --test fault_runs --no-run 2>&1 | grep -o '(/[^)]*fault_runs-[0-9a-f]*)' | tr -d '()' | tail -1)"
    [ -x "$test_exe" ] || { echo "could not find the fault_runs test binary" >&2; exit 2; }
    mkdir -p "$bin/deps"
    cp "$test_exe" "$bin/deps/fault_runs"
    cp "$CARGO_TARGET_DIR/debug/accelbench" "$CARGO_TARGET_DIR/debug/accelbench-agent" "$bin/"
fi
echo "binaries in $bin (this checkout is $commit); log $log; $jobs at once" >&2

touch "$log"
one_run() {
    local seed="$1"
    # One process per run: a run that breaks a promise is logged, and the next goes on.
    # A line is shorter than PIPE_BUF, so concurrent appends do not interleave.
    ACCELBENCH_FAULT_SEED="$seed" ACCELBENCH_FAULT_RUNS=1 nice "$bin/deps/fault_runs" --nocapture 2>&1 \
        | grep -E '^fault-run |could not run' >>"$log"
}
export -f one_run
export bin log
seq "$first" $((first + runs - 1)) \
    | grep -vxF -f <(grep -oE '^fault-run seed=[0-9]+' "$log" | cut -d= -f2) \
    | xargs -P "$jobs" -I{} bash -c 'one_run {}'

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
