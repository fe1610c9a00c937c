"""Colorize a stream of frames with a :class:`~pixcolor.pipeline.Colorizer`, one at a time.

Every frame goes through the photo pipeline (L at the model's working size, ``predict_ab``,
``compose`` at full resolution); with temporal consistency on, the working-size ab passes
through a :class:`~pixcolor.video.temporal.TemporalFilter` between the two. With video hints
(:mod:`pixcolor.video.hints`), one :class:`~pixcolor.video.temporal.MotionEstimator` feeds both
the hint tracker (before the model) and the filter (after it), so the flow is computed once.
Frames are pulled from the input iterator and yielded one by one, so memory does not grow with
the clip.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from pixcolor.multiscale import average_sizes
from pixcolor.pipeline import Colorizer
from pixcolor.video.hints import HintTracker, VideoHints, predict_with_hints
from pixcolor.video.temporal import MotionEstimator, TemporalFilter, TemporalOptions


def working_l(model: Colorizer, rgb: np.ndarray, size: int | None = None) -> Tensor:
    """L of ``rgb (H, W, 3)`` uint8 at the working size (default: the model's), ``(1, 1, h, w)``
    Lab 0..100: :meth:`Colorizer.working_l`, so the per-frame path gives the photo pipeline's
    output exactly."""
    return model.working_l(rgb, size or model.size)


def predictions(
    model: Colorizer, frames: Iterable[np.ndarray], *, size: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray, Tensor]]:
    """The model's raw prediction for each frame.

    Yields:
        ``(rgb, L, ab)``: the frame ``(H, W, 3)`` uint8, its working-size lightness ``(h, w)``
        float32 in Lab units 0..100, and the predicted ab ``(2, h, w)`` in Lab units.
    """
    for rgb in frames:
        L = working_l(model, rgb, size)
        ab = model.predict_ab(L)[0]
        if size is None:  # the model's own size and its extra sizes (pixcolor.multiscale)
            ab = average_sizes(model, [rgb], [ab])[0]
        yield rgb, L[0, 0].numpy(), ab


def colorize_frames(
    model: Colorizer,
    frames: Iterable[np.ndarray],
    *,
    size: int | None = None,
    temporal: TemporalOptions | None = None,
    consistent: bool = True,
    saturation: float = 1.0,
    hints: VideoHints | None = None,
) -> Iterator[np.ndarray]:
    """Colorize frames in order, yielding each output as soon as it is ready.

    Args:
        model: a loaded colorizer (:func:`pixcolor.load_model`).
        frames: RGB frames ``(H, W, 3)`` uint8 of one clip, in order; colour frames are
            colorized from their luminance.
        size: the model's working size (default: the model's own).
        temporal: settings of the temporal filter (default :class:`TemporalOptions`).
        consistent: False gives the plain per-frame output (each frame exactly as
            ``model.colorize`` would colour it alone).
        saturation: factor on the output's ab (1 = the model's colours, 0 = gray, up to 2).
        hints: colour hints on keyframes, carried along the motion until a cut
            (:mod:`pixcolor.video.hints`); each frame is coloured as
            ``model.colorize(frame, hints=its points)``, and the filter starts afresh at a
            keyframe, so its points take effect at once.

    Yields:
        ``(H, W, 3)`` uint8 RGB frames, one per input frame, with the input's luminance.
    """
    filt = TemporalFilter(temporal) if consistent else None
    if hints is None:
        for rgb, L, ab in predictions(model, frames, size=size):
            if filt is not None:
                ab = torch.from_numpy(filt(L, ab.numpy()))
            yield model.compose(rgb, ab, saturation=saturation)
        return
    if any(hints.keyframes.values()):
        model.hint_colorizer()  # no hint model: fail before the first frame
    motion_of, tracker = MotionEstimator(temporal), HintTracker(hints)
    for rgb in frames:
        L = working_l(model, rgb, size)
        motion = motion_of(L[0, 0].numpy())
        points = tracker(motion, rgb.shape[:2])
        ab = predict_with_hints(model, L, points, rgb.shape[:2], hints.source)
        if not points and size is None:  # as colorize(frame) without hints
            ab = average_sizes(model, [rgb], [ab])[0]
        if filt is not None:
            if tracker.last_keyframe:
                filt.reset()
            ab = torch.from_numpy(filt(L[0, 0].numpy(), ab.numpy(), motion))
        yield model.compose(rgb, ab, saturation=saturation)
