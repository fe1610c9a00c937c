"""A quick look at a data source: sample photos as ``L (gray) | colour`` rows in one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixcolor.color import lab_normalized_to_rgb, rgb_to_lab_normalized, uint8_to_float
from pixcolor.data import ColorizationDataset, Source, is_cache, load_cache_info
from pixcolor.imagewrite import save_image_atomic
from pixcolor.visualize import comparison_grid


def _resize(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """Bicubic resize of a ``(3, H, W)`` uint8 tile to ``(3, size, size)`` uint8."""
    img = Image.fromarray(rgb.permute(1, 2, 0).numpy()).resize(
        (size, size), Image.Resampling.BICUBIC
    )
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)


def preview_grid(
    source: Source,
    out: str | Path,
    *,
    n: int = 8,
    size: int = 128,
    seed: int = 0,
    overwrite: bool = True,
) -> Path:
    """Write a grid of ``n`` random samples, one row each: the L channel (gray) | colour.

    The samples go through the ``val`` transform (bicubic resize to ``size x size``); a cache
    is read at its own size and then resized. The gray column is the model's input as a
    picture: the sample's L with ``a = b = 0``.

    Args:
        source: Folder, ``.txt`` list, sequence of paths, or a prepared cache.
        out: Output image path (format from the suffix, e.g. ``.png``); written atomically.
        n: Number of samples (fewer if the source is smaller).
        size: Side of each tile, in pixels.
        seed: Seed of the sample choice.
        overwrite: Replace an existing ``out``.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    load_size = load_cache_info(source)["size"] if is_cache(source) else size  # type: ignore[arg-type]
    dataset = ColorizationDataset(source, size=load_size)
    picks = np.random.default_rng(seed).choice(len(dataset), min(n, len(dataset)), replace=False)
    tiles = [dataset[int(i)]["rgb"] for i in picks]  # (3, S, S) uint8 each
    if load_size != size:  # a cache of another size: resize with Pillow, like the transform
        tiles = [_resize(t, size) for t in tiles]
    rgb = uint8_to_float(torch.stack(tiles))  # (n, 3, size, size) in [0, 1]
    lightness, ab = rgb_to_lab_normalized(rgb)
    gray = lab_normalized_to_rgb(lightness, torch.zeros_like(ab))  # (n, 3, S, S) in [0, 1]
    grid = comparison_grid([gray, rgb], labels=["L (model input)", "colour"])
    return Path(save_image_atomic(grid, Path(out), overwrite=overwrite))
