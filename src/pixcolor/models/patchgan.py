"""PatchGAN discriminator: judges overlapping patches of concat(L, ab) as real or fake.

The 70x70 PatchGAN of pix2pix (junyanz ``NLayerDiscriminator``): C64 - C128 - C256 at
stride 2, C512 at stride 1, then a 1-channel conv at stride 1; 4x4 kernels, padding 1,
LeakyReLU(0.2), no norm on the first layer. With the defaults it has 2,765,633 parameters
and maps a 256x256 input to a 30x30 grid of logits, each seeing a 70x70 input patch.
"""

from __future__ import annotations

from torch import Tensor, nn

from pixcolor.models.blocks import NormName, conv_bias, init_weights, norm_layer

__all__ = ["PatchDiscriminator", "receptive_field"]

MAX_MULT = 8  # channel multiplier cap, as ndf * 8 in pix2pix


def _conv(in_ch: int, out_ch: int, stride: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=stride, padding=1, bias=bias)


class PatchDiscriminator(nn.Module):
    """Pix2Pix PatchGAN returning one raw logit per patch (no sigmoid).

    Args:
        in_channels: input channels (3 for concat(L, ab)).
        base_channels: width of the first layer (``ndf`` in pix2pix).
        num_layers: number of stride-2 conv layers (3 gives the 70x70 PatchGAN).
        norm: ``"batch"`` or ``"instance"``; convs followed by BatchNorm have no bias.

    Shapes:
        input ``(B, in_channels, H, W)`` -> logits ``(B, 1, H', W')``; for 3 layers
        ``H' = H / 8 - 2`` (256 -> 30).

    Example:
        >>> import torch
        >>> d = PatchDiscriminator(base_channels=8)
        >>> d(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 1, 6, 6])
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        num_layers: int = 3,
        norm: NormName = "batch",
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        bias = conv_bias(norm)
        # (B, in, H, W) -> (B, base, H / 2, W / 2); no norm on the first layer.
        layers: list[nn.Module] = [
            _conv(in_channels, base_channels, stride=2, bias=True),
            nn.LeakyReLU(0.2),
        ]
        out_ch = base_channels
        for n in range(1, num_layers + 1):
            in_ch, out_ch = out_ch, base_channels * min(2**n, MAX_MULT)
            stride = 2 if n < num_layers else 1  # the last of these keeps the size (minus 1)
            layers += [_conv(in_ch, out_ch, stride, bias), norm_layer(norm, out_ch)]
            layers.append(nn.LeakyReLU(0.2))
        layers.append(_conv(out_ch, 1, stride=1, bias=True))  # (B, 1, H', W') logits
        self.model = nn.Sequential(*layers)
        self.init_weights()

    def init_weights(self, std: float = 0.02) -> None:
        """Draw conv weights from N(0, std), norm gammas from N(1, std); zero all biases."""
        init_weights(self, std)

    def forward(self, x: Tensor) -> Tensor:
        """Score patches.

        Args:
            x: ``(B, in_channels, H, W)``, normally ``torch.cat([L_norm, ab_norm], dim=1)``.

        Returns:
            ``(B, 1, H', W')`` raw logits (real > 0 > fake under the vanilla GAN loss).
        """
        return self.model(x)


def receptive_field(num_layers: int = 3) -> int:
    """Side of the input patch each output logit of a ``PatchDiscriminator`` sees.

    Computed from the conv layers of an actual (one-channel-wide) discriminator, walking back
    from one output pixel: ``rf = (rf - 1) * stride + kernel``.

    Example:
        >>> receptive_field(3)
        70
    """
    net = PatchDiscriminator(base_channels=1, num_layers=num_layers)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    rf = 1
    for conv in reversed(convs):
        rf = (rf - 1) * conv.stride[0] + conv.kernel_size[0]
    return rf
