"""Full-resolution colorization: ``load_model()`` and ``Colorizer.colorize()``.

The model sees L at its working size; its ab is upsampled back to the input's size and joined
with the input's own full-resolution L, so the output keeps every detail of the original
luminance, has exactly the input's size and orientation, and changes only colour. The full-size
work runs in horizontal strips, so memory stays bounded for very large photos.

Example:
    >>> import pixcolor
    >>> model = pixcolor.load_model()              # the shipped default, on the best device
    >>> out = model.colorize("grandma_1952.jpg")   # PIL RGB image, same size as the input
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from pixcolor import checkpoint as ckpt
from pixcolor.color import denormalize_ab, normalize_l, rgb_to_lab
from pixcolor.device import resolve_device
from pixcolor.errors import PixcolorError
from pixcolor.imageio import DEFAULT_MAX_PIXELS, read_image, to_array
from pixcolor.models import create_generator, create_srcnn
from pixcolor.recolor import recolor_image

# Shipped weights: one folder per model name (model.safetensors + config.json).
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "default"

ImageInput = str | Path | Image.Image | np.ndarray | Tensor


def available_models() -> list[str]:
    """Names of the colorization models shipped inside the package."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(
        p.name
        for p in WEIGHTS_DIR.iterdir()
        if (p / ckpt.MODEL_FILE).is_file() and not p.name.startswith("srcnn")
    )


def model_path(name_or_path: str | Path) -> Path:
    """Folder of a shipped model name (a colorizer or ``srcnn-xN``); any other name as a path."""
    shipped = WEIGHTS_DIR / str(name_or_path)
    return shipped if (shipped / ckpt.MODEL_FILE).is_file() else Path(name_or_path)


def network_stride(generator: nn.Module) -> int:
    """Input height and width of a colorizer must be multiples of this: its ``stride``
    attribute, or ``2 ** num_downs`` for the U-Nets (256 for the seed's 8 downsamplings)."""
    return int(getattr(generator, "stride", 2 ** getattr(generator, "num_downs", 8)))


def load_network(
    name_or_path: str | Path,
    *,
    temperature: float | None = None,
    chroma_gain: float | None = None,
    cast_gain: float | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The bare network of a shipped name or model folder: a colorizer or an SRCNN.

    For re-exporting (``pixcolor export``, ONNX); colorizing goes through :func:`load_model`.

    Args:
        name_or_path: a shipped model name (``default``, ``srcnn-x3``) or a model folder / file.
        temperature: a new annealed-mean T for ab-bin colorizers, in [0.01, 1].
        chroma_gain: a new factor on the predicted ab of an ``effunet`` colorizer, in
            [0.5, 2] (1 = none); on the variation around each image's mean ab where the model
            has its own ``cast_gain``.
        cast_gain: a new factor on each image's mean predicted ab (``effunet``), in [0, 2].

    Returns:
        The fp32 network on the CPU in eval mode, and its config with ``kwargs`` as built.

    Raises:
        PixcolorError: no such model, ``temperature`` on a model without ab bins,
            ``chroma_gain`` or ``cast_gain`` on another architecture, or any out of range.
        CheckpointError: unreadable weights or config.
    """
    path = model_path(name_or_path)
    if not path.exists():
        raise PixcolorError(f"{name_or_path}: no such model folder or shipped model")
    weights, config = ckpt.read_model_config(path)
    kwargs = dict(config.get("kwargs", {}))
    overrides = [  # (kwarg, new value, whether it applies, to what, allowed range)
        ("temperature", temperature, kwargs.get("head") == "bins",
         "ab-bin models only (head='bins')", (0.01, 1.0)),
        ("chroma_gain", chroma_gain, config.get("arch") == "effunet",
         "effunet colorizers only", (0.5, 2.0)),
        ("cast_gain", cast_gain, config.get("arch") == "effunet",
         "effunet colorizers only", (0.0, 2.0)),
    ]  # fmt: skip
    for name, value, applies, only, (low, high) in overrides:
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if not applies:
            raise PixcolorError(f"{flag} applies to {only}")
        if not low <= value <= high:
            raise PixcolorError(f"{flag} must be in [{low:g}, {high:g}]")
        kwargs[name] = float(value)
    try:
        if config["arch"] == "srcnn":
            network = create_srcnn(**kwargs)
        else:
            network = create_generator(config["arch"], **kwargs)
    except (TypeError, ValueError) as exc:
        raise ckpt.CheckpointError(f"{path}: bad model config ({exc})") from None
    ckpt.load_into(network, weights)
    return network.float().eval(), {**config, "kwargs": kwargs}


def load_model(
    name_or_path: str | Path | None = None, device: str | torch.device | None = None
) -> Colorizer:
    """Load a colorizer: a shipped name (``available_models()``), or a folder / ``.safetensors``.

    Args:
        name_or_path: ``None`` for the shipped default, a shipped name, a model folder
            (``model.safetensors`` + ``config.json``, e.g. a training checkpoint folder), or a
            ``.safetensors`` file with its ``.json`` config beside it.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks the best available.
    """
    name = DEFAULT_MODEL if name_or_path is None else name_or_path
    path = WEIGHTS_DIR / str(name) if str(name) in available_models() else Path(name)
    if not path.exists():
        raise PixcolorError(f"{name}: no such model (shipped: {', '.join(available_models())})")
    weights, config = ckpt.read_model_config(path)
    try:
        generator = create_generator(config["arch"], **config.get("kwargs", {}))
    except (TypeError, ValueError) as exc:
        raise ckpt.CheckpointError(f"{path}: bad model config ({exc})") from None
    ckpt.load_into(generator, weights)
    return Colorizer(generator, config, device=device)


def _as_uint8_rgb(image: ImageInput, max_pixels: int | None) -> np.ndarray:
    """Any accepted input -> ``(H, W, 3)`` uint8 RGB array."""
    if isinstance(image, (str, Path, Image.Image)):
        return to_array(read_image(image, max_pixels=max_pixels))
    if isinstance(image, Tensor):
        t = image.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ValueError(f"tensor images must be (1|3, H, W), got {tuple(image.shape)}")
        if t.dtype != torch.uint8:
            t = (t.float().clamp(0, 1) * 255).round().to(torch.uint8)
        return t.expand(3, -1, -1).permute(1, 2, 0).numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"numpy images must be uint8, got {image.dtype}")
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
            raise ValueError(f"numpy images must be (H, W[, 1|3|4]), got {image.shape}")
        return np.ascontiguousarray(
            np.broadcast_to(image[..., :3], (*image.shape[:2], 3))
            if image.shape[2] == 1
            else image[..., :3]
        )
    raise TypeError(
        f"cannot colorize a {type(image).__name__}; give a path, PIL image, uint8 array or tensor"
    )


def working_shape(height: int, width: int, size: int, stride: int) -> tuple[int, int]:
    """Model input size for an image: about ``size**2`` pixels, aspect kept, multiples of ``stride``."""
    scale = size / math.sqrt(height * width)
    h = max(stride, round(height * scale / stride) * stride)
    w = max(stride, round(width * scale / stride) * stride)
    # A side raised to the ``stride`` minimum would leave the other one far too long (1x5000 at
    # size 256: 32 x 18112); cap it so that the model still sees about size**2 pixels.
    longest = max(stride, size * size // stride // stride * stride)
    if h == stride:
        w = min(w, longest)
    if w == stride:
        h = min(h, longest)
    return h, w


class Colorizer:
    """A loaded generator plus the full-resolution pre- and post-processing around it."""

    def __init__(
        self,
        generator: nn.Module,
        config: dict[str, Any],
        *,
        device: str | torch.device | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.config = dict(config)
        self.size = int(config.get("size", 256))  # default working size
        self.stride = network_stride(generator)
        fmt = (
            torch.channels_last if self.device.type in ("cpu", "cuda") else torch.contiguous_format
        )
        self.model = generator.to(self.device, memory_format=fmt).eval()
        self.model.requires_grad_(False)

    @property
    def name(self) -> str:
        """Architecture name from the model config."""
        return str(self.config.get("arch", "?"))

    @torch.inference_mode()
    def predict_ab(self, L: Tensor, *, stochastic: bool = False) -> Tensor:
        """Run the generator: ``L (B,1,h,w)`` in Lab units 0..100 -> ab ``(B,2,h,w)`` Lab units."""
        dropouts = [m for m in self.model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]
        for m in dropouts:
            m.train(stochastic)
        x = normalize_l(L.to(self.device)).contiguous(memory_format=torch.channels_last)
        ab = self.model(x).float()
        for m in dropouts:
            m.eval()
        return denormalize_ab(ab).cpu()

    def colorize(
        self,
        image: ImageInput,
        *,
        size: int | None = None,
        stochastic: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> Image.Image:
        """Colorize one image at its own resolution.

        Args:
            image: a path, PIL image, uint8 array ``(H, W[, C])`` or tensor ``(C, H, W)``
                (uint8, or float in [0, 1]). Colour inputs are colorized from their luminance.
            size: working size of the model (default: the model's, usually 256).
            stochastic: keep dropout on, pix2pix style (different colours per call).
            max_pixels: refuse larger images (decompression bombs).

        Returns:
            An RGB PIL image of exactly the input's size.
        """
        return self.colorize_batch(
            [image], size=size, stochastic=stochastic, max_pixels=max_pixels
        )[0]

    def colorize_batch(
        self,
        images: Sequence[ImageInput],
        *,
        size: int | None = None,
        stochastic: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> list[Image.Image]:
        """Colorize several images; those sharing a working shape run as one model batch."""
        arrays: list[np.ndarray | None] = [_as_uint8_rgb(im, max_pixels) for im in images]
        smalls = [self._small_l(a, size or self.size) for a in arrays]
        ab_small: list[Tensor | None] = [None] * len(arrays)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(smalls):
            groups.setdefault(tuple(s.shape[-2:]), []).append(i)
        for idx in groups.values():
            ab = self.predict_ab(torch.cat([smalls[i] for i in idx]), stochastic=stochastic)
            for j, i in enumerate(idx):
                ab_small[i] = ab[j]
        outputs = []
        for i, ab in enumerate(ab_small):
            rgb, arrays[i] = arrays[i], None  # drop each input once used (huge photos)
            out = self.compose(rgb, ab)
            del rgb
            outputs.append(Image.fromarray(out))
        return outputs

    def _small_l(self, rgb: np.ndarray, size: int) -> Tensor:
        """L at working size ``(1, 1, h, w)``, from an antialiased bicubic RGB resize."""
        h, w = working_shape(*rgb.shape[:2], size, self.stride)
        small = np.array(Image.fromarray(rgb).resize((w, h), Image.BICUBIC, reducing_gap=3.0))
        t = torch.from_numpy(small).permute(2, 0, 1).float().div_(255.0)
        return rgb_to_lab(t)[None, :1]

    def compose(self, rgb: np.ndarray, ab_small: Tensor, *, saturation: float = 1.0) -> np.ndarray:
        """Join the full-resolution L of ``rgb (H,W,3) uint8`` with upsampled ``ab_small (2,h,w)``.

        :func:`pixcolor.recolor.recolor_image`: bicubic upsampling of ab and a table-driven
        Lab -> sRGB conversion that keeps the input's luminance and pulls out-of-gamut colours
        towards the gray of the same luminance, in cache-sized tiles on ``torch.get_num_threads()``
        threads. Plain numpy, no compiler: a new process's first photo is as fast as the next
        (``benchmarks/first_photo.py``), and memory stays bounded for any image size or shape.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB; only its luminance is used.
            ab_small: ``(2, h, w)`` a and b in Lab units, at the working size.
            saturation: factor on ab (1 = the model's own colours, 0 = gray, up to 2).

        Returns:
            ``(H, W, 3)`` uint8 RGB.
        """
        ab = ab_small.detach().float().cpu().numpy()
        return recolor_image(rgb, ab, saturation=saturation, threads=torch.get_num_threads())


def colorize(
    image: ImageInput,
    *,
    model: Colorizer | str | Path | None = None,
    size: int | None = None,
    stochastic: bool = False,
) -> Image.Image:
    """One call: colorize ``image`` with ``model`` (a Colorizer, a name or path; default shipped)."""
    if not isinstance(model, Colorizer):
        model = load_model(model)
    return model.colorize(image, size=size, stochastic=stochastic)
