"""pixcolor: colorize black-and-white photos in Lab space, enlarge them, train your own colorizer.

The one-call API mirrors whisper's ``load_model()`` / ``transcribe()``::

    import pixcolor
    model = pixcolor.load_model()            # the shipped default
    image = model.colorize("old_photo.jpg")  # PIL image, same size as the input
    big = pixcolor.upscale(image, scale=2)   # SRCNN super-resolution

Lower layers stay public: ``pixcolor.color`` (Lab conversions), ``pixcolor.models``
(``create_generator``), ``pixcolor.train.Trainer``, ``pixcolor.metrics``.

``import pixcolor`` is light: PyTorch and the models are imported on first use of one of the
names below (module ``__getattr__``, PEP 562), so command-line help and tools that only need
the version start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pixcolor._version import __version__

# Public name -> the module that defines it, imported on first access.
_LAZY = {
    "Colorizer": "pixcolor.pipeline",
    "available_models": "pixcolor.pipeline",
    "colorize": "pixcolor.pipeline",
    "load_model": "pixcolor.pipeline",
    "upscale": "pixcolor.sr",
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from pixcolor.pipeline import Colorizer, available_models, colorize, load_model
    from pixcolor.sr import upscale

__all__ = ["Colorizer", "__version__", "available_models", "colorize", "load_model", "upscale"]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pixcolor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """Module attributes, including the names not imported yet."""
    return sorted({*globals(), *_LAZY})
