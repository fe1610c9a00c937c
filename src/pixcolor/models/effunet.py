"""U-Net colorizer on an EfficientNet-Lite encoder: L_norm (B, 1, H, W) -> ab_norm (B, 2, H, W).

The encoder (:mod:`pixcolor.models.efficientnet`) is EfficientNet-Lite0 or -Lite2; the decoder
is a light U-Net over its five feature maps. An :class:`EffUNet` may hold several decoders on
the one encoder (an ensemble, :mod:`pixcolor.models.ensemble`), and scales its predicted ab by
the post-hoc gains of :func:`pixcolor.color.apply_gains`.

Input: the lite models were trained on RGB mapped by ``(255 * rgb - 127) / 128``, about
``2 * rgb - 1``. For a grey pixel ``L / 100`` is close to its sRGB value, so ``L_norm = L/50 - 1``
repeated to three channels already is that input; it is fed unchanged.

Example:
    >>> model = EffUNet(head="tanh")
    >>> model(torch.zeros(2, 1, 64, 96)).shape
    torch.Size([2, 2, 64, 96])
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixcolor.ab_bins import ABQuantizer, annealed_mean
from pixcolor.color import apply_gains
from pixcolor.errors import ConfigError
from pixcolor.models.blocks import NormName, conv_bias, norm_layer
from pixcolor.models.efficientnet import EfficientNetLiteEncoder, EncoderName, load_imagenet_encoder
from pixcolor.models.hint_layers import HINT_FEATURES, HintHead, HintPropagation, pool_hints

__all__ = ["DecoderMember", "DecoderStage", "EffUNet"]

HeadName = Literal["tanh", "bins"]


class DecoderStage(nn.Module):
    """Upsample to the skip's size (nearest), concatenate it, then two 3x3 conv-norm-ReLU.

    ``dropout > 0`` ends the stage with channel dropout (``nn.Dropout2d``), active in training
    mode only; it holds no weights, so state dicts are the same with or without it.
    """

    def __init__(
        self, in_ch: int, skip_ch: int, out_ch: int, norm: NormName, dropout: float = 0.0
    ) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch + skip_ch, out_ch, 3, padding=1, bias=bias),
            norm_layer(norm, out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=bias),
            norm_layer(norm, out_ch),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.block(torch.cat([x, skip], dim=1))


def _decoder(
    deepest: int,
    stages: list[tuple[int, int]],
    head_out: int,
    norm: NormName,
    dropout: float,
    extra: int = 0,
) -> tuple[nn.ModuleList, nn.Conv2d]:
    """Decoder stages for ``(skip_channels, out_channels)`` pairs, and the 1x1 head after them;
    ``extra`` more input channels beside each skip (the hint features)."""
    ups = nn.ModuleList()
    prev = deepest
    for skip_ch, ch in stages:
        ups.append(DecoderStage(prev, skip_ch + extra, ch, norm, dropout))
        prev = ch
    return ups, nn.Conv2d(prev, head_out, 1)


def _argument_problem(
    in_channels: int,
    out_channels: int,
    decoder_channels: tuple[int, ...],
    head: str,
    num_bins: int,
    temperature: float,
    chroma_gain: float,
    cast_gain: float | None,
    dropout: float,
    members: int,
    hints: bool,
) -> str | None:
    """What is wrong with :class:`EffUNet`'s arguments, or ``None``."""
    checks = (
        (in_channels in (1, 3), f"in_channels must be 1 or 3, got {in_channels}"),
        (len(decoder_channels) == 5 and min(decoder_channels) >= 1,
         f"decoder_channels needs 5 positive ints, got {decoder_channels}"),
        (head in ("tanh", "bins"), f"head must be 'tanh' or 'bins', got {head!r}"),
        (head != "bins" or (out_channels == 2 and num_bins >= 0),
         "head='bins' predicts ab: needs out_channels=2 and num_bins >= 0"),
        (temperature > 0, f"temperature must be > 0, got {temperature}"),
        (0 < chroma_gain <= 4, f"chroma_gain must be in (0, 4], got {chroma_gain}"),
        (cast_gain is None or 0 <= cast_gain <= 4, f"cast_gain must be in [0, 4], got {cast_gain}"),
        (0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}"),
        (members >= 1, f"members must be >= 1, got {members}"),
        (not hints or (members == 1 and head == "bins"),
         "hints=True needs head='bins' and members=1 (one hint-conditioned decoder)"),
    )  # fmt: skip
    return next((message for ok, message in checks if not ok), None)


class DecoderMember(nn.Module):
    """A further decoder and head of an :class:`EffUNet` ensemble (``members > 1``)."""

    def __init__(self, ups: nn.ModuleList, head: nn.Conv2d) -> None:
        super().__init__()
        self.ups = ups
        self.head = head


class EffUNet(nn.Module):
    """EfficientNet-Lite encoder with a light U-Net decoder; L_norm -> ab_norm.

    The decoder has one stage per entry of ``decoder_channels``, going from stride 32 to 16, 8,
    4, 2 and 1 and taking the encoder features (then the raw input, at full resolution) as skips.

    - ``head="tanh"``: all five stages, a 1x1 conv and Tanh give ab_norm at full resolution.
    - ``head="bins"``: the first three stages (stride 4) and a 1x1 conv give ``num_bins`` logits
      at 1/4 resolution (``decoder_channels[3:]`` are unused); :meth:`forward` decodes them with
      the annealed mean at ``temperature`` and upsamples ab bilinearly to the input size.
      The bin centres are the buffer ``bin_centers`` ``(num_bins, 2)``, saved with the weights.
      ``num_bins=0`` (or 529) is the full 10-unit grid of :class:`~pixcolor.ab_bins.ABQuantizer`;
      any other count needs :meth:`set_bin_centers` (or a state dict) before use.

    Args:
        in_channels: 1 (L_norm, repeated to 3 for the encoder) or 3.
        out_channels: ab channels of the ``"tanh"`` head (2).
        decoder_channels: Output channels of the five decoder stages.
        head: ``"tanh"`` (regression) or ``"bins"`` (classification over ab bins).
        num_bins: Number of ab bins of the ``"bins"`` head; 0 means the full default grid.
        temperature: Annealed-mean temperature of :meth:`forward` for ``"bins"`` (0.38 in Zhang).
        chroma_gain: Factor on the predicted ab's variation around the image's mean ab (a
            saturation gain chosen on held-out photos after training; 1 = none). Above 1,
            ab_norm can leave [-1, 1].
        cast_gain: Factor on the image's mean predicted ab, its overall colour cast (``None``:
            the same as ``chroma_gain``, a plain gain on ab). The cast adds no colour spread
            but costs PSNR where it is wrong, so it can take a smaller gain than the variation.
        pretrained: Load the ImageNet encoder weights (needs the ``pretrained`` extra).
        encoder: ``"lite0"`` (3.0 M encoder parameters) or ``"lite2"`` (4.4 M, deeper).
        norm: Decoder normalisation; the encoder always keeps its BatchNorm.
        dropout: Channel-dropout probability at the end of each decoder stage while training
            (a regulariser for a decoder on a frozen encoder; 0 = none, the default).
        members: Number of decoder-and-head pairs on the one encoder. Above 1 the model is an
            ensemble: :meth:`forward` averages the members' ab (annealed means for ``"bins"``).
            Members are trained alone on a frozen encoder and joined with
            :func:`pixcolor.models.ensemble.assemble`; member 0 is ``ups``/``head``, the others
            ``more.i.ups``/``more.i.head``.
        hints: Accept user colour hints (:mod:`pixcolor.models.hint_layers`; ``head="bins"``):
            each decoder stage takes six more channels, zero-initialised, and a hint head adds
            the hints' colours to the logits; a model widened from an unhinted one
            (:func:`~pixcolor.models.hint_layers.widen_for_hints`) keeps its no-hint colours.

    Attributes:
        output_kind: ``"tanh"`` or ``"bins"``.
        stride: Input height and width must be multiples of this.
    """

    stride: int = 32

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        decoder_channels: tuple[int, ...] = (192, 96, 64, 48, 32),
        head: HeadName = "tanh",
        num_bins: int = 0,
        temperature: float = 0.38,
        chroma_gain: float = 1.0,
        cast_gain: float | None = None,
        pretrained: bool = False,
        encoder: EncoderName = "lite0",
        norm: NormName = "batch",
        dropout: float = 0.0,
        members: int = 1,
        hints: bool = False,
    ) -> None:
        super().__init__()
        problem = _argument_problem(
            in_channels, out_channels, decoder_channels, head, num_bins, temperature,
            chroma_gain, cast_gain, dropout, members, hints,
        )  # fmt: skip
        if problem:
            raise ConfigError(problem)
        self.in_channels = in_channels
        self.output_kind: str = head
        self.temperature = float(temperature)
        self.chroma_gain = float(chroma_gain)
        self.cast_gain = self.chroma_gain if cast_gain is None else float(cast_gain)

        self.encoder = EfficientNetLiteEncoder(encoder)
        skip_channels = (*self.encoder.channels[-2::-1], in_channels)  # Lite0: 112, 40, 24, 16, in
        num_stages = 5 if head == "tanh" else 3  # "bins": logits at stride 4, as Zhang et al.
        stages = list(zip(skip_channels[:num_stages], decoder_channels[:num_stages], strict=True))

        self._centers_ready = True
        head_out = out_channels
        if head == "bins":
            grid = ABQuantizer().centers
            if num_bins in (0, grid.shape[0]):
                centers = grid
            else:
                centers = torch.full((num_bins, 2), float("nan"))
                self._centers_ready = False
            self.register_buffer("bin_centers", centers)
            head_out = centers.shape[0]
            self.register_load_state_dict_post_hook(EffUNet._check_centers_after_load)
        self.takes_hints = hints
        extra = HINT_FEATURES if hints else 0
        self.ups, self.head = _decoder(
            self.encoder.channels[-1], stages, head_out, norm, dropout, extra
        )
        if hints:
            self.hint_propagation = HintPropagation(sum(self.encoder.channels[-2:]))
            self.hint_head = HintHead(decoder_channels[num_stages - 1])
        self.more = nn.ModuleList(
            DecoderMember(*_decoder(self.encoder.channels[-1], stages, head_out, norm, dropout))
            for _ in range(members - 1)
        )
        self._init_weights()
        if pretrained:
            load_imagenet_encoder(self)

    def _init_weights(self) -> None:
        """Kaiming-normal convs, unit/zero norms, zero biases (``pretrained`` then overwrites the encoder).

        Encoder convs use fan-out as TF EfficientNet; decoder convs fan-in with ReLU gain, and the
        1x1 output conv gain 1 (no ReLU follows it).
        """
        heads = [head for _, head in self.decoders()]
        for part, mode in ((self.encoder, "fan_out"), (self.ups, "fan_in"), (self.head, "fan_in"),
                           (self.more, "fan_in")):  # fmt: skip
            for m in part.modules():
                if isinstance(m, nn.Conv2d):
                    act = "linear" if any(m is h for h in heads) else "relu"
                    nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity=act)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
        if self.takes_hints:  # hints start with no effect: the last input channels of each stage
            with torch.no_grad():
                for up in self.ups:
                    up.block[0].weight[:, -HINT_FEATURES:].zero_()

    @staticmethod
    def _check_centers_after_load(module: nn.Module, _incompatible: object) -> None:
        if isinstance(module, EffUNet):
            module._centers_ready = bool(torch.isfinite(module.bin_centers).all())

    def set_bin_centers(self, centers: Tensor) -> None:
        """Set the ``(num_bins, 2)`` ab_norm centres of the ``"bins"`` head (``quantizer.centers``)."""
        expected = getattr(self, "bin_centers", torch.empty(0)).shape
        if self.output_kind != "bins" or centers.shape != expected:
            raise ValueError(
                f"expected centers {tuple(expected)} for head='bins', got {centers.shape}"
            )
        self.bin_centers.copy_(centers)
        self._centers_ready = bool(torch.isfinite(self.bin_centers).all())

    @property
    def quantizer(self) -> ABQuantizer:
        """The :class:`ABQuantizer` of the ``"bins"`` head (targets, class weights, decoding)."""
        if self.output_kind != "bins":
            raise RuntimeError("only head='bins' has ab bins")
        return ABQuantizer(centers=self.bin_centers)

    def decoders(self) -> list[tuple[nn.ModuleList, nn.Conv2d]]:
        """The ``(ups, head)`` pair of every member, member 0 first."""
        return [(self.ups, self.head), *((m.ups, m.head) for m in self.more)]

    def _encode(self, l_norm: Tensor) -> list[Tensor]:
        """Encoder features, deepest first (strides 32, 16, 8, 4, 2), then ``l_norm`` itself."""
        if l_norm.ndim != 4 or l_norm.shape[1] != self.in_channels:
            raise ValueError(
                f"expected L_norm of shape (B, {self.in_channels}, H, W), got {tuple(l_norm.shape)}"
            )
        # (B, 3, H, W) encoder input in about [-1, 1]: see the module docstring.
        x = l_norm.repeat(1, 3, 1, 1) if self.in_channels == 1 else l_norm
        return [*self.encoder(x)[::-1], l_norm]

    def _decode(
        self, ups: nn.ModuleList, head: nn.Conv2d, taps: list[Tensor], hints: Tensor | None = None
    ) -> Tensor:
        """Head output of one member: ``(B, out, H, W)`` for "tanh", ``(B, Q, H/4, W/4)`` bins."""
        x = taps[0]
        spread: Tensor | None = None
        for up, skip in zip(ups, taps[1 : len(ups) + 1], strict=True):
            if self.takes_hints:
                size = skip.shape[-2:]
                if hints is None:
                    extra = skip.new_zeros(skip.shape[0], HINT_FEATURES, *size)
                else:
                    pooled = pool_hints(hints, size).to(skip.dtype)
                    if spread is None:  # at the first stage's grid, on its whole input
                        here = torch.cat([F.interpolate(x, size=size, mode="nearest"), skip], 1)
                        spread = self.hint_propagation(here, pooled)
                    else:
                        spread = F.interpolate(spread, size=size, mode="bilinear")
                    extra = torch.cat([pooled, spread], dim=1)
                skip = torch.cat([skip, extra], dim=1)
            x = up(x, skip)
        if self.takes_hints and hints is not None:
            return self.hint_head(x, head(x), hints, self.bin_centers)
        return head(x)

    def _check_hints(self, l_norm: Tensor, hints: Tensor | None) -> None:
        if hints is None:
            return
        if not self.takes_hints:
            raise ValueError("this model takes no hints (built without hints=True)")
        if hints.shape != (l_norm.shape[0], 3, *l_norm.shape[-2:]):
            raise ValueError(
                f"expected hints of shape (B, 3, H, W) = {(l_norm.shape[0], 3, *l_norm.shape[-2:])}"
                f", got {tuple(hints.shape)}"
            )

    def forward_logits(self, l_norm: Tensor, hints: Tensor | None = None) -> Tensor:
        """Raw bin logits for training (``head="bins"`` only).

        Args:
            l_norm: ``(B, in_channels, H, W)`` L_norm in [-1, 1].
            hints: ``(B, 3, H, W)`` hint map (hint-conditioned models only; ``None``: no hints).

        Returns:
            ``(B, num_bins, H/4, W/4)`` logits (sizes rounded up for sizes not divisible by 4).
        """
        if self.output_kind != "bins":
            raise RuntimeError("forward_logits needs head='bins'")
        if self.more:
            raise RuntimeError("an ensemble (members > 1) is not trained: train each member alone")
        self._check_hints(l_norm, hints)
        return self._decode(self.ups, self.head, self._encode(l_norm), hints)

    def member_probs(self, l_norm: Tensor, hints: Tensor | None = None) -> Tensor:
        """Mean over the members of their bin distributions (softmax at T = 1; ``"bins"`` only).

        The target when a single decoder learns from an ensemble (``pixcolor train --teacher``),
        and the suggested colours at a point (:meth:`pixcolor.pipeline.Colorizer.suggest_colors`).

        Args:
            l_norm: ``(B, in_channels, H, W)`` L_norm in [-1, 1].
            hints: ``(B, 3, H, W)`` hint map (hint-conditioned models only).

        Returns:
            ``(B, num_bins, H/4, W/4)`` fp32 probabilities, summing to 1 over the bins.
        """
        if self.output_kind != "bins":
            raise RuntimeError("member_probs needs head='bins'")
        self._check_hints(l_norm, hints)
        taps = self._encode(l_norm)
        probs = [
            F.softmax(self._decode(u, h, taps, hints).float(), dim=1) for u, h in self.decoders()
        ]
        return probs[0] if len(probs) == 1 else torch.stack(probs).mean(0)

    def forward(self, l_norm: Tensor, hints: Tensor | None = None) -> Tensor:
        """Predict ab (for an ensemble, the mean of its members' ab).

        Args:
            l_norm: ``(B, in_channels, H, W)`` L_norm in [-1, 1], H and W multiples of 32.
            hints: ``(B, 3, H, W)`` hint map (:mod:`pixcolor.models.hint_layers`), for a
                model built with ``hints=True``; ``None`` colours on the model's own.

        Returns:
            ``(B, out_channels, H, W)`` ab_norm in [-1, 1], then scaled: each image's mean ab
            by ``cast_gain`` and the variation around it by ``chroma_gain``.
        """
        if self.output_kind == "bins" and not self._centers_ready:
            raise RuntimeError("bin centres not set: call set_bin_centers() or load a state dict")
        self._check_hints(l_norm, hints)
        taps = self._encode(l_norm)
        outs = []
        for ups, head in self.decoders():
            y = self._decode(ups, head, taps, hints)
            if self.output_kind == "tanh":
                outs.append(torch.tanh(y))
            else:  # (B, Q, H/4, W/4) logits -> (B, 2, H/4, W/4) fp32
                outs.append(annealed_mean(y, self.bin_centers, self.temperature))
        ab = outs[0] if len(outs) == 1 else torch.stack(outs).mean(0)
        if self.output_kind == "bins":
            ab = F.interpolate(ab, size=l_norm.shape[-2:], mode="bilinear", align_corners=False)
        return apply_gains(ab, self.chroma_gain, self.cast_gain)
