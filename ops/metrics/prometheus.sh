#!/usr/bin/env bash
# Makes sure a Prometheus server is installed (the Debian package), for the test that
# scrapes the coordinator with a real one (tests/tests/prometheus.rs). Prints the path
# of the `prometheus` binary. Only installs; never starts the packaged service.
set -euo pipefail
if ! command -v prometheus >/dev/null; then
    sudo_or_not=""; [ "$(id -u)" -ne 0 ] && sudo_or_not="sudo -n"
    # The package's own service would take port 9090; tests start their own server. A
    # policy-rc.d that denies service starts keeps it stopped (one already there stays).
    ours=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo_or_not tee /usr/sbin/policy-rc.d >/dev/null && ours=1
        $sudo_or_not chmod +x /usr/sbin/policy-rc.d
    fi
    DEBIAN_FRONTEND=noninteractive $sudo_or_not apt-get install -y -q prometheus >&2 \
        || { $sudo_or_not apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $sudo_or_not apt-get install -y -q prometheus >&2; } \
        || true
    if [ -n "$ours" ]; then $sudo_or_not rm -f /usr/sbin/policy-rc.d; fi
fi
command -v prometheus
