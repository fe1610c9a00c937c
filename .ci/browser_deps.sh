#!/usr/bin/env bash
# Install what tests/test_web_browser.py needs on a fresh Debian machine:
#   - the system Chromium at /usr/bin/chromium (plus a font, so pages render text), and
#   - the Python package `playwright`, whose driver the test points at that Chromium
#     (executable_path="/usr/bin/chromium"). Never run `playwright install`: it downloads
#     browsers from outside the Debian archive, and the test does not use them.
# Usage: .ci/browser_deps.sh [--system-only]   (PYTHON=.venv/bin/python to choose the
# interpreter). --system-only installs Chromium alone: `make test` installs playwright with the
# dev extras.
set -euo pipefail
SYSTEM_ONLY=0
if [ "${1:-}" = "--system-only" ]; then SYSTEM_ONLY=1; fi

PYTHON="${PYTHON:-python3}"

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
        chromium fonts-dejavu-core
fi

/usr/bin/chromium --version
if [ "$SYSTEM_ONLY" = 1 ]; then exit 0; fi
"$PYTHON" -m pip install -q "playwright>=1.40"
"$PYTHON" -c "import playwright.sync_api; print('playwright driver ok')"
