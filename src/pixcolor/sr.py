"""SRCNN super-resolution: MATLAB-compatible YCbCr and bicubic ``imresize``, the paper's
evaluation protocol, and the one-call :func:`upscale`.

SRCNN (Dong et al., TPAMI 2016) refines the luminance of an image that was first enlarged
with bicubic interpolation. Its published numbers come from MATLAB code, so this module
reproduces the two MATLAB functions they depend on:

- ``rgb2ycbcr`` (ITU-R BT.601, "studio swing": Y in [16, 235], Cb/Cr in [16, 240]);
- ``imresize(..., 'bicubic')``: Keys' cubic kernel with ``a = -0.5``, widened by ``1/scale``
  when shrinking (antialiasing), symmetric (mirror) border handling. The vectorised form
  follows the well-known Python ports (e.g. fatheral/matlab_imresize).

Example:
    >>> import pixcolor.sr as sr
    >>> big = sr.upscale("photo.png", scale=3)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from pixcolor import checkpoint as ckpt
from pixcolor.device import resolve_device
from pixcolor.errors import PixcolorError
from pixcolor.imageio import read_image
from pixcolor.models import create_srcnn

log = logging.getLogger(__name__)

# MATLAB rgb2ycbcr (ITU-R BT.601) for R, G, B in [0, 1]; outputs on the 0..255 scale.
YCBCR_FROM_RGB = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
)
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])
RGB_FROM_YCBCR = np.linalg.inv(YCBCR_FROM_RGB)
# Keys' cubic convolution kernel: a = -0.5 (MATLAB's "bicubic"), support [-2, 2].
CUBIC_WIDTH = 4.0
# SRCNN runs on tiles of this many output pixels per side (plus the receptive-field halo).
TILE = 512
SCALES_SHIPPED = (2, 3, 4)
WEIGHTS_DIR = Path(__file__).parent / "weights"  # same folder as pipeline.WEIGHTS_DIR

ImageInput = str | Path | Image.Image | np.ndarray | Tensor


# --- colour ----------------------------------------------------------------------------------


def _as_unit_float(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
    if not np.issubdtype(rgb.dtype, np.floating):
        raise TypeError(f"expected uint8 or float RGB, got {rgb.dtype}")
    return rgb.astype(np.float64)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` (BT.601) without its final rounding.

    Args:
        rgb: ``(H, W, 3)`` uint8 (0..255) or float in [0, 1].

    Returns:
        ``(H, W, 3)`` float64 YCbCr on the 0..255 scale: Y in [16, 235], Cb, Cr in [16, 240].

    Example:
        >>> rgb_to_ycbcr(np.array([[[255, 0, 0]]], np.uint8))[0, 0, 0].round(3)
        81.481
    """
    return _as_unit_float(rgb) @ YCBCR_FROM_RGB.T + YCBCR_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """MATLAB ``ycbcr2rgb``: ``(H, W, 3)`` YCbCr on the 0..255 scale -> float64 RGB in [0, 1].

    Values outside the RGB cube are clipped to [0, 1].
    """
    if ycbcr.ndim != 3 or ycbcr.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {ycbcr.shape}")
    rgb = (ycbcr.astype(np.float64) - YCBCR_OFFSET) @ RGB_FROM_YCBCR.T
    return np.clip(rgb, 0.0, 1.0)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """Luma Y of MATLAB ``rgb2ycbcr``: ``(H, W, 3)`` -> ``(H, W)`` float64 in [16, 235]."""
    return _as_unit_float(rgb) @ YCBCR_FROM_RGB[0] + YCBCR_OFFSET[0]


def quantize(x: np.ndarray) -> np.ndarray:
    """MATLAB ``uint8(x)``: round half away from zero, saturate to 0..255 (as float64)."""
    return np.clip(np.floor(np.asarray(x, np.float64) + 0.5), 0.0, 255.0)


# --- MATLAB imresize (bicubic) ------------------------------------------------------------------


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``contributions``: weights and 0-based source indices, each ``(out_len, P)``."""
    width = CUBIC_WIDTH / scale if scale < 1 else CUBIC_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # their 1-based positions in the input
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    index = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside
    dist = u[:, None] - index
    weights = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    index = mirror[np.mod(index.astype(np.int64) - 1, mirror.size)]
    used = np.any(weights != 0, axis=0)
    return weights[:, used], index[:, used]


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    weights, index = _contributions(img.shape[axis], out_len, scale)
    src = np.moveaxis(img, axis, 0)  # (in_len, ...)
    shape = (out_len,) + (1,) * (src.ndim - 1)
    out = np.zeros((out_len, *src.shape[1:]), dtype=np.float64)
    for tap in range(weights.shape[1]):  # a few taps; each is one vectorised gather
        out += weights[:, tap].reshape(shape) * src[index[:, tap]]
    return np.moveaxis(out, 0, axis)


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """MATLAB ``imresize(img, scale, 'bicubic')`` (antialiased when shrinking), in float64.

    Give exactly one of ``scale`` (output size ``ceil(scale * size)``, as MATLAB) or
    ``output_shape`` (per-axis scales ``out / in``). The dimension shrunk most is resized
    first, as MATLAB does. Values are not clipped.

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` array, any real dtype (computed in float64).
        scale: resize factor, e.g. ``1 / 3`` or ``3``.
        output_shape: ``(out_H, out_W)``.

    Returns:
        ``(out_H, out_W[, C])`` float64.

    Example:
        >>> imresize(np.array([[0.0, 1.0]]), 2)[0].tolist()
        [-0.09375, 0.203125, 0.796875, 1.09375]
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"img must be (H, W) or (H, W, C), got shape {arr.shape}")
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        shape = tuple(math.ceil(scale * n) for n in arr.shape[:2])
    else:
        shape = tuple(int(n) for n in output_shape)  # type: ignore[union-attr]
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"output_shape must be two positive ints, got {output_shape}")
        scales = (shape[0] / arr.shape[0], shape[1] / arr.shape[1])
    for axis in sorted((0, 1), key=lambda a: scales[a]):  # stable: height first on ties
        if shape[axis] != arr.shape[axis] or scales[axis] != 1.0:
            arr = _resize_axis(arr, axis, shape[axis], scales[axis])
    return arr


# --- the paper's evaluation --------------------------------------------------------------------


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``."""
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    return img[:h, :w]


def psnr_y(a: np.ndarray, b: np.ndarray, shave: int) -> float:
    """PSNR (dB) of two Y images on the 0..255 scale, quantised to 8 bits, border shaved."""
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    mse = float(np.mean((quantize(a) - quantize(b)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@dataclass(frozen=True)
class EvalImage:
    """One test image, prepared as the paper's ``demo_SR.m`` does.

    Attributes:
        name: file name.
        hr: ``(H, W)`` float64 ground-truth Y, 8-bit values in [16, 235], H and W mod-cropped.
        bicubic: ``(H, W)`` float64 bicubic baseline (down then up), 0..255 scale, unclipped.
    """

    name: str
    hr: np.ndarray
    bicubic: np.ndarray


def prepare_eval(hr_paths: Sequence[str | Path], scale: int) -> list[EvalImage]:
    """Read HR images and build the Y ground truth and bicubic input of the protocol.

    The Y is rounded to 8 bits, as MATLAB's ``rgb2ycbcr`` does for the uint8 images the
    paper's code reads; then ``imresize(Y, 1/scale)`` and ``imresize(LR, scale)``.
    """
    images = []
    for path in hr_paths:
        rgb = np.asarray(read_image(path))
        hr = modcrop(quantize(rgb_to_y(rgb)), scale)
        lr = imresize(hr, 1.0 / scale)
        images.append(EvalImage(Path(path).name, hr, imresize(lr, output_shape=hr.shape)))
    return images


def evaluate_prepared(
    images: Sequence[EvalImage],
    scale: int,
    model: nn.Module | None = None,
    *,
    self_ensemble: bool = False,
) -> dict[str, Any]:
    """PSNR (Y, 8-bit, ``scale`` pixels shaved) of bicubic and, with ``model``, SRCNN
    (with ``self_ensemble``, averaged over 8 flips / rotations, :func:`run_srcnn_x8`).

    Returns:
        ``{"scale", "images": [{"name", "bicubic", "srcnn"}], "bicubic", "srcnn"}`` with the
        means last; the ``srcnn`` entries are ``None`` without a model.
    """
    rows = []
    for im in images:
        row = {"name": im.name, "bicubic": psnr_y(im.hr, im.bicubic, scale), "srcnn": None}
        if model is not None:
            run = run_srcnn_x8 if self_ensemble else run_srcnn
            row["srcnn"] = psnr_y(im.hr, run(model, im.bicubic / 255.0) * 255.0, scale)
        rows.append(row)

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return float(np.mean(values)) if values else None

    return {"scale": scale, "images": rows, "bicubic": mean("bicubic"), "srcnn": mean("srcnn")}


def evaluate_sr(
    hr_paths: Sequence[str | Path],
    scale: int,
    model: nn.Module | None = None,
    *,
    self_ensemble: bool = False,
) -> dict[str, Any]:
    """The SRCNN paper's protocol on HR images (e.g. Set5); see :func:`evaluate_prepared`.

    Per image: Y (BT.601, 8-bit), mod-crop to ``scale``, LR = ``imresize(Y, 1/scale)``,
    bicubic = ``imresize(LR, scale)``, SRCNN = ``model(bicubic / 255) * 255``; PSNR on 8-bit
    values with ``scale`` border pixels shaved.
    """
    return evaluate_prepared(
        prepare_eval(hr_paths, scale), scale, model, self_ensemble=self_ensemble
    )


# --- running SRCNN ---------------------------------------------------------------------------


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


def as_uint8_rgb(image: ImageInput) -> np.ndarray:
    """Any accepted input -> ``(H, W, 3)`` uint8 RGB (paths read with :func:`read_image`)."""
    if isinstance(image, (str, Path, Image.Image)):
        return np.asarray(read_image(image))
    if isinstance(image, Tensor):
        t = image.detach().cpu()
        t = t[0] if t.ndim == 4 and t.shape[0] == 1 else t
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ValueError(f"tensor images must be (1|3, H, W), got {tuple(image.shape)}")
        if t.dtype != torch.uint8:
            t = (t.float().clamp(0, 1) * 255).round().to(torch.uint8)
        return np.ascontiguousarray(t.expand(3, -1, -1).permute(1, 2, 0).numpy())
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"numpy images must be uint8, got {image.dtype}")
        arr = image[..., None] if image.ndim == 2 else image
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise ValueError(f"numpy images must be (H, W[, 1|3|4]), got {image.shape}")
        return np.ascontiguousarray(
            np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[..., :3]
        )
    raise TypeError(
        f"cannot upscale a {type(image).__name__}; give a path, PIL image, uint8 array or tensor"
    )


def shipped_weights(scale: int) -> Path:
    """Folder of the shipped SRCNN weights for ``scale`` (may not exist)."""
    return WEIGHTS_DIR / f"srcnn-x{scale}"


def load_upscaler(
    path: str | Path | None = None, *, scale: int = 2, device: str | torch.device | None = None
) -> Upscaler:
    """Load SRCNN weights: a model folder / ``.safetensors`` file, or the shipped x``scale``.

    Raises:
        PixcolorError: no shipped weights for ``scale`` (and no ``path``), or ``path`` absent.
        CheckpointError: unreadable, corrupt or non-SRCNN weights.
    """
    if path is None:
        path = shipped_weights(scale)
        if not (path / ckpt.MODEL_FILE).is_file():
            raise PixcolorError(
                f"no shipped SRCNN weights for x{scale} (looked for {path / ckpt.MODEL_FILE}); "
                "train them with `pixcolor train-sr` and pass the export folder as model=/--model"
            )
    path = Path(path)
    if not path.exists():
        raise PixcolorError(f"{path}: no such SRCNN model folder or file")
    weights, config = ckpt.read_model_config(path)
    if config.get("arch") != "srcnn":
        raise ckpt.CheckpointError(f"{path}: not SRCNN weights (arch {config.get('arch')!r})")
    try:
        model = create_srcnn(**config.get("kwargs", {}))
    except (TypeError, ValueError) as exc:
        raise ckpt.CheckpointError(f"{path}: bad SRCNN config ({exc})") from None
    ckpt.load_into(model, weights)
    return Upscaler(model, config, device=device)


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
