"""U-Net generator: L_norm (B, 1, H, W) in [-1, 1] -> ab_norm (B, 2, H, W) in [-1, 1].

Written as explicit lists of down and up stages with a skip stack (the ``downs``/``ups`` layout
of lucidrains' ``Unet``), not junyanz's recursive ``UnetSkipConnectionBlock``. Two variants:

- ``"pix2pix"``: the reference ``unet_256`` of junyanz/pytorch-CycleGAN-and-pix2pix
  (1 -> 2 channels: 54,409,858 parameters).
- ``"seed"``: the layer list of the write-up this project started from
  (1 -> 2 channels: 54,410,242 parameters). It differs from pix2pix in three places:
  its encoder convs keep a bias even though BatchNorm follows (+2,432 at 64 channels),
  every decoder has dropout, and the input conv's output is not concatenated before the
  output layer (the output convT sees 64 instead of 128 channels, -2,048). The bias flags
  the write-up leaves implicit were found by trying all eight combinations of
  (middle conv, middle convT, output convT) against its count: only
  (False, False, True) gives 54,410,242, i.e. the same flags as pix2pix.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from pixcolor.models.blocks import NormName, conv_bias, init_weights, norm_layer

__all__ = ["UNetGenerator", "pix2pix_unet", "seed_unet"]

Variant = Literal["seed", "pix2pix"]

MAX_MULT = 8  # channel multiplier cap, as ngf * 8 in pix2pix


def _down(in_ch: int, out_ch: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=bias)


def _up(in_ch: int, out_ch: int, bias: bool) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=bias)


def _encoder(
    in_channels: int, ch: list[int], norm: NormName, bias: bool, seed: bool
) -> nn.ModuleList:
    """``downs``: ``downs[i]`` maps ``(B, ch[i-1], H / 2**i, W / 2**i)`` to
    ``(B, ch[i], H / 2**(i+1), W / 2**(i+1))`` (the input conv first, then LeakyReLU-conv-norm)."""
    downs = nn.ModuleList([nn.Sequential(_down(in_channels, ch[0], bias))])
    for i in range(1, len(ch) - 1):
        downs.append(
            nn.Sequential(
                nn.LeakyReLU(0.2),
                _down(ch[i - 1], ch[i], bias=True if seed else bias),
                norm_layer(norm, ch[i]),
            )
        )
    return downs


def _decoder(
    ch: list[int], norm: NormName, bias: bool, dropout: float, seed: bool
) -> nn.ModuleList:
    """``ups``, innermost first: level i takes cat(x, skip_i) with ``2 * ch[i]`` channels at
    ``H / 2**(i+1)`` and returns ``ch[i-1]`` channels at ``H / 2**i``."""
    ups = nn.ModuleList()
    num_downs = len(ch)
    for j, i in enumerate(range(num_downs - 2, 0, -1)):
        layers: list[nn.Module] = [
            nn.ReLU(),
            _up(2 * ch[i], ch[i - 1], bias),
            norm_layer(norm, ch[i - 1]),
        ]
        if dropout > 0 and (seed or j < num_downs - 5):
            layers.append(nn.Dropout(dropout))
        ups.append(nn.Sequential(*layers))
    return ups


class UNetGenerator(nn.Module):
    """Pix2Pix U-Net mapping lightness to chroma.

    Every stage halves (down) or doubles (up) the resolution with a 4x4, stride-2 conv, so the
    input's H and W must be divisible by ``2 ** num_downs``. Channels grow as
    ``base_channels * min(2**i, 8)``. The modules are

    - ``downs[0]``: Conv (no activation or norm before it, none after);
    - ``downs[1:]``: LeakyReLU(0.2) -> Conv -> Norm; each down's output is pushed on the skip stack;
    - ``mid``: LeakyReLU -> Conv -> ReLU -> ConvT -> Norm (the innermost level, no norm at 1x1);
    - ``ups``: ReLU -> ConvT -> Norm [-> Dropout] over ``cat(x, skip)``, innermost first;
    - ``out``: ReLU -> ConvT -> Tanh over ``cat(x, skips[0])`` (pix2pix) or ``x`` (seed).

    Activations are not in-place because the skip stack keeps the down outputs; junyanz's
    in-place LeakyReLU rewrites its skips, which changes nothing since every consumer of a skip
    starts with ReLU and ReLU(LeakyReLU(x)) == ReLU(x).

    Args:
        in_channels: input channels (1 for L).
        out_channels: output channels (2 for ab).
        base_channels: width of the first stage (``ngf`` in pix2pix).
        num_downs: number of stride-2 downsamplings, at least 5 (8 for 256x256 inputs).
        norm: ``"batch"`` or ``"instance"`` (non-affine; then every conv has a bias).
        dropout: dropout probability in the decoders; 0 adds no Dropout layers.
        variant: ``"pix2pix"`` (dropout in the ``num_downs - 5`` innermost decoders) or
            ``"seed"`` (dropout in every decoder, biased encoder convs, no outermost skip).

    Shapes:
        input ``(B, in_channels, H, W)`` in [-1, 1] -> output ``(B, out_channels, H, W)`` in
        [-1, 1], with ``H % 2**num_downs == W % 2**num_downs == 0``.

    Example:
        >>> net = UNetGenerator(base_channels=8, num_downs=5)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 2, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        base_channels: int = 64,
        num_downs: int = 8,
        norm: NormName = "batch",
        dropout: float = 0.5,
        variant: Variant = "pix2pix",
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        if variant not in ("seed", "pix2pix"):
            raise ValueError(f"variant must be 'seed' or 'pix2pix', got {variant!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        norm_layer(norm, 1)  # validates the name early
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_downs = num_downs
        self.variant = variant
        seed = variant == "seed"
        bias = conv_bias(norm)
        ch = [base_channels * min(2**i, MAX_MULT) for i in range(num_downs)]

        self.downs = _encoder(in_channels, ch, norm, bias, seed)

        # Bottleneck: (B, ch[-2], H / 2**(n-1)) -> (B, ch[-1], H / 2**n) -> (B, ch[-2], H / 2**(n-1)).
        self.mid = nn.Sequential(
            nn.LeakyReLU(0.2),
            _down(ch[-2], ch[-1], bias),
            nn.ReLU(),
            _up(ch[-1], ch[-2], bias),
            norm_layer(norm, ch[-2]),
        )

        self.ups = _decoder(ch, norm, bias, dropout, seed)

        # Output: (B, 2 * ch[0] or ch[0], H / 2, W / 2) -> (B, out_channels, H, W) in [-1, 1].
        self.outer_skip = not seed
        out_in = 2 * ch[0] if self.outer_skip else ch[0]
        self.out = nn.Sequential(nn.ReLU(), _up(out_in, out_channels, bias=True), nn.Tanh())
        self.init_weights()

    def init_weights(self, std: float = 0.02) -> None:
        """Draw conv weights from N(0, std), norm gammas from N(1, std); zero all biases."""
        init_weights(self, std)

    def forward(self, x: Tensor) -> Tensor:
        """Predict ab from L.

        Args:
            x: ``(B, in_channels, H, W)`` normalised lightness in [-1, 1].

        Returns:
            ``(B, out_channels, H, W)`` normalised chroma in [-1, 1].

        Raises:
            ValueError: if ``x`` is not 4-D, has the wrong channel count, or H or W is not
                divisible by ``2 ** num_downs``.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        factor = 2**self.num_downs
        h, w = x.shape[-2:]
        if h % factor or w % factor:
            raise ValueError(
                f"input H and W must be divisible by 2**num_downs = {factor}, got {h}x{w}"
            )
        skips: list[Tensor] = []
        for down in self.downs:
            x = down(x)  # (B, ch[i], H / 2**(i+1), W / 2**(i+1))
            skips.append(x)
        x = self.mid(x)  # (B, ch[-2], H / 2**(n-1), W / 2**(n-1))
        for up in self.ups:
            x = up(torch.cat([x, skips.pop()], dim=1))  # channels halve or stay, size doubles
        outer = skips.pop()  # (B, ch[0], H / 2, W / 2)
        if self.outer_skip:
            x = torch.cat([x, outer], dim=1)
        return self.out(x)  # (B, out_channels, H, W)


def seed_unet(**overrides: Any) -> UNetGenerator:
    """The write-up's generator (54,410,242 parameters for 1 -> 2 channels).

    Args:
        **overrides: any ``UNetGenerator`` argument except ``variant``.
    """
    return UNetGenerator(variant="seed", **overrides)


def pix2pix_unet(**overrides: Any) -> UNetGenerator:
    """The pix2pix ``unet_256`` generator (54,409,858 parameters for 1 -> 2 channels).

    Args:
        **overrides: any ``UNetGenerator`` argument except ``variant``.
    """
    return UNetGenerator(variant="pix2pix", **overrides)
