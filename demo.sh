#!/usr/bin/env bash
# One-command demo on a fresh Debian 12 machine: installs nginx, pebble and
# this plugin, then issues, installs and renews a certificate for two names
# against a local ACME CA, and shows what changed.  Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
if ! command -v pebble >/dev/null || ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "== installing nginx and pebble (apt-get)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light pebble openssl >/dev/null
fi
if ! python3 -c "import certbot_nginx_webroot" 2>/dev/null; then
    echo "== installing certbot and the plugin (pip)"
    python3 -m pip install -q -e .
fi
exec python3 bench/demo.py
