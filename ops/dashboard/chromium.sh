#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is installed (the Debian `chromium` package), for
# the dashboard's browser tests (tests/tests/dashboard.rs) and ops/dashboard/screenshots.sh.
# Prints the path of the `chromium` binary.
set -euo pipefail
if ! command -v chromium >/dev/null; then
    sudo_or_not=""; [ "$(id -u)" -ne 0 ] && sudo_or_not="sudo -n"
    DEBIAN_FRONTEND=noninteractive $sudo_or_not apt-get install -y -q chromium >&2 \
        || { $sudo_or_not apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $sudo_or_not apt-get install -y -q chromium >&2; } \
        || true
fi
command -v chromium
