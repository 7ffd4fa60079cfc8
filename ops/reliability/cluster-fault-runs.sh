#!/usr/bin/env bash
# Runs many seeded fault runs on a 3-node Raft cluster (tests/tests/raft_faults.rs) and
# sums what they found.
#   ops/reliability/cluster-fault-runs.sh [RUNS] [FIRST_SEED]
# Each run starts three coordinators and three agents, each in a network namespace of its
# own where this runs as root (else on loopback), with a TCP proxy of ours on every link;
# strikes with 1-3 seeded faults (SIGKILL or SIGSTOP of nodes, SIGKILL of an agent, a node
# cut off, one-way and flapping links, slow links, a node's disk full or failing its
# fsyncs) during a sweep of 120 one-iteration cells (ACCELBENCH_CLUSTER_FAULT_CELLS=1000
# for more);
# heals, drains, and counts cells not done, duplicated rows, unacknowledged results and
# sweeps not done within 30 s of the heal, and leader kills after which nothing was
# acknowledged for 30 s (stalled). Timed: leader kill and leader isolation to the
# next acknowledged result, a killed agent's cell to its next lease. Seeds go in chunks
# of 10, so a run that panics costs its chunk only. Every run's line goes to
# CLUSTER_FAULT_LOG (default cluster-fault-runs.log here).
# Replay one seed with
#   ACCELBENCH_CLUSTER_FAULT_SEED=S ACCELBENCH_CLUSTER_FAULT_RUNS=1 cargo test -p e2e --test raft_faults -- --nocapture
set -uo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-300}"
first="${2:-1}"
log="${CLUSTER_FAULT_LOG:-cluster-fault-runs.log}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
# The whole workspace: the binaries and the fsync-fault library the nodes preload.
cargo build -q --workspace || exit 2
test_bin="$(cargo test -q -p e2e --test raft_faults --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*raft_faults[^"]*\)".*/\1/p' | tail -1)"
[ -x "$test_bin" ] || { echo "could not build the raft_faults test binary" >&2; exit 2; }
# The campaign runs a copy of the binaries (the test finds them one folder above its own
# deps/), so building in the same target folder during a two-hour campaign changes nothing.
snapshot="$(mktemp -d)"
trap 'rm -rf "$snapshot"' EXIT
mkdir -p "$snapshot/deps"
cp "$CARGO_TARGET_DIR/debug/accelbench" "$CARGO_TARGET_DIR/debug/accelbench-agent" \
    "$CARGO_TARGET_DIR/debug/libfsync_fault.so" "$snapshot/"
cp "$test_bin" "$snapshot/deps/raft_faults"
echo "binaries of $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)') copied to $snapshot" >&2
seed="$first"
end=$((first + runs))
while [ "$seed" -lt "$end" ]; do
    n=$((end - seed < 10 ? end - seed : 10))
    ACCELBENCH_CLUSTER_FAULT_SEED="$seed" ACCELBENCH_CLUSTER_FAULT_RUNS="$n" CARGO_MANIFEST_DIR="$PWD/tests" \
        "$snapshot/deps/raft_faults" --nocapture a_cluster 2>/dev/null | grep '^cluster-fault' | tee -a "$log"
    seed=$((seed + n))
done
# Totals over this campaign's seeds, and percentiles of each timed figure
# (plain POSIX tools: mawk has no sort).
lines="$(awk -v first="$first" -v end="$end" '/^cluster-fault/ { split($2, s, "="); if (s[2] >= first && s[2] < end) print }' "$log")"
runs_done="$(printf '%s\n' "$lines" | grep -c '^cluster-fault')"
dirty="$(printf '%s\n' "$lines" | grep '^cluster-fault' | grep -vc 'clean=true')"
struck="$(printf '%s\n' "$lines" | sed -n 's/.* struck=\([0-9]*\)\/\([0-9]*\) .*/\1 \2/p' | awk '{ s += $1; n += $2 } END { print s "/" n }')"
# The sum of a count over the runs that report it (older runs may not).
sum() { printf '%s\n' "$lines" | sed -n "s/.* $1=\([0-9]*\) .*/\1/p" | awk '{ s += $1; n++ } END { if (n) print s; else print "not-counted" }'; }
in_ns="$(printf '%s\n' "$lines" | grep -c 'namespaces=true')"
echo "runs=$runs_done in_network_namespaces=$in_ns not_clean=$dirty faults_struck=$struck duplicated=$(sum duplicated) lost=$(sum lost) unexpected=$(sum unexpected) unacknowledged=$(sum unacknowledged) stalled=$(sum stalled)"
# p50, p99 and max of one figure (a list in brackets on each line) over every run.
figure() {
    ms="$(printf '%s\n' "$lines" | sed -n "s/.* $1=\[\([^]]*\)\].*/\1/p" | tr ',' '\n' | tr -d ' ' | grep -v '^$' | sort -n)"
    n="$(printf '%s\n' "$ms" | grep -c .)"
    if [ "$n" -gt 0 ]; then
        pick() { printf '%s\n' "$ms" | sed -n "$1p"; }
        echo "$2 (ms, n=$n): p50=$(pick $(( n / 2 + 1 ))) p99=$(pick $(( (n * 99 + 99) / 100 ))) max=$(pick "$n")"
    fi
}
figure failover_ms "leader SIGKILL -> next acknowledged result"
figure isolated_ms "leader cut off -> next acknowledged result"
figure relet_ms "agent SIGKILL -> its cell leased again (lease 5 s)"
figure disk_ms "leader's disk full or failing -> next acknowledged result"
echo "nodes stopped by a disk fault (exit 2, reason logged): $(sum disk_stops)"
late="$(printf '%s\n' "$lines" | sed -n 's/.*done_after_heal_ms=\([0-9]*\).*/\1/p' | sort -n | tail -1)"
echo "slowest drain after the last heal: ${late:-0} ms (limit 30000)"
[ "$dirty" -eq 0 ] && [ "$runs_done" -eq "$runs" ]
