#!/usr/bin/env bash
# Runs every fuzz target (coordinator/tests/fuzz.rs) for a time budget each and prints
# what each found: cases run, panics, hangs, and where each finding's input was saved.
#
#   bash ops/fuzz/run.sh [SECONDS_PER_TARGET]      # default 60
#
# Findings (inputs that panicked or took > 5 s) go to $ACCELBENCH_FUZZ_FINDINGS
# (default: $TMPDIR/accelbench-fuzz); add each to the corpus or as a unit test.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target}"
export ACCELBENCH_FUZZ_SECONDS="${1:-60}"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) | ${ACCELBENCH_FUZZ_SECONDS} s per target"
cargo test -q -p coordinator --test fuzz -- --nocapture --test-threads 1 2>&1 | grep -E "cases in|panic at|hang at|test result|FAILED"
