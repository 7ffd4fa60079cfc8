#!/usr/bin/env bash
# Builds the coordinator's container image from this checkout:
#   bash ops/container/build.sh [ENGINE BUILD FLAGS…]
# compiles `accelbench` (the workspace's one profile, into the shared target folder),
# strips its debug sections into a fresh build context beside the Containerfile, and
# builds the image with podman or docker (CONTAINER_ENGINE picks one). IMAGE names it
# (default accelbench-coordinator:dev). Extra arguments go to the engine's `build`, e.g.
# `--from localhost/debian:bookworm-slim` where Docker Hub cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
engine="${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}"
[ -n "$engine" ] || { echo "build.sh: neither podman nor docker is installed" >&2; exit 1; }
image="${IMAGE:-accelbench-coordinator:dev}"

echo "building accelbench…" >&2
cargo build -q -p coordinator --bin accelbench
ctx="$(mktemp -d -t accelbench-image.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
objcopy --strip-debug "$CARGO_TARGET_DIR/debug/accelbench" "$ctx/accelbench"
cp ops/container/Containerfile "$ctx/Containerfile"
"$engine" build -t "$image" -f "$ctx/Containerfile" "$@" "$ctx" >&2
echo "$image"
