#!/usr/bin/env bash
# A whole accelbench deployment on this machine, for trying everything out: a
# coordinator, two agents and, where it is installed (or installable: Debian package),
# a Prometheus server scraping all three, secured as a lab's would be: a throwaway CA in
# DIR/ca, a node certificate for the coordinator, one per agent, an admin's for you and a
# reader's for Prometheus. Everything lives in one folder (default: a new temporary one)
# and stops on Ctrl-C.
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

ca="$dir/ca"
if [ ! -f "$ca/ca.pem" ]; then
    "$bin/accelbench" ca init --dir "$ca" >/dev/null
    "$bin/accelbench" ca issue --dir "$ca" --node coordinator >/dev/null
    "$bin/accelbench" ca issue --dir "$ca" --user admin --role admin >/dev/null
    "$bin/accelbench" ca issue --dir "$ca" --user prometheus --role reader >/dev/null
    for i in 1 2; do "$bin/accelbench" ca issue --dir "$ca" --agent "agent$i" >/dev/null; done
fi

pids=()
stop() {
    echo "stopping…" >&2
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

"$bin/accelbench" serve --listen "$grpc" --http-listen "${metrics[0]}" \
    --tls-ca "$ca/ca.pem" --tls-cert "$ca/node-coordinator.pem" --tls-key "$ca/node-coordinator.key" \
    --data-dir "$dir/coordinator" --warehouse "$dir/warehouse" >"$dir/coordinator.out" 2>"$dir/coordinator.log" &
pids+=($!)
for _ in $(seq 50); do grep -q "^listening on" "$dir/coordinator.out" 2>/dev/null && break; sleep 0.2; done
grep -q "^listening on" "$dir/coordinator.out" || { echo "the coordinator did not start: $dir/coordinator.log" >&2; exit 1; }

for i in 1 2; do
    "$bin/accelbench-agent" run --coordinator "https://$grpc" --labels "local=agent$i" \
        --ca "$ca/ca.pem" --cert "$ca/agent-agent$i.pem" --key "$ca/agent-agent$i.key" \
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
    scheme: https
    tls_config: &reader
      ca_file: $ca/ca.pem
      cert_file: $ca/reader-prometheus.pem
      key_file: $ca/reader-prometheus.key
    static_configs:
      - targets: ['${metrics[0]}']
  - job_name: accelbench-agent
    scheme: https
    tls_config: *reader
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
  coordinator  https://$grpc         metrics https://${metrics[0]}/metrics
  agents       agent1, agent2        metrics https://${metrics[1]}/metrics, https://${metrics[2]}/metrics
  CA           $ca (admin-admin.pem is yours; reader-prometheus.pem reads the metrics)
  $prom_line

In another shell:
  export ACCELBENCH_COORDINATOR=https://$grpc ACCELBENCH_WAREHOUSE=$dir/warehouse
  export ACCELBENCH_CA=$ca/ca.pem ACCELBENCH_CERT=$ca/admin-admin.pem ACCELBENCH_KEY=$ca/admin-admin.key
  $bin/accelbench agents list
  $bin/accelbench sweep submit examples/sweep.toml --watch
  $bin/accelbench query "SELECT model, batch, precision, latency_p50_ns/1e6 AS p50_ms FROM latest_results"

Ctrl-C stops everything.
TEXT
wait
