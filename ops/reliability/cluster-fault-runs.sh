#!/usr/bin/env bash
# Runs many seeded fault runs on a 3-node Raft cluster (tests/tests/raft_faults.rs) and
# sums what they found.
#   ops/reliability/cluster-fault-runs.sh [RUNS] [FIRST_SEED]
# Each run starts three coordinators and two agents on loopback, SIGKILLs or SIGSTOPs
# nodes (1-3 seeded faults) during a sweep of 40 cells, drains, and counts cells not done,
# duplicated rows and unacknowledged results; each leader kill is timed to the next
# acknowledged result. Seeds go in chunks of 10, so a run that panics costs its chunk
# only. Every run's line goes to CLUSTER_FAULT_LOG (default cluster-fault-runs.log here).
# Replay one seed with
#   ACCELBENCH_CLUSTER_FAULT_SEED=S ACCELBENCH_CLUSTER_FAULT_RUNS=1 cargo test -p e2e --test raft_faults -- --nocapture
set -uo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-300}"
first="${2:-1}"
log="${CLUSTER_FAULT_LOG:-cluster-fault-runs.log}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
cargo build -q --workspace --bins || exit 2
cargo test -q -p e2e --test raft_faults --no-run || exit 2
seed="$first"
end=$((first + runs))
while [ "$seed" -lt "$end" ]; do
    n=$((end - seed < 10 ? end - seed : 10))
    ACCELBENCH_CLUSTER_FAULT_SEED="$seed" ACCELBENCH_CLUSTER_FAULT_RUNS="$n" \
        cargo test -q -p e2e --test raft_faults -- --nocapture 2>/dev/null | grep '^cluster-fault' | tee -a "$log"
    seed=$((seed + n))
done
# Totals over this campaign's seeds, and the failover percentiles over every leader kill
# (plain POSIX tools: mawk has no sort).
lines="$(awk -v first="$first" -v end="$end" '/^cluster-fault/ { split($2, s, "="); if (s[2] >= first && s[2] < end) print }' "$log")"
runs_done="$(printf '%s\n' "$lines" | grep -c '^cluster-fault')"
dirty="$(printf '%s\n' "$lines" | grep '^cluster-fault' | grep -vc 'clean=true')"
ms="$(printf '%s\n' "$lines" | sed -n 's/.*failover_ms=\[\([^]]*\)\].*/\1/p' | tr ',' '\n' | tr -d ' ' | grep -v '^$' | sort -n)"
kills="$(printf '%s\n' "$ms" | grep -c .)"
echo "runs=$runs_done not_clean=$dirty leader_kills=$kills"
if [ "$kills" -gt 0 ]; then
    pick() { printf '%s\n' "$ms" | sed -n "$1p"; }
    p99=$(( (kills * 99 + 99) / 100 ))
    echo "failover ms: p50=$(pick $(( kills / 2 + 1 ))) p99=$(pick "$p99") max=$(pick "$kills")"
fi
[ "$dirty" -eq 0 ] && [ "$runs_done" -eq "$runs" ]
