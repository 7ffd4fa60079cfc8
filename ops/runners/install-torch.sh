#!/usr/bin/env bash
# Installs what ops/runners/torch_runner.py needs into a virtualenv outside the clone
# (PyPI only: torch, transformers < 5, safetensors) and prints the commands that start
# the runner, eager (`torch`) and through torch.compile (`torch-compile`, which needs a
# C++ compiler on the CPU), for the agent's runner settings. Reuses the env when it already works.
#   ops/runners/install-torch.sh            # $HOME/.cache/accelbench-py
#   ACCELBENCH_PY=/opt/torch-env ops/runners/install-torch.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/../bench/setup_torch.sh")"
echo "torch = [\"$python\", \"$here/torch_runner.py\"]"
echo "torch-compile = [\"$python\", \"$here/torch_runner.py\", \"--compile\"]"
