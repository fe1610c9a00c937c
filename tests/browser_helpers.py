"""The headless system Chromium of the browser tests (tests/test_web_browser*.py).

They need the system Chromium at /usr/bin/chromium and the ``playwright`` package (only its
driver: never ``playwright install``); ``.ci/browser_deps.sh`` installs both. The ``browser``
and ``screenshot_dir`` fixtures are in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_playwright() -> ModuleType:
    """``playwright.sync_api``; skips the test module that calls it at import time (or the
    test, from a fixture) when Chromium or playwright is missing."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found (run .ci/browser_deps.sh)", allow_module_level=True)
    return pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (run .ci/browser_deps.sh)"
    )
