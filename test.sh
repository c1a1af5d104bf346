#!/usr/bin/env bash
# The whole test suite, end-to-end tests included: installs what is missing
# first (as demo.sh does), then runs pytest from .venv.  Arguments go to
# pytest (default: tests).
set -euo pipefail
cd "$(dirname "$0")"
. tools/setup-env.sh
# Everything the end-to-end tests need is installed now, so a missing tool is
# a broken set-up: with CI set the tests fail on it instead of skipping.
export CI="${CI:-true}"
exec "$VENV_PYTHON" -m pytest -p no:cacheprovider "${@:-tests}"
