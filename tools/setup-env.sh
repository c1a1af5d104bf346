# Sourced by demo.sh and test.sh: makes this checkout runnable on a stock
# Debian 12 or 13 server, and does nothing that is already done.
#
# - System tools from apt, only those missing: nginx (any nginx already
#   installed is used as it is), pebble and pebble-challtestsrv (a local ACME
#   CA), openssl, haproxy (the tests of nginx behind a load balancer),
#   openssh-server and iproute2 (the fleet lab: nginx nodes reached over
#   ssh), and python3-venv (Debian's python3 has no venv or pip).
# - Python packages in a virtual environment inside the checkout, .venv,
#   never in the system Python: certbot, acme, this plugin (editable), pytest
#   and certbot-nginx (the tests that move a certificate from it).
#   Reinstalled only when setup.py changed since the last install.
#
# Afterwards VENV_PYTHON is the venv's interpreter and PATH has /usr/sbin.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"  # nginx lives in /usr/sbin
export PIP_DISABLE_PIP_VERSION_CHECK=1

_setup_fail() { echo "setup: $*" >&2; exit 1; }

_missing_packages() {
    command -v nginx >/dev/null || echo nginx-light
    { command -v pebble >/dev/null && command -v pebble-challtestsrv >/dev/null; } || echo pebble
    command -v openssl >/dev/null || echo openssl
    # The tests of nginx behind a load balancer (listen ... proxy_protocol).
    command -v haproxy >/dev/null || echo haproxy
    # The fleet lab (tests/fleetlab.py): nodes reached over ssh, each with
    # its own sshd, and linked to the lab by veth pairs.
    [ -x /usr/sbin/sshd ] || echo openssh-server
    command -v ip >/dev/null || echo iproute2
    # Debian's python3 has no ensurepip (so no venv with pip) without python3-venv.
    python3 -c "import ensurepip, venv" 2>/dev/null || echo python3-venv
}

_need=$(_missing_packages | tr '\n' ' ')
if [ -n "${_need// }" ]; then
    # shellcheck disable=SC2086
    "$(dirname "${BASH_SOURCE[0]}")/apt-install" $_need || exit 1
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
VENV_PYTHON="$VENV/bin/python"
_stamp="$VENV/.certbot-nginx-webroot-installed"
_want=$(sha256sum "$ROOT/setup.py" | cut -d' ' -f1)
if ! "$VENV_PYTHON" -m pip --version >/dev/null 2>&1; then  # none yet, or half made
    echo "== creating the virtual environment $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || _setup_fail "python3 -m venv $VENV failed"
fi
if [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
    echo "== installing certbot, pytest and the plugin into $VENV (pip)"
    "$VENV_PYTHON" -m pip install -q -e "$ROOT[test,bench]" \
        || _setup_fail "pip install into $VENV failed (see above)"
    echo "$_want" >"$_stamp"
fi
