"""Shared fixtures: seeded randomness and the optional ../shared/data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

# ../shared/data next to the repository root (tests/ -> repo root -> ..).
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


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
    """Path of ../shared/data; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found: {SHARED_DATA}")
    return SHARED_DATA
