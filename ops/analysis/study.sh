#!/usr/bin/env bash
# Builds the scorecard's data set with the system itself: a coordinator and one agent
# on loopback, the noise study's sweep (noise.toml) submitted RUNS times so that each
# cell's runs interleave with the others', then the prediction sweep (prediction.toml)
# once. Everything lands in WAREHOUSE as measured rows, with the agent's calibrations.
#   ops/analysis/study.sh WAREHOUSE [RUNS] [noise|prediction|both]
# Then: accelbench scorecard --warehouse WAREHOUSE
# Run it on a quiet machine: whatever else runs becomes part of the noise it measures.
set -euo pipefail
cd "$(dirname "$0")/../.."
wh="${1:?usage: study.sh WAREHOUSE [RUNS] [noise|prediction|both]}"
runs="${2:-30}"
what="${3:-both}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
cargo build -p coordinator --bin accelbench -p agent --bin accelbench-agent >&2
bin="$CARGO_TARGET_DIR/debug"
work="$(mktemp -d)"
cleanup() {
    kill "${agent:-}" "${coordinator:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin/accelbench" serve --listen 127.0.0.1:0 --data-dir "$work/coordinator" --warehouse "$wh" \
    > "$work/serve.out" 2> "$work/serve.log" &
coordinator=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url="http://$(sed -n 's/^listening on //p' "$work/serve.out" | head -1)"
"$bin/accelbench-agent" run --coordinator "$url" --spool "$work/spool" --labels study=scorecard \
    2> "$work/agent.log" &
agent=$!
# The agent calibrates, then registers: submit only once it is there.
for _ in $(seq 600); do
    "$bin/accelbench" agents list --coordinator "$url" --format csv 2>/dev/null | sed 1d | grep -q . && break
    sleep 0.5
done

submit() {
    "$bin/accelbench" sweep submit "ops/analysis/$1" --coordinator "$url" --watch > /dev/null
}
if [ "$what" != prediction ]; then
    for i in $(seq "$runs"); do
        echo "noise study: run $i of $runs" >&2
        submit noise.toml
    done
fi
if [ "$what" != noise ]; then
    echo "prediction sweep" >&2
    submit prediction.toml
fi
echo "done: $wh" >&2
