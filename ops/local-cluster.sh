#!/usr/bin/env bash
# A whole accelbench deployment on this machine, for trying everything out: a
# coordinator, two agents and, where it is installed (or installable: Debian package),
# a Prometheus server scraping all three. Everything lives in one folder (default: a new
# temporary one) and stops on Ctrl-C.
#
#   bash ops/local-cluster.sh [DIR]
#
# Ports (loopback only): gRPC 7070, coordinator metrics 9464, agent metrics 9465 and
# 9466, Prometheus 9090. Override with ACCELBENCH_PORT_BASE (gRPC; the others follow).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
dir="${1:-$(mktemp -d -t accelbench-cluster.XXXXXX)}"
mkdir -p "$dir"
base="${ACCELBENCH_PORT_BASE:-7070}"
grpc="127.0.0.1:$base"
metrics=("127.0.0.1:$((base + 2394))" "127.0.0.1:$((base + 2395))" "127.0.0.1:$((base + 2396))")
prom="127.0.0.1:$((base + 2020))"

echo "building accelbench and accelbench-agent…" >&2
cargo build -q -p coordinator -p agent --bins
bin="$CARGO_TARGET_DIR/debug"

pids=()
stop() {
    echo "stopping…" >&2
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

"$bin/accelbench" serve --listen "$grpc" --http-listen "${metrics[0]}" \
    --data-dir "$dir/coordinator" --warehouse "$dir/warehouse" >"$dir/coordinator.out" 2>"$dir/coordinator.log" &
pids+=($!)
for _ in $(seq 50); do grep -q "^listening on" "$dir/coordinator.out" 2>/dev/null && break; sleep 0.2; done
grep -q "^listening on" "$dir/coordinator.out" || { echo "the coordinator did not start: $dir/coordinator.log" >&2; exit 1; }

for i in 1 2; do
    "$bin/accelbench-agent" run --coordinator "http://$grpc" --labels "local=agent$i" \
        --spool "$dir/agent$i-spool" --metrics-listen "${metrics[$i]}" \
        >"$dir/agent$i.out" 2>"$dir/agent$i.log" &
    pids+=($!)
done

prom_line="Prometheus: not installed (bash ops/metrics/prometheus.sh installs the Debian package)"
if prometheus_bin="$(bash ops/metrics/prometheus.sh 2>"$dir/prometheus-install.log")"; then
    cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: accelbench
    static_configs:
      - targets: ['${metrics[0]}']
  - job_name: accelbench-agent
    static_configs:
      - targets: ['${metrics[1]}', '${metrics[2]}']
YAML
    "$prometheus_bin" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus" \
        --web.listen-address="$prom" >/dev/null 2>"$dir/prometheus.log" &
    pids+=($!)
    prom_line="Prometheus: http://$prom (try the query accelbench_cells)"
fi

cat <<TEXT
accelbench is running in $dir (logs: *.log there).
  coordinator  http://$grpc          metrics http://${metrics[0]}/metrics
  agents       agent1, agent2        metrics http://${metrics[1]}/metrics, http://${metrics[2]}/metrics
  $prom_line

In another shell:
  export ACCELBENCH_COORDINATOR=http://$grpc ACCELBENCH_WAREHOUSE=$dir/warehouse
  $bin/accelbench agents list
  $bin/accelbench sweep submit examples/sweep.toml --watch
  $bin/accelbench query "SELECT model, batch, precision, latency_p50_ns/1e6 AS p50_ms FROM latest_results"

Ctrl-C stops everything.
TEXT
wait
