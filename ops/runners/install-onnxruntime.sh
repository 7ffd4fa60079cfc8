#!/usr/bin/env bash
# Installs what ops/runners/onnxruntime_runner.py needs into the runners' virtualenv (PyPI only:
# torch and transformers for the ONNX export, from install-torch.sh; then onnx and
# onnxruntime) and prints the command that starts the runner, for the agent's runner settings.
#   ops/runners/install-onnxruntime.sh            # $HOME/.cache/accelbench-py
#   ACCELBENCH_PY=/opt/runner-env ops/runners/install-onnxruntime.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/../bench/setup_torch.sh")"
if ! "$python" -c 'import onnx, onnxscript, onnxruntime' >/dev/null 2>&1; then
    "$python" -m pip install -q onnx onnxscript onnxruntime >&2
fi
echo "$python $here/onnxruntime_runner.py"
