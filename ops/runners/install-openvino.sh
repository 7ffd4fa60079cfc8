#!/usr/bin/env bash
# Installs what ops/runners/openvino_runner.py needs into the runners' virtualenv (PyPI only:
# torch and transformers for the ONNX export, from install-torch.sh; then onnx and
# openvino) and prints the command that starts the runner, for the agent's runner settings.
#   ops/runners/install-openvino.sh            # $HOME/.cache/accelbench-py
#   ACCELBENCH_PY=/opt/runner-env ops/runners/install-openvino.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/../bench/setup_torch.sh")"
if ! "$python" -c 'import onnx, onnxscript, openvino' >/dev/null 2>&1; then
    "$python" -m pip install -q onnx onnxscript openvino >&2
fi
echo "$python $here/openvino_runner.py"
