"""The models one server offers: colorizers by name, loaded and warmed before it starts, and the
SRCNN upscalers, each loaded once, on its first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pixcolor.errors import PixcolorError
from pixcolor.web.errors import ApiError

if TYPE_CHECKING:
    import torch

    from pixcolor.pipeline import Colorizer
    from pixcolor.sr import Upscaler

# Side of the gray square colorized once per model before the server says it is ready, so
# that the first photo pays no first-call costs (thread pools, kernels, lazy imports).
WARM_UP_SIDE = 64


class ModelSet:
    """Named colorizers (the first is the default) and a cache of upscalers by scale.

    Args:
        colorizers: loaded colorizers by the name the page shows (``default``, ``fast``).
        upscaler_loader: returns the upscaler for a scale; called once per scale, on first use
            (default: the shipped SRCNN weights, on the default colorizer's device).
    """

    def __init__(
        self,
        colorizers: Mapping[str, Colorizer],
        upscaler_loader: Callable[[int], Upscaler] | None = None,
    ) -> None:
        if not colorizers:
            raise ValueError("a server needs at least one colorizer")
        for name, colorizer in colorizers.items():
            if not callable(getattr(colorizer, "colorize", None)):
                raise TypeError(f"model {name!r} is a {type(colorizer).__name__}, not a Colorizer")
        self.colorizers = dict(colorizers)
        self.default = next(iter(self.colorizers))
        self._upscaler_loader = upscaler_loader or self._shipped_upscaler
        self._upscalers: dict[int, Upscaler] = {}
        self._lock = threading.Lock()

    def colorizer(self, name: str | None) -> Colorizer:
        """The colorizer called ``name`` (``None``: the default); 400 for an unknown name."""
        name = name or self.default
        if name not in self.colorizers:
            known = ", ".join(self.colorizers)
            raise ApiError(400, f"no model called {name[:40]!r} on this server (it has {known})")
        return self.colorizers[name]

    def upscaler(self, scale: int) -> Upscaler:
        """The upscaler for ``scale``, loaded on the first call for that scale and kept."""
        with self._lock:
            if scale not in self._upscalers:
                self._upscalers[scale] = self._upscaler_loader(scale)
            return self._upscalers[scale]

    def describe(self) -> list[dict[str, Any]]:
        """Name, device, working size and hints of each colorizer, the default first.

        ``hints`` says whether the model follows colour hints; when it does not, ``hints_note``
        is the model's own one-line reason.
        """
        from pixcolor.web.hinting import accepts_hints, hint_model

        described = []
        for name, c in self.colorizers.items():
            entry = {"name": name, "device": str(c.device), "size": int(c.size)}
            entry["hints"] = accepts_hints(c)
            if not entry["hints"]:
                try:
                    hint_model(c)
                except ApiError as exc:
                    entry["hints_note"] = exc.message
            described.append(entry)
        return described

    def _shipped_upscaler(self, scale: int) -> Upscaler:
        from pixcolor.sr import load_upscaler

        return load_upscaler(scale=scale, device=self.colorizers[self.default].device)


def load_models(
    names: Sequence[str], *, device: str | None, log: Callable[[str], None] = print
) -> ModelSet:
    """Load colorizers by name or path with the shared loader, and warm each one up.

    A hint model that several colorizers name in their config's ``hints_model`` (the shipped
    ``default`` and ``fast`` both name ``hints``) is loaded once and shared by all of them,
    and by the colorizer of that name if the server offers it too.

    Args:
        names: shipped model names or model folders; the first becomes the default.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks the best available.
        log: where to say what is loading (a line per model loaded).

    Raises:
        PixcolorError: an unknown model or device, or unreadable weights (one line).
    """
    from pixcolor import load_model

    loaded: dict[str, Colorizer] = {}  # every model loaded so far, by the name it was loaded by

    def load(name: str, device: str | torch.device | None, what: str) -> Colorizer:
        if name not in loaded:
            log(f"loading {what} {name} ...")
            loaded[name] = load_model(name, device=device)
            warm_up(loaded[name])
        return loaded[name]

    from pixcolor.models.hub import display_name

    colorizers: dict[str, Colorizer] = {}
    for name in dict.fromkeys(names):  # each name once; folders of one name get unique labels
        colorizer = load(name, device, "model")
        hints_name = colorizer.config.get("hints_model")
        if hints_name and not colorizer.takes_hints:
            try:
                hint_colorizer = load(str(hints_name), colorizer.device, "its hint model")
            except PixcolorError as exc:  # hints then fail with this message, photos still work
                log(f"colour hints will not work: {exc}")
            else:
                colorizer.share_hint_colorizer(hint_colorizer)
        colorizers[display_name(name, colorizers)] = colorizer
    return ModelSet(colorizers)


def warm_up(colorizer: Colorizer) -> None:
    """Colorize a small gray square once, so the first real photo is as fast as later ones."""
    gray = np.full((WARM_UP_SIDE, WARM_UP_SIDE), 128, dtype=np.uint8)
    colorizer.colorize(gray)
