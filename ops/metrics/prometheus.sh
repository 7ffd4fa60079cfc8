#!/usr/bin/env bash
# Makes sure a Prometheus server is installed (the Debian package), for the test that
# scrapes the coordinator with a real one (tests/tests/prometheus.rs). Prints the path
# of the `prometheus` binary. Only installs; never starts the packaged service.
set -euo pipefail
if ! command -v prometheus >/dev/null; then
    sudo_or_not=""; [ "$(id -u)" -ne 0 ] && sudo_or_not="sudo -n"
    # The package's own service would take port 9090; tests start their own server.
    echo exit 101 | $sudo_or_not tee /usr/sbin/policy-rc.d >/dev/null 2>&1 || true
    $sudo_or_not chmod +x /usr/sbin/policy-rc.d 2>/dev/null || true
    DEBIAN_FRONTEND=noninteractive $sudo_or_not apt-get install -y -q prometheus >&2 \
        || { $sudo_or_not apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $sudo_or_not apt-get install -y -q prometheus >&2; }
    $sudo_or_not rm -f /usr/sbin/policy-rc.d 2>/dev/null || true
fi
command -v prometheus
