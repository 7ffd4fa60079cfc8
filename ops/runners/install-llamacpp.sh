#!/usr/bin/env bash
# Installs what ops/runners/llamacpp_runner.py needs (PyPI only): llama.cpp built from
# the sources vendored in llama-cpp-python's sdist, and those bindings, by
# ops/bench/setup_llamacpp.sh (~10 minutes on 2 cores the first time), into the
# runners' virtualenv; prints the command that starts the runner, for the agent's
# runner settings.
#   ops/runners/install-llamacpp.sh         # $HOME/.cache/accelbench-py, $HOME/.cache/accelbench-llamacpp
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench="$(bash "$here/../bench/setup_llamacpp.sh")"
python="$(bash "$here/../bench/setup_torch.sh")"
"$python" -c 'import safetensors' 2>/dev/null || "$python" -m pip install -q safetensors >&2
echo "env LLAMA_CPP_LIB_PATH=$(dirname "$bench") $python $here/llamacpp_runner.py"
