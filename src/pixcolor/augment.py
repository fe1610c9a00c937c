"""Batched augmentation on the training device, driven by an explicit generator.

Doing it here (not in data-loader workers) keeps the Lab conversion and the resizes batched on
the device, and makes every batch's augmentation a pure function of ``(seed, epoch, step)``, so
a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def batch_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    """Return a CPU generator whose stream depends only on ``(seed, epoch, step)``."""
    g = torch.Generator()
    g.manual_seed(((seed * 1_000_003 + epoch) * 1_000_003 + step) % 2**64)  # torch's seed range
    return g


def random_flip(
    images: Tensor, generator: torch.Generator, *, rank: int = 0, world_size: int = 1
) -> Tensor:
    """Flip each image of ``(B, C, H, W)`` horizontally with probability 0.5.

    Under DDP, ``rank``/``world_size`` draw for the global batch of ``B * world_size`` images
    and keep this rank's every ``world_size``-th draw (the images it holds, see
    ``EpochSampler``), so each image is flipped as in one process with the global batch.
    """
    flip = torch.rand(images.shape[0] * world_size, generator=generator)[rank::world_size] < 0.5
    if not flip.any():
        return images
    flip = flip.to(images.device).view(-1, 1, 1, 1)
    return torch.where(flip, images.flip(-1), images)


def random_resized_crop(
    images: Tensor,
    size: int,
    generator: torch.Generator,
    *,
    min_scale: float = 0.35,
    max_ratio: float = 4 / 3,
    rank: int = 0,
    world_size: int = 1,
) -> Tensor:
    """Crop a random box from each image and resize it to ``size x size`` (bicubic, antialiased).

    Args:
        images: ``(B, C, H, W)`` float images.
        size: output side.
        generator: drives the box choice.
        min_scale: smallest box area as a fraction of the image area.
        max_ratio: largest aspect ratio of the box (and its inverse the smallest).
        rank: this process's rank; boxes are drawn for the global batch (see ``random_flip``).
        world_size: number of processes sharing the global batch.

    Returns:
        ``(B, C, size, size)`` float, clamped to the input's range [0, 1].
    """
    b, _, h, w = images.shape
    n, mine = b * world_size, slice(rank, None, world_size)  # global draws, this rank's share
    area = torch.empty(n).uniform_(min_scale, 1.0, generator=generator)[mine] * h * w
    log_ratio = torch.empty(n).uniform_(
        -math.log(max_ratio), math.log(max_ratio), generator=generator
    )[mine]
    ratio = torch.exp(log_ratio)
    bw = torch.sqrt(area * ratio).round().clamp(8, w).long()
    bh = torch.sqrt(area / ratio).round().clamp(8, h).long()
    ux = torch.rand(n, generator=generator)[mine]
    uy = torch.rand(n, generator=generator)[mine]
    out = []
    for i in range(b):
        x0 = int(ux[i] * (w - bw[i] + 1))
        y0 = int(uy[i] * (h - bh[i] + 1))
        crop = images[i : i + 1, :, y0 : y0 + int(bh[i]), x0 : x0 + int(bw[i])]
        out.append(resize(crop, size, size))
    return torch.cat(out).clamp_(0.0, 1.0)


def resize(images: Tensor, height: int, width: int) -> Tensor:
    """Bicubic antialiased resize of ``(B, C, H, W)`` float images (no-op when the size matches)."""
    if images.shape[-2:] == (height, width):
        return images
    return F.interpolate(
        images, size=(height, width), mode="bicubic", align_corners=False, antialias=True
    )
