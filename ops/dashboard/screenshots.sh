#!/usr/bin/env bash
# Refreshes the dashboard screenshots in docs/dashboard/: runs the quickstart into a
# scratch warehouse (or uses WAREHOUSE if set), serves `accelbench dashboard` over it and
# has headless Chromium (ops/dashboard/chromium.sh) take each page at a desktop and a
# phone width.
#   bash ops/dashboard/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
chromium="$(bash ops/dashboard/chromium.sh)"
cargo build -q -p coordinator --bin accelbench
bin="$CARGO_TARGET_DIR/debug/accelbench"
work="$(mktemp -d -t accelbench-shots.XXXXXX)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
warehouse="${WAREHOUSE:-$work/warehouse}"
if [ -z "${WAREHOUSE:-}" ]; then
    echo "running the quickstart into $warehouse…" >&2
    "$bin" quickstart --data "$warehouse" >/dev/null
fi
"$bin" dashboard --listen 127.0.0.1:0 --warehouse "$warehouse" >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q "^dashboard on" "$work/out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/^dashboard on //p' "$work/out" | head -1)"
[ -n "$url" ] || { cat "$work/log" >&2; exit 1; }
url="${url%/}"
mkdir -p docs/dashboard
shoot() { # name path width height
    "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$3,$4" \
        --screenshot="docs/dashboard/$1.png" "$url$2" >/dev/null 2>&1
    echo "docs/dashboard/$1.png" >&2
}
shoot overview / 1280 900
shoot results /results 1280 1400
shoot compatibility /compatibility 1280 600
sample="$("$bin" query --warehouse "$warehouse" --format csv "SELECT result_id FROM results WHERE status = 'ok' LIMIT 1" | sed -n 2p)"
[ -n "$sample" ] && shoot result "/results/$sample" 1280 900
shoot results-phone /results 390 1600
q() { "$bin" query --warehouse "$warehouse" --format csv "$1" | sed -n 2p; }
sweep="$(q "SELECT sweep_id FROM sweeps ORDER BY submitted_at DESC LIMIT 1")"
[ -n "$sweep" ] && shoot sweep "/sweeps/$sweep" 1280 900
agent="$(q "SELECT agent_id FROM agents ORDER BY last_seen_at DESC LIMIT 1")"
[ -n "$agent" ] && shoot agent "/agents/$agent" 1280 900
shoot regressions /regressions 1280 600
series="$("$bin" query --warehouse "$warehouse" --format json \
    "SELECT model, hardware_class, batch, seq_len, precision, mode, engine, weights_source FROM results WHERE status = 'ok' LIMIT 1" |
    python3 -c 'import json, sys, urllib.parse; row = sys.stdin.readline(); print(urllib.parse.urlencode(json.loads(row)) if row.strip() else "")')"
[ -n "$series" ] && shoot series "/regressions/series?$series" 1280 900
shoot compare "/compare?base=all&new=all" 1280 900
