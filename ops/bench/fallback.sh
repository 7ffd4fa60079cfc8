#!/usr/bin/env bash
# Shows the kernels' run-time dispatch falling back on CPUs without AVX-512: runs the
# `kernels` crate's tests (each kernel under the best instruction set and under scalar
# code, against an f64 reference), the engine's fused-encoder and quantized-decoder tests (against
# candle-transformers, whose gemm dispatches too) and the `epilogues` bench on emulated CPUs with
# qemu-user: Haswell (AVX2 + FMA, no AVX-512) and Nehalem (SSE4.2: the scalar path),
# then natively. Installs qemu-user from Debian if it is missing.
#
#   bash ops/bench/fallback.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
if ! command -v qemu-x86_64 >/dev/null; then
    sudo_or_not=""; [ "$(id -u)" -ne 0 ] && sudo_or_not="sudo"
    $sudo_or_not apt-get install -y -q qemu-user >&2
fi
# The lib test binary of crate $1.
test_binary() {
    cargo test -p "$1" --lib --no-run --message-format=json 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m["profile"]["test"]:
        print(m["executable"])' "$1"
}
tests=$(test_binary kernels)
engine_tests=$(test_binary agent)
cargo build -q -p kernels --example epilogues
bench="$CARGO_TARGET_DIR/debug/examples/epilogues"
for cpu in Haswell Nehalem native; do
    echo "== $cpu"
    if [ "$cpu" = native ]; then run=(); else run=(qemu-x86_64 -cpu "$cpu"); fi
    "${run[@]}" "$tests" -q 2>&1 | grep -E "test result|FAILED|panicked"
    "${run[@]}" "$engine_tests" -q engine::fused engine::encoder engine::quantized 2>&1 | grep -E "test result|FAILED|panicked"
    if [ "$cpu" = native ]; then skip=(); else skip=(--skip-gemm); fi
    "${run[@]}" "$bench" "${skip[@]}" 2>&1 | grep -v "TCG doesn't support"
done
