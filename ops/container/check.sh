#!/usr/bin/env bash
# Tries the coordinator's image as a lab would run it: builds it (build.sh), makes a
# throwaway CA, starts the image's default command with the node's certificate mounted
# and its gRPC port published, then, from this machine over TLS, lists sweeps as an
# admin and runs `accelbench doctor` against it; finally stops it with SIGTERM, which it
# must answer by exiting 0.
#   bash ops/container/check.sh [BUILD FLAGS…]
# CONTAINER_RUN_FLAGS adds flags to `run` (the development VM of this project needs
# `--runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096`).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
engine="${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}"
[ -n "$engine" ] || { echo "check.sh: neither podman nor docker is installed" >&2; exit 1; }
image="$(bash ops/container/build.sh "$@")"
bin="$CARGO_TARGET_DIR/debug/accelbench"
work="$(mktemp -d -t accelbench-container.XXXXXX)"
name="accelbench-check-$$"
cleanup() {
    "$engine" rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" ca init --dir "$work/ca" >/dev/null
"$bin" ca issue --dir "$work/ca" --node coordinator >/dev/null
"$bin" ca issue --dir "$work/ca" --user admin --role admin >/dev/null
mkdir "$work/etc"
cp "$work/ca/ca.pem" "$work/etc/ca.pem"
cp "$work/ca/node-coordinator.pem" "$work/etc/node.pem"
cp "$work/ca/node-coordinator.key" "$work/etc/node.key"
# The image runs as uid 10001: the key must be readable by it (and nobody else).
if [ "$(id -u)" = 0 ]; then chown -R 10001 "$work/etc"; else chmod a+r "$work/etc/node.key"; fi

port=$((20000 + RANDOM % 20000))
# shellcheck disable=SC2086 # CONTAINER_RUN_FLAGS is a list of flags
"$engine" run -d --name "$name" ${CONTAINER_RUN_FLAGS:-} -p "127.0.0.1:$port:7070" \
    -v "$work/etc:/etc/accelbench:ro" "$image" >/dev/null
for _ in $(seq 100); do "$engine" logs "$name" 2>/dev/null | grep -q "^listening on" && break; sleep 0.2; done
"$engine" logs "$name" 2>/dev/null | grep -q "^listening on" || {
    "$engine" logs "$name" >&2
    echo "check.sh: the coordinator did not start in the container" >&2
    exit 1
}
url="https://127.0.0.1:$port"
export ACCELBENCH_CA="$work/ca/ca.pem" ACCELBENCH_CERT="$work/ca/admin-admin.pem" ACCELBENCH_KEY="$work/ca/admin-admin.key"
for _ in $(seq 25); do "$bin" sweep list --coordinator "$url" >/dev/null 2>&1 && break; sleep 0.2; done
"$bin" sweep list --coordinator "$url" >/dev/null
"$bin" doctor --coordinator "$url" --data-dir "$work/state" --warehouse "$work/warehouse"
"$engine" stop --time 45 "$name" >/dev/null
code="$("$engine" inspect -f '{{.State.ExitCode}}' "$name")"
[ "$code" = 0 ] || { "$engine" logs "$name" >&2; echo "check.sh: exit code $code after SIGTERM" >&2; exit 1; }
echo "container check passed: $image serves TLS on its published port and stops cleanly"
