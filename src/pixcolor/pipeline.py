"""Full-resolution colorization: ``load_model()`` and ``Colorizer.colorize()``.

The model sees L at its working size; its ab is upsampled back to the input's size and joined
with the input's own full-resolution L, so the output keeps every detail of the original
luminance, has exactly the input's size and orientation, and changes only colour. The full-size
work runs in horizontal strips, so memory stays bounded for very large photos.

Example:
    >>> import pixcolor
    >>> model = pixcolor.load_model()              # the shipped default, on the best device
    >>> out = model.colorize("grandma_1952.jpg")   # PIL RGB image, same size as the input
    >>> red_coat = model.colorize("grandma_1952.jpg", hints=[(120, 45, (200, 30, 40))])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from pixcolor.color import denormalize_ab, normalize_l, rgb_to_lab
from pixcolor.device import resolve_device
from pixcolor.errors import PixcolorError
from pixcolor.hints import Hint, check_inside, read_hints, render_hints
from pixcolor.imageio import DEFAULT_MAX_PIXELS, ImageInput, as_uint8_rgb
from pixcolor.models import hub
from pixcolor.multiscale import average_sizes, extra_sizes
from pixcolor.recolor import recolor_image
from pixcolor.working_size import DEFAULT_SIZE, check_size, working_shape

DEFAULT_MODEL = hub.DEFAULT_COLORIZER
# The JSON dict, (x, y, rgb) tuples or Hints, or the path of a hints JSON file.
HintsLike = Mapping[str, Any] | Sequence[Any] | str | Path | None


def available_models() -> list[str]:
    """Names of the colorization models shipped inside the package."""
    return hub.shipped("colorizer")


def network_stride(generator: nn.Module) -> int:
    """A colorizer's input sides are multiples of this: ``stride``, or U-Nets' ``2 ** num_downs``."""
    return int(getattr(generator, "stride", 2 ** getattr(generator, "num_downs", 8)))


def load_model(
    name_or_path: str | Path | None = None, device: str | torch.device | None = None
) -> Colorizer:
    """Load a colorizer: a shipped name (``available_models()``), or a folder / ``.safetensors``.

    Args:
        name_or_path: ``None`` for the shipped default, a shipped name, a model folder
            (``model.safetensors`` + ``config.json``, e.g. a training checkpoint folder), or a
            ``.safetensors`` file with its ``.json`` config beside it.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks the best available.

    Raises:
        PixcolorError: no such model, or an SRCNN upscaler; ConfigError / CheckpointError: a
            bad config field or weights that do not fit (one line, naming the file).
    """
    network, config = hub.load_network(name_or_path, "colorizer")
    return Colorizer(network, config, device=device)


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
        self.size = check_size(config.get("size", DEFAULT_SIZE), "model config: size")
        self.extra_sizes = extra_sizes(config)  # averaged in where the size is the model's
        self.stride = network_stride(generator)
        last = self.device.type in ("cpu", "cuda")
        fmt = torch.channels_last if last else torch.contiguous_format
        self.model = generator.to(self.device, memory_format=fmt).eval()
        self.model.requires_grad_(False)
        self._hint_colorizer: Colorizer | None = None

    @property
    def takes_hints(self) -> bool:
        """Whether this network itself follows colour hints (a hint-conditioned EffUNet)."""
        return bool(getattr(self.model, "takes_hints", False))

    def hint_colorizer(self) -> Colorizer:
        """The colorizer that follows hints for this one: itself if its network takes hints,
        else the shipped model its config names in ``hints_model`` (loaded once, same device).

        Raises:
            PixcolorError: the model takes no hints and names no model that does.
        """
        if self.takes_hints:
            return self
        if self._hint_colorizer is None:
            name = self.config.get("hints_model")
            if not name:
                raise PixcolorError(
                    f"this {self.name} model takes no colour hints; use a hint model "
                    "(--model hints, or a model trained with hints)"
                )
            self._hint_colorizer = load_model(name, device=self.device)
        return self._hint_colorizer

    def share_hint_colorizer(self, colorizer: Colorizer) -> None:
        """Use ``colorizer`` (loaded, taking hints) as the model :meth:`hint_colorizer` loads."""
        if not colorizer.takes_hints:
            raise PixcolorError(f"this {colorizer.name} model takes no colour hints")
        self._hint_colorizer = colorizer

    @property
    def name(self) -> str:
        """Architecture name from the model config."""
        return str(self.config.get("arch", "?"))

    def check_stochastic(self) -> None:
        """Raise PixcolorError unless the model has dropout (``stochastic=True`` turns it on)."""
        if not any(isinstance(m, (nn.Dropout, nn.Dropout2d)) for m in self.model.modules()):
            raise PixcolorError(
                f"--stochastic (stochastic=True) needs a model with dropout; this {self.name} "
                "model has none, so every run would give the same colours"
            )

    @torch.inference_mode()
    def predict_ab(
        self, L: Tensor, *, stochastic: bool = False, hints: Tensor | None = None
    ) -> Tensor:
        """Run the generator: ``L (B,1,h,w)`` in Lab units 0..100 -> ab ``(B,2,h,w)`` Lab units.

        ``hints`` is a ``(B, 3, h, w)`` hint map (:func:`pixcolor.hints.render_hints`); only a
        network that takes hints accepts one.
        """
        if stochastic:
            self.check_stochastic()
        dropouts = [m for m in self.model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]
        for m in dropouts:
            m.train(stochastic)
        x = normalize_l(L.to(self.device)).contiguous(memory_format=torch.channels_last)
        if hints is None:
            ab = self.model(x).float()
        else:
            ab = self.model(x, hints.to(self.device, torch.float32)).float()
        for m in dropouts:
            m.eval()
        return denormalize_ab(ab).cpu()

    def colorize(
        self,
        image: ImageInput,
        *,
        size: int | None = None,
        stochastic: bool = False,
        saturation: float = 1.0,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        hints: HintsLike = None,
    ) -> Image.Image:
        """Colorize one image at its own resolution.

        Args:
            image: a path, PIL image, uint8 array ``(H, W[, C])`` or tensor ``(C, H, W)``
                (uint8, or float in [0, 1]). Colour inputs are colorized from their luminance.
            size: one working size in [32, 2048] (default: the model's own and its ``extra_sizes``,
                :mod:`pixcolor.multiscale`; with hints, the hint model's size).
            stochastic: keep dropout on, pix2pix style (different colours per call); only for
                models with dropout (the shipped ones have none: PixcolorError).
            saturation: colour strength, a factor on the predicted ab in [0, 2]: 1 is the
                model's own colours, 0 gray (the input's luminance), 2 twice as strong.
            max_pixels: refuse larger images (decompression bombs).
            hints: colour hints (:mod:`pixcolor.hints`): the ``{"points": [...]}`` dict, a list
                of ``(x, y, (r, g, b))`` tuples in input pixels, the path of a hints JSON file,
                or ``None``. With hints, the
                image runs through :meth:`hint_colorizer`, whose colours are then made to meet
                each hint exactly, the correction spread along the photo's lightness and
                fading with distance (:func:`pixcolor.levin.spread_residuals`).

        Returns:
            An RGB PIL image of exactly the input's size.

        Raises:
            HintError: a malformed hint or a point outside the image.
        """
        return self.colorize_batch(
            [image], size=size, stochastic=stochastic, saturation=saturation,
            max_pixels=max_pixels, hints=[hints],
        )[0]  # fmt: skip

    def colorize_batch(
        self,
        images: Sequence[ImageInput],
        *,
        size: int | None = None,
        stochastic: bool = False,
        saturation: float = 1.0,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        hints: Sequence[HintsLike] | None = None,
    ) -> list[Image.Image]:
        """Colorize several images; those sharing a working shape run as one model batch.

        ``hints``, if given, holds one entry per image (``None``: no hints for that image).

        Raises:
            ConfigError: ``size`` is not a whole number in [32, 2048].
            ImageReadError: an unreadable image, or one of zero size or over ``max_pixels``.
            HintError: a malformed hint or a point outside its image.
        """
        size = None if size is None else check_size(size)
        if hints is not None and len(hints) != len(images):
            raise ValueError(f"{len(hints)} hint entries for {len(images)} images")
        entries = [None] * len(images) if hints is None else list(hints)
        parsed = [read_hints(h) for h in entries]  # (hints, the name their errors use)
        arrays: list[np.ndarray | None] = [as_uint8_rgb(im, max_pixels=max_pixels) for im in images]
        smalls = [
            self.working_l(a, self._work_size(size, bool(p)))
            for a, (p, _) in zip(arrays, parsed, strict=True)
        ]
        maps = [
            self._hint_map(p, a.shape[:2], s.shape[-2:], src) if p else None
            for (p, src), a, s in zip(parsed, arrays, smalls, strict=True)
        ]
        ab_small: list[Tensor | None] = [None] * len(arrays)
        groups: dict[tuple[int, int, bool], list[int]] = {}
        for i, s in enumerate(smalls):
            groups.setdefault((*s.shape[-2:], maps[i] is not None), []).append(i)
        for (*_, hinted), idx in groups.items():
            L = torch.cat([smalls[i] for i in idx])
            if hinted:
                ab = self.predict_hinted_ab(L, torch.cat([maps[i] for i in idx]), stochastic)
            else:
                ab = self.predict_ab(L, stochastic=stochastic)
                if size is None:  # the model's own sizes: its extra ones averaged in
                    rgbs = [arrays[i] for i in idx]
                    ab = average_sizes(self, rgbs, list(ab), stochastic=stochastic)
            for j, i in enumerate(idx):
                ab_small[i] = ab[j]
        outputs = []
        for i, ab in enumerate(ab_small):
            rgb, arrays[i] = arrays[i], None  # drop each input once used (huge photos)
            outputs.append(Image.fromarray(self.compose(rgb, ab, saturation=saturation)))
        return outputs

    def predict_hinted_ab(self, L: Tensor, hint_maps: Tensor, stochastic: bool = False) -> Tensor:
        """Working-size ab with hints: :meth:`hint_colorizer`'s prediction, made to meet each
        hint exactly with the correction spread along the lightness and fading with distance
        (:func:`pixcolor.levin.spread_residuals`).

        Args:
            L: ``(B, 1, h, w)`` Lab L, 0..100, at the working size.
            hint_maps: ``(B, 3, h, w)`` (:func:`pixcolor.hints.render_hints`).
            stochastic: dropout on (models with dropout only).

        Returns:
            ``(B, 2, h, w)`` ab in Lab units.
        """
        from pixcolor.levin import spread_residuals

        ab = self.hint_colorizer().predict_ab(L, stochastic=stochastic, hints=hint_maps)
        met = [
            spread_residuals(a.numpy(), light[0].numpy(), m)
            for a, light, m in zip(ab, L, hint_maps, strict=True)
        ]
        return torch.from_numpy(np.stack(met))

    @torch.inference_mode()
    def suggest_colors(
        self,
        image: ImageInput,
        x: float,
        y: float,
        *,
        k: int = 8,
        hints: HintsLike = None,
        size: int | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> list[tuple[int, int, int]]:
        """The ``k`` most likely colours at pixel ``(x, y)``, most likely first (Zhang et al.'s
        suggested palette): peaks of the model's ab distribution there, at least 20 ab units
        apart, each shown at the photo's own lightness at that point (kept within CIE L 35-85 so
        that the swatches stay tellable apart).

        Args:
            image: as for :meth:`colorize`; ``x``, ``y``: input pixels, origin top-left.
            k: how many colours (1-64).
            hints: hints already placed (then the hint model's distribution is used).
            size: working size (default: the model's; with hints, the hint model's).

        Returns:
            ``k`` ``(r, g, b)`` tuples of ints 0-255 (fewer if the distribution has fewer peaks).

        Raises:
            HintError: the point is outside the image; PixcolorError: not an ab-bin model.
        """
        from pixcolor.suggest import palette_at

        if not 1 <= k <= 64:
            raise ValueError(f"k must be in [1, 64], got {k}")
        rgb = as_uint8_rgb(image, max_pixels=max_pixels)
        parsed, source = read_hints(hints)
        check_inside([Hint(x, y, (0, 0, 0))], rgb.shape[:2], "suggest_colors")
        small = self.working_l(rgb, self._work_size(size, bool(parsed)))
        model = self.hint_colorizer() if parsed else self
        if getattr(model.model, "output_kind", None) != "bins":
            raise PixcolorError(f"suggested colours need an ab-bin model; this is {self.name}")
        hint_map = None  # without hints, the model's own distribution (no hint model loaded)
        if parsed:
            hint_map = self._hint_map(parsed, rgb.shape[:2], small.shape[-2:], source)
            hint_map = hint_map.to(model.device)
        x_in = normalize_l(small.to(model.device)).contiguous(memory_format=torch.channels_last)
        return palette_at(model.model, x_in, hint_map, rgb, x, y, k)

    def _hint_map(
        self, hints: list[Hint], image_hw: tuple[int, ...], work_hw: tuple[int, ...], source: str
    ) -> Tensor:
        """The ``(1, 3, h, w)`` hint map; checks the hint model exists before any work."""
        self.hint_colorizer()
        return render_hints(hints, (image_hw[0], image_hw[1]), (work_hw[0], work_hw[1]), source)

    def _work_size(self, size: int | None, hinted: bool) -> int:
        """``size`` checked, or by default the hint model's working size with hints, else ours."""
        if size is not None:
            return check_size(size)
        return self.hint_colorizer().size if hinted else self.size

    def working_l(self, rgb: np.ndarray, size: int) -> Tensor:
        """``(1, 1, h, w)`` L, Lab 0..100, of ``rgb (H, W, 3)`` uint8 resized bicubic to ``size``."""
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


@lru_cache(maxsize=2)
def shipped_model(name: str = DEFAULT_MODEL) -> Colorizer:
    """The shipped colorizer ``name`` on the best device, loaded once per process (at most two
    kept; ``shipped_model.cache_clear()`` frees them). :func:`colorize` uses it; load your own
    with :func:`load_model` to choose the device or to keep the memory under your control."""
    return load_model(name)


def colorize(
    image: ImageInput,
    *,
    model: Colorizer | str | Path | None = None,
    size: int | None = None,
    stochastic: bool = False,
    saturation: float = 1.0,
) -> Image.Image:
    """One call: colorize ``image``, as :meth:`Colorizer.colorize` does.

    Args:
        image: a path, PIL image, uint8 array or tensor (see :meth:`Colorizer.colorize`).
        model: a :class:`Colorizer`, a shipped name (loaded once per process and kept, see
            :func:`shipped_model`), or a model folder / file (loaded on every call: use
            :func:`load_model` once for many images).
        size: one working size (default: the model's own and its ``extra_sizes``; 224 and
            352 for the shipped default).
        stochastic: dropout on (models with dropout only).
        saturation: colour strength in [0, 2] (1: the model's own, 0: gray).

    Returns:
        An RGB PIL image of exactly the input's size.
    """
    if model is None or (isinstance(model, str) and model in available_models()):
        model = shipped_model(model or DEFAULT_MODEL)
    elif not isinstance(model, Colorizer):
        model = load_model(model)
    return model.colorize(image, size=size, stochastic=stochastic, saturation=saturation)
