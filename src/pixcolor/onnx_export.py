"""ONNX export of a colorizer or an SRCNN, checked against PyTorch with onnxruntime.

Needs the ``onnx`` extra (``pip install "pixcolor[onnx]"``: onnx, onnxscript for PyTorch's
exporter, onnxruntime for the check). The file has dynamic batch, height and width and carries
its contract in the ONNX metadata (``pixcolor.*`` keys), so other runtimes can use it without
pixcolor:

- colorizer: input ``l_norm`` ``(B, 1, H, W)`` float32, ``L / 50 - 1`` in [-1, 1], H and W
  multiples of ``pixcolor.stride``; output ``ab_norm`` ``(B, 2, H, W)``, ``ab / 110`` in
  [-1, 1]. Resizing L to the working size (``pixcolor.size``), upsampling ab back and joining it
  with the full-resolution L stay with the caller (see :mod:`pixcolor.pipeline`), and so does
  averaging in the model's further sizes (``pixcolor.extra_sizes``, a JSON list; see
  :mod:`pixcolor.multiscale`).
- SRCNN: input ``y`` ``(B, 1, H, W)``, the bicubic-enlarged BT.601 Y in [0, 1] (any H, W);
  output ``y_sr`` of the same shape, not clipped.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixcolor.atomic import atomic_write_bytes
from pixcolor.errors import PixcolorError
from pixcolor.working_size import DEFAULT_SIZE, check_size

OPSET = 18
ATOL = 1e-4  # onnxruntime vs PyTorch, fp32, on outputs in about [-1, 1]
_NEEDED = ("onnx", "onnxscript", "onnxruntime")
SRCNN_EXAMPLE_SIZE = 64  # side of the example an SRCNN is traced at
_CHATTY = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")  # loggers quieted in export


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and how well onnxruntime reproduced PyTorch."""

    path: Path
    kind: str  # "colorizer" or "srcnn"
    input_name: str
    output_name: str
    stride: int
    max_abs_diff: float  # worst |onnxruntime - PyTorch| over the checked shapes
    checked_shapes: tuple[tuple[int, int, int, int], ...]


def _require_onnx() -> None:
    missing = [m for m in _NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        raise PixcolorError(f"ONNX export needs {', '.join(missing)}: pip install 'pixcolor[onnx]'")


def _load(name_or_path: str | Path, **overrides: float | None) -> tuple[nn.Module, dict, str]:
    """The fp32 CPU network, its config and its kind, from a shipped name or a model folder."""
    from pixcolor.models.hub import load_network

    net, config = load_network(name_or_path, **overrides)
    kind = "srcnn" if config["arch"] == "srcnn" else "colorizer"
    return net.to(memory_format=torch.contiguous_format), config, kind


def _stride(net: nn.Module, kind: str) -> int:
    from pixcolor.pipeline import network_stride

    return 1 if kind == "srcnn" else network_stride(net)


def _metadata(config: dict[str, Any], kind: str, stride: int, size: int) -> dict[str, str]:
    from pixcolor._version import __version__

    contract = {
        "colorizer": (
            "l_norm (B,1,H,W) float32 = L/50-1 in [-1,1], H and W multiples of stride",
            "ab_norm (B,2,H,W) float32 = ab/110 in [-1,1]",
        ),
        "srcnn": (
            "y (B,1,H,W) float32 = bicubic-enlarged BT.601 Y in [0,1]",
            "y_sr (B,1,H,W) float32, refined Y (clip to [0,1])",
        ),
    }[kind]
    return {
        "pixcolor.version": __version__,
        "pixcolor.kind": kind,
        "pixcolor.arch": str(config.get("arch")),
        "pixcolor.kwargs": json.dumps(config.get("kwargs", {}), sort_keys=True),
        "pixcolor.stride": str(stride),
        "pixcolor.size": str(size),
        "pixcolor.extra_sizes": json.dumps(config.get("extra_sizes", [])),
        "pixcolor.scale": str(config.get("scale", "")),
        "pixcolor.input": contract[0],
        "pixcolor.output": contract[1],
    }


def _export(
    net: nn.Module,
    example: torch.Tensor,
    names: tuple[str, str],
    stride: int,
    opset: int,
    what: str,
) -> Any:
    """The ONNX ``ModelProto`` of ``net`` traced at ``example``, dynamic in batch, H and W."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    if stride > 1:
        h = stride * torch.export.Dim("h", min=1, max=16384 // stride)
        w = stride * torch.export.Dim("w", min=1, max=16384 // stride)
    else:
        h, w = torch.export.Dim("h", min=8, max=16384), torch.export.Dim("w", min=8, max=16384)
    try:
        with _quiet():
            program = torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=[names[0]],
                output_names=[names[1]],
                dynamic_shapes={_forward_arg(net): {0: batch, 2: h, 3: w}},
                verbose=False,
            )
    except Exception as exc:  # the exporter's errors are pages long: keep the first line
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise PixcolorError(f"{what}: ONNX export failed ({type(exc).__name__}: {first})") from exc
    return program.model_proto


def _worst_difference(net: nn.Module, data: bytes, input_name: str, inputs: list) -> float:
    """Largest |onnxruntime - PyTorch| over ``inputs``; PixcolorError above :data:`ATOL`."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in inputs:
        with torch.inference_mode():
            ref = net(x).numpy()
        got = session.run(None, {input_name: x.numpy()})[0]
        if got.shape != ref.shape:
            raise PixcolorError(f"ONNX output shape {got.shape} != PyTorch {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    if not worst <= ATOL:
        raise PixcolorError(f"onnxruntime differs from PyTorch by {worst:.3g} (> {ATOL})")
    return worst


def export_onnx(
    name_or_path: str | Path,
    out: str | Path,
    *,
    size: int | None = None,
    temperature: float | None = None,
    chroma_gain: float | None = None,
    cast_gain: float | None = None,
    opset: int = OPSET,
) -> OnnxExport:
    """Export a colorizer or SRCNN to ``out`` (``.onnx``), atomically, and check it.

    The graph is traced at a working-size example and exported with dynamic batch, height and
    width (multiples of the network's stride for colorizers). onnxruntime then runs the file
    at two shapes (the example and a non-square one, batch 2) against the PyTorch network.

    Args:
        name_or_path: a shipped model name (``default``, ``srcnn-x3``) or a model folder.
        out: the ``.onnx`` file to write (its folder is created).
        size: working size recorded in the metadata and used for the example (default: the
            model's own, or 64 for SRCNN).
        temperature: annealed-mean T for ab-bin colorizers (default: the model's).
        chroma_gain: factor on the predicted ab of effunet colorizers (default: the model's).
        cast_gain: factor on each image's mean ab of effunet colorizers (default: the model's).
        opset: ONNX opset.

    Returns:
        An :class:`OnnxExport` with the names, stride and the measured max abs difference.

    Raises:
        PixcolorError: onnx packages missing, model not found, or onnxruntime disagrees with
            PyTorch by more than ``ATOL``.
    """
    _require_onnx()
    import onnx

    net, config, kind = _load(
        name_or_path, temperature=temperature, chroma_gain=chroma_gain, cast_gain=cast_gain
    )
    stride = _stride(net, kind)
    if kind == "srcnn":  # an example size only: SRCNN has no working size
        size = int(size or config.get("size", SRCNN_EXAMPLE_SIZE))
    else:
        size = check_size(config.get("size", DEFAULT_SIZE) if size is None else size, "size")
    side = max(stride, -(-size // stride) * stride)
    names = ("y", "y_sr") if kind == "srcnn" else ("l_norm", "ab_norm")
    gen = torch.Generator().manual_seed(0)
    example = _random_input((1, 1, side, side), kind, gen)
    model = _export(net, example, names, stride, opset, str(name_or_path))
    for key, value in _metadata(config, kind, stride, size).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    other = (2, 1, side + stride * max(1, 8 // stride), max(stride, side - stride))
    shapes = ((1, 1, side, side), other)
    worst = _worst_difference(net, data, names[0], [_random_input(s, kind, gen) for s in shapes])
    out = Path(out)
    atomic_write_bytes(out, data)  # only a file that passed the check is written
    return OnnxExport(out, kind, names[0], names[1], stride, worst, shapes)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress logs and deprecation warnings for the call."""
    loggers = [logging.getLogger(name) for name in _CHATTY]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _random_input(shape: tuple[int, ...], kind: str, gen: torch.Generator) -> torch.Tensor:
    """Uniform inputs over the network's range: [0, 1] for SRCNN, [-1, 1] for colorizers."""
    x = torch.rand(shape, generator=gen)
    return x if kind == "srcnn" else x * 2 - 1


def _forward_arg(net: nn.Module) -> str:
    """Name of the forward's input argument (``dynamic_shapes`` is keyed by it)."""
    return next(iter(inspect.signature(net.forward).parameters))
