#!/usr/bin/env bash
# Installs what `onnxruntime_runner.py --provider openvino` (engine onnxruntime-openvino)
# needs: onnxruntime-openvino from PyPI, which provides the same `onnxruntime` module as
# the plain package and so gets a virtualenv of its own, layered over the runners'
# environment (install-onnxruntime.sh) for torch, transformers and onnx, which the ONNX
# export uses. Prints the agent's runner setting.
#   ops/runners/install-onnxruntime-openvino.sh     # $HOME/.cache/accelbench-ort-openvino
#   ACCELBENCH_ORT_OPENVINO_PY=/opt/ort-ov ops/runners/install-onnxruntime-openvino.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base="$("$here/install-onnxruntime.sh" | cut -d' ' -f1)"
venv="${ACCELBENCH_ORT_OPENVINO_PY:-$HOME/.cache/accelbench-ort-openvino}"
if ! "$venv/bin/python" -c 'import onnxruntime as o; assert "OpenVINOExecutionProvider" in o.get_available_providers()' >/dev/null 2>&1; then
    # The same interpreter as the base env, whose packages come after this env's own.
    "$("$base" -c 'import sys; print(sys.base_prefix)')/bin/python3" -m venv "$venv" >&2
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    "$base" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/zz-accelbench-py.pth"
    "$venv/bin/pip" install -q onnxruntime-openvino >&2
fi
echo "\"onnxruntime-openvino\" = [\"$venv/bin/python\", \"$here/onnxruntime_runner.py\", \"--provider\", \"openvino\"]"
