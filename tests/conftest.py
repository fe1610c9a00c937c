"""Shared fixtures: seeded randomness, the optional data folder (``PIXCOLOR_DATA``), and the
headless browser of the web-page tests (tests/browser_helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, require_playwright

# Real photos for the few tests that need them: $PIXCOLOR_DATA, by default ../shared/data next to
# the repository root (tests/ -> repo root -> ..).
SHARED_DATA = Path(
    os.environ.get("PIXCOLOR_DATA")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "data"
)


@pytest.fixture
def rng() -> np.random.Generator:
    """A numpy Generator seeded 0, fresh for every test."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def torch_seed() -> None:
    """Seed torch's global RNG so every test is reproducible on its own."""
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The data folder ($PIXCOLOR_DATA); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"data folder not found: {SHARED_DATA} (set PIXCOLOR_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium (a playwright ``Browser``), one per test module; skips the test when
    Chromium or playwright is missing."""
    sync_api = require_playwright()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where browser tests save screenshots: ``$PIXCOLOR_SCREENSHOT_DIR``, else ``tmp_path``."""
    folder = Path(os.environ.get("PIXCOLOR_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
