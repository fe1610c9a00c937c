"""Shared fixtures: seeded randomness and the optional data folder (``PIXCOLOR_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

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
