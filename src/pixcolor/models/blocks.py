"""Building blocks shared by the generators and the discriminator: norm layers and weight init.

The norm choice and the DCGAN-style init follow junyanz/pytorch-CycleGAN-and-pix2pix
(``get_norm_layer`` and ``init_weights(init_type="normal")`` in ``models/networks.py``).
"""

from __future__ import annotations

from typing import Literal

from torch import nn

__all__ = ["NormName", "conv_bias", "init_weights", "norm_layer"]

NormName = Literal["batch", "instance"]


def norm_layer(norm: NormName, channels: int) -> nn.Module:
    """Return the normalisation layer named ``norm`` for ``channels`` feature maps.

    ``"instance"`` is ``InstanceNorm2d(affine=False, track_running_stats=False)`` as in pix2pix,
    so it has no parameters and behaves the same in train and eval mode.

    Args:
        norm: ``"batch"`` or ``"instance"``.
        channels: number of channels C of the ``(B, C, H, W)`` input.

    Returns:
        The layer; it keeps the input shape.

    Raises:
        ValueError: for an unknown ``norm``.
    """
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"norm must be 'batch' or 'instance', got {norm!r}")


def conv_bias(norm: NormName) -> bool:
    """Whether a conv followed by ``norm`` needs its own bias.

    BatchNorm subtracts the mean and adds its own shift, so a bias before it is wasted; the
    non-affine InstanceNorm has no shift, so the conv keeps one (junyanz ``use_bias``).
    """
    return norm == "instance"


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise ``module`` and all its children in place, pix2pix style.

    Conv and transposed-conv weights are drawn from N(0, ``std``) and their biases set to 0;
    affine norm layers get gamma from N(1, ``std``) and beta 0. Other layers are left alone.

    Args:
        module: the network (or a single layer) to initialise.
        std: standard deviation of the normal draws (0.02 in pix2pix and DCGAN).

    Returns:
        ``module`` itself, for chaining.

    Example:
        >>> conv = init_weights(nn.Conv2d(3, 8, 3))
        >>> conv.bias.count_nonzero().item()
        0
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module
