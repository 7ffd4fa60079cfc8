#!/usr/bin/env bash
# A real S3-compatible server for the object-store tests: moto's server (PyPI), in a
# virtualenv outside the clone so it installs once per machine.
#   ops/s3/moto-server.sh PORT     serves on 127.0.0.1:PORT until killed
set -euo pipefail
port="${1:?usage: moto-server.sh PORT}"
venv="${ACCELBENCH_MOTO_VENV:-$HOME/.cache/accelbench-moto}"
if ! "$venv/bin/python" -c 'import moto.server' >/dev/null 2>&1; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q "moto[server]==5.2.5" >&2
fi
exec "$venv/bin/python" -m moto.server -H 127.0.0.1 -p "$port"
