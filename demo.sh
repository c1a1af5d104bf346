#!/usr/bin/env bash
# One-command demo on a Debian 12 or 13 machine: installs what is missing (nginx,
# pebble from apt; certbot and this plugin into .venv), then issues, installs
# and renews a certificate for two names against a local ACME CA, with its
# own nginx on loopback ports, and shows what changed.  Cleans up after
# itself; an nginx the machine already runs is left alone.
set -euo pipefail
cd "$(dirname "$0")"
. tools/setup-env.sh
exec "$VENV_PYTHON" bench/demo.py
