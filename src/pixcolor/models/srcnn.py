"""SRCNN super-resolution (Dong et al., "Image Super-Resolution Using Deep Convolutional
Networks", TPAMI 2016): three convs refining an image that was already upscaled (bicubic).

``"955"`` is the paper's 9-5-5 network (f1=64, f2=32; 57,281 parameters for one channel),
``"915"`` the original 9-1-5 with a 1x1 middle layer. Every conv uses "same" padding
(``k // 2``) in ``replicate`` mode, so the output keeps the input size and borders do not darken
the way zero padding would make them.

Init: Kaiming-normal (fan-in, ReLU gain) for the two ReLU layers and N(0, 0.001) for the
linear reconstruction layer, zero biases. The paper draws every weight from N(0, 0.001); that
works but needs many more steps before the loss moves, so Kaiming is the default here.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

__all__ = ["SRCNN"]

SRCNNVariant = Literal["955", "915"]

_KERNELS: dict[str, tuple[int, int, int]] = {"955": (9, 5, 5), "915": (9, 1, 5)}
LAST_LAYER_LR_SCALE = 0.1  # the paper trains the last layer at 1e-5 vs 1e-4 for the others


def _conv(in_ch: int, out_ch: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=k, padding=k // 2, padding_mode="replicate")


class SRCNN(nn.Module):
    """Patch extraction -> non-linear mapping -> reconstruction, all at the input size.

    Args:
        channels: image channels in and out (1 for Y or L).
        variant: kernel sizes ``"955"`` (9-5-5) or ``"915"`` (9-1-5).
        f1: filters of the first layer.
        f2: filters of the second layer.

    Shapes:
        input ``(B, channels, H, W)``, the low-resolution image already resized to the target
        size -> ``(B, channels, H, W)`` in the same value range (no output activation).

    Example:
        >>> import torch
        >>> net = SRCNN()
        >>> net(torch.zeros(1, 1, 33, 33)).shape
        torch.Size([1, 1, 33, 33])
    """

    def __init__(
        self, channels: int = 1, variant: SRCNNVariant = "955", f1: int = 64, f2: int = 32
    ) -> None:
        super().__init__()
        if variant not in _KERNELS:
            raise ValueError(f"variant must be one of {sorted(_KERNELS)}, got {variant!r}")
        k1, k2, k3 = _KERNELS[variant]
        self.variant = variant
        self.features = nn.Sequential(
            _conv(channels, f1, k1),  # (B, f1, H, W) patch extraction
            nn.ReLU(),
            _conv(f1, f2, k2),  # (B, f2, H, W) non-linear mapping
            nn.ReLU(),
        )
        self.reconstruct = _conv(f2, channels, k3)  # (B, channels, H, W)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal ReLU layers, N(0, 0.001) reconstruction layer, zero biases."""
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.reconstruct.weight, 0.0, 0.001)
        nn.init.zeros_(self.reconstruct.bias)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer groups as in the paper: all layers at ``lr`` but the last at ``lr / 10``.

        Example:
            >>> import torch
            >>> opt = torch.optim.Adam(SRCNN().param_groups(1e-4))
            >>> [group["lr"] for group in opt.param_groups]
            [0.0001, 1e-05]
        """
        return [
            {"params": list(self.features.parameters()), "lr": lr},
            {"params": list(self.reconstruct.parameters()), "lr": lr * LAST_LAYER_LR_SCALE},
        ]

    def forward(self, x: Tensor) -> Tensor:
        """Refine ``x`` of shape ``(B, channels, H, W)``; returns the same shape."""
        return self.reconstruct(self.features(x))
