#!/usr/bin/env bash
# Setup step of the candle-vs-PyTorch bench: a virtualenv with the PyPI torch wheel and
# transformers (<5, as optimum-style tooling expects), outside the clone so it is reused.
# Prints the python to use.
set -euo pipefail
venv="${ACCELBENCH_PY:-$HOME/.cache/accelbench-py}"
if ! "$venv/bin/python" -c 'import torch, transformers' >/dev/null 2>&1; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q torch "transformers<5" safetensors >&2
fi
echo "$venv/bin/python"
