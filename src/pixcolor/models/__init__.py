"""Model registry: generators (L -> ab), discriminators and SRCNN, created by name.

Example:
    >>> from pixcolor.models import create_generator
    >>> g = create_generator("unet", base_channels=8, num_downs=5)
    >>> g(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 2, 32, 32])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from pixcolor.errors import ConfigError, PixcolorError

__all__ = ["create_discriminator", "create_generator", "list_discriminators", "list_generators"]


def _generators() -> dict[str, Callable[..., nn.Module]]:
    from pixcolor.models import effunet, unet

    return {
        "seed": unet.seed_unet,  # the write-up's exact layer configuration
        "pix2pix": unet.pix2pix_unet,  # reference unet_256 of the pix2pix paper
        "unet": unet.UNetGenerator,  # configurable width, depth and norm
        "effunet": effunet.EffUNet,  # EfficientNet-Lite0 encoder U-Net
    }


def _discriminators() -> dict[str, Callable[..., nn.Module]]:
    from pixcolor.models import patchgan

    return {"patchgan": patchgan.PatchDiscriminator}


def list_generators() -> list[str]:
    """Return the registered generator names."""
    return sorted(_generators())


def list_discriminators() -> list[str]:
    """Return the registered discriminator names."""
    return sorted(_discriminators())


def _create(table: dict[str, Callable[..., nn.Module]], kind: str, name: str, **kwargs: Any):
    """Build ``table[name](**kwargs)``; a bad name or bad arguments raise ``ConfigError``."""
    if name not in table:
        raise ConfigError(f"unknown {kind} {name!r}; choose from {sorted(table)}")
    try:
        return table[name](**kwargs)
    except PixcolorError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:  # unknown or out-of-range arguments
        raise ConfigError(f"{kind} {name!r} cannot be built with {kwargs}: {exc}") from exc


def create_generator(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered generator by name; ``kwargs`` go to its constructor."""
    return _create(_generators(), "generator", name, **kwargs)


def create_discriminator(name: str = "patchgan", **kwargs: Any) -> nn.Module:
    """Build a registered discriminator by name; ``kwargs`` go to its constructor."""
    return _create(_discriminators(), "discriminator", name, **kwargs)


def create_srcnn(variant: str = "955", **kw: Any) -> nn.Module:
    """Build an SRCNN super-resolution net (``"955"`` or ``"915"``); ``kw`` go to ``SRCNN``."""
    from pixcolor.models.srcnn import SRCNN

    return SRCNN(variant=variant, **kw)
