#!/usr/bin/env bash
# Builds the scorecard's data set with the system itself: a coordinator and one agent
# on loopback, the noise study's sweep (noise.toml) submitted RUNS times so that each
# cell's runs interleave with the others', then the prediction sweep (prediction.toml)
# once with all threads and once limited to one thread (a second CPU class). Everything
# lands in WAREHOUSE as measured rows, with the agents' calibrations.
#   ops/analysis/study.sh WAREHOUSE [RUNS] [noise|prediction|both] [NOISE_THREADS]
# NOISE_THREADS (default: all) limits the noise study's agent to that many threads per
# cell, a class of its own: on a VM whose vCPUs the host does not always run at once,
# one thread measures with far less run-to-run spread than two (docs/ANALYSIS.md).
# Then: accelbench scorecard --warehouse WAREHOUSE
# Run it on a quiet machine: whatever else runs becomes part of the noise it measures.
set -euo pipefail
cd "$(dirname "$0")/../.."
wh="${1:?usage: study.sh WAREHOUSE [RUNS] [noise|prediction|both]}"
runs="${2:-30}"
what="${3:-both}"
noise_threads="${4:-all}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
cargo build -p coordinator --bin accelbench -p agent --bin accelbench-agent >&2
work="$(mktemp -d)"
# A copy of the binaries: a build during the study cannot swap them under it.
bin="$work/bin"
mkdir -p "$bin"
cp "$CARGO_TARGET_DIR/debug/accelbench" "$CARGO_TARGET_DIR/debug/accelbench-agent" "$bin/"
cleanup() {
    kill "${agent:-}" "${coordinator:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# One phase: a coordinator of its own (the warehouse is shared: commits from several
# writers are safe) and one agent, optionally limited to THREADS threads per cell, which
# makes its CPU another hardware class; SPEC submitted RUNS times, one after another.
phase() {
    local threads="$1" spec="$2" n="$3" dir="$work/phase-$RANDOM"
    mkdir -p "$dir"
    # --insecure: a private coordinator on loopback for the length of one phase.
    "$bin/accelbench" serve --insecure --listen 127.0.0.1:0 --data-dir "$dir/coordinator" --warehouse "$wh" \
        > "$dir/serve.out" 2> "$dir/serve.log" &
    coordinator=$!
    for _ in $(seq 100); do grep -q "listening on" "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
    local url="http://$(sed -n 's/^listening on //p' "$dir/serve.out" | head -1)"
    local limit=()
    [ "$threads" = all ] || limit=(--cpu-threads "$threads")
    "$bin/accelbench-agent" run --coordinator "$url" --spool "$dir/spool" --labels study=scorecard "${limit[@]}" \
        2> "$dir/agent.log" &
    agent=$!
    # The agent calibrates, then registers: submit only once it is there.
    for _ in $(seq 600); do
        "$bin/accelbench" agents list --coordinator "$url" --format csv 2>/dev/null | sed 1d | grep -q . && break
        sleep 0.5
    done
    for i in $(seq "$n"); do
        echo "$spec ($threads threads): run $i of $n" >&2
        "$bin/accelbench" sweep submit "ops/analysis/$spec" --coordinator "$url" --watch > /dev/null
    done
    kill "$agent" "$coordinator"
    wait "$agent" "$coordinator" 2>/dev/null || true
}

if [ "$what" != prediction ]; then
    phase "$noise_threads" noise.toml "$runs"
fi
if [ "$what" != noise ]; then
    # Two thread settings, two CPU classes: the second class the prediction and
    # recommendation scores need on a machine with one CPU.
    phase all prediction.toml 1
    phase 1 prediction.toml 1
fi
echo "done: $wh" >&2
