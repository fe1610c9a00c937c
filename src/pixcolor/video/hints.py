"""Colour hints on video: keyframes of hints, carried along the optical flow until a cut.

The video hints file::

    {"frames": [{"frame": 0, "points": [{"x": 120, "y": 45, "rgb": [200, 30, 40]}]},
                {"frame": 240, "points": []}]}

- ``frame``: the index of a frame in the clip (0 = the first), a whole number; each at most once;
- ``points``: exactly the photo hints' points (:mod:`pixcolor.hints`): ``x``, ``y`` in that
  frame's displayed pixels, ``rgb`` 0-255 and the optional ``radius`` (default 3).

A keyframe's points replace the ones carried so far, from that frame on (an empty list clears
them). A photo hints file (``{"points": [...]}``) is read as hints on frame 0.

:class:`HintTracker` moves each active point from frame to frame along the forward flow of
:class:`~pixcolor.video.temporal.MotionEstimator` (the flow the temporal filter uses, computed
once per frame for both): a point is dropped where that motion is not trusted (the filter's
forward-backward and lightness checks, at the point, after Lucas-Kanade refines its move:
:func:`move_points`; occlusion, new content, failed flow) and when it leaves the frame; all
points are dropped at a scene cut, unless that frame is itself a keyframe. Each frame is then
colorized as ``model.colorize(frame, hints=points)`` would colour it
(:func:`predict_with_hints`), before the temporal filter, which starts afresh at each keyframe
so that its points take effect at once (:func:`pixcolor.video.frames.colorize_frames`).

Example:
    >>> hints = parse_video_hints({"frames": [{"frame": 0, "points": [(30, 20, (200, 30, 40))]}]})
    >>> sorted(hints.keyframes)
    [0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from torch import Tensor

from pixcolor.hints import (
    Hint,
    HintError,
    check_inside,
    hints_to_json,
    parse_hints,
    read_json_file,
    render_hints,
)
from pixcolor.pipeline import Colorizer
from pixcolor.video.temporal import (
    FB_ABSOLUTE,
    FB_RELATIVE,
    L_MAX,
    Motion,
    TemporalOptions,
    sample,
)

MAX_FILE_BYTES = 16 << 20  # a long film with many keyframes still fits
# Lucas-Kanade refinement of each point (OpenCV's pyramidal LK, 3 pyramid levels). Measured on
# tests/test_video_hints.py's clip (a 40 px object moving 2-4 px a frame against a pan), points
# 2-12 px inside its edge over 10 frames: a 9 px window kept all within 0.41 px at half size
# (0.01 at full); 11 px drifted 0.84 px and lost points near the frame's edge, 15 px 3.6 px.
LK_WINDOW = 9
LK_LEVELS = 2
LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01)
# Largest mean |L| change (uint8 gray units) between a point's windows in the two frames, as
# the temporal filter's max_l_change of 8 Lab units.
MAX_PATCH_CHANGE = TemporalOptions.max_l_change * 255.0 / L_MAX
_ENTRY_KEYS = {"frame", "points"}


@dataclass(frozen=True)
class VideoHints:
    """Checked video hints: the points of each keyframe."""

    keyframes: dict[int, tuple[Hint, ...]]  # frame index -> its points, in file order
    source: str = "hints"  # what error messages name (the file)


def _frame_number(value: object, where: str) -> int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not float(value).is_integer() or value < 0:
        raise HintError(f"{where}: 'frame' must be a whole number >= 0, got {value!r}")
    return int(value)


def parse_video_hints(data: object, source: str = "hints") -> VideoHints:
    """Checked video hints from the JSON dict (see the module doc).

    Args:
        data: ``{"frames": [{"frame": n, "points": [...]}, ...]}``, or a photo hints dict
            ``{"points": [...]}`` (hints on frame 0).
        source: what error messages name (the file).

    Raises:
        HintError: a malformed entry, frame number or point, or a frame given twice; one line
            naming ``source``.
    """
    if isinstance(data, Mapping) and "points" in data and "frames" not in data:
        return VideoHints({0: tuple(parse_hints(data, source))}, source)
    if not isinstance(data, Mapping) or "frames" not in data:
        raise HintError(f'{source}: no \'frames\' list (expected {{"frames": [{{"frame": 0, '
                        '"points": [...]}, ...]})')  # fmt: skip
    unknown = sorted(set(data) - {"frames"})
    if unknown:
        raise HintError(f"{source}: unknown key {unknown[0]!r} (expected only 'frames')")
    entries = data["frames"]
    if not isinstance(entries, (list, tuple)):
        raise HintError(f"{source}: 'frames' must be a list, got {type(entries).__name__}")
    keyframes: dict[int, tuple[Hint, ...]] = {}
    for i, entry in enumerate(entries):
        where = f"{source}: frames entry {i + 1}"
        if not isinstance(entry, Mapping):
            raise HintError(f"{where}: expected {{'frame': n, 'points': [...]}}")
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise HintError(f"{where}: unknown key {unknown[0]!r} (an entry has frame, points)")
        missing = [k for k in ("frame", "points") if k not in entry]
        if missing:
            raise HintError(f"{where}: missing {missing[0]!r}")
        n = _frame_number(entry["frame"], where)
        if n in keyframes:
            raise HintError(f"{source}: frame {n} is given twice")
        points = entry["points"]
        if not isinstance(points, (list, tuple)):
            raise HintError(
                f"{source}: frame {n}: 'points' must be a list, got {type(points).__name__}"
            )
        keyframes[n] = tuple(parse_hints(points, f"{source}: frame {n}"))
    return VideoHints(dict(sorted(keyframes.items())), source)


def load_video_hints(path: str | Path) -> VideoHints:
    """Read and check a video hints JSON file.

    Raises:
        HintError: unreadable, too large (over 16 MiB), not JSON, or a bad entry; one line
            naming the file.
    """
    return parse_video_hints(read_json_file(path, MAX_FILE_BYTES), str(path))


def video_hints_to_json(hints: VideoHints) -> dict:
    """The JSON dict of ``hints`` (the file format of the module doc)."""
    return {
        "frames": [{"frame": n, **hints_to_json(points)} for n, points in hints.keyframes.items()]
    }


def move_points(points: Sequence[Hint], motion: Motion, image_hw: tuple[int, int]) -> list[Hint]:
    """The points of the previous frame, moved along ``motion`` onto the current frame.

    Each point starts from the DIS forward flow at its place (bilinear, at the working size)
    and is refined there by pyramidal Lucas-Kanade on the same lightness images (the DIS
    ``FAST`` preset works on a quarter-resolution grid and smooths an object's motion into
    its background's: alone it drifted 8.5 working pixels in 10 frames on a 128x96 test clip
    of an object moving 3.6 px a frame, refined 0.01). The refined move passes the
    temporal filter's checks, at the point: it is kept only when Lucas-Kanade tracks it back
    to where it was (the forward-backward bound of :mod:`pixcolor.video.temporal`), the
    lightness around it stays about the same (``max_l_change``; occlusion, new content and
    failed flow fail one or the other), and it lies inside the ``image_hw`` frame. (The dense
    trust mask is not asked: where the DIS flow smooths a moving object's motion it fails on
    the object, which the refined point tracks well.) Positions stay sub-pixel, so no
    rounding error piles up.

    Args:
        points: hints in the previous frame's displayed pixels.
        motion: a motion that is no cut (its flow fields are set).
        image_hw: ``(H, W)`` of the frames, in displayed pixels.

    Returns:
        The surviving points in the current frame's pixels (colour and radius unchanged).
    """
    if not points:
        return []
    if motion.cut or motion.fwd is None or motion.coords is None or motion.trusted is None:
        raise ValueError("move_points needs a motion with flow (not a cut)")
    height, width = image_hw
    h, w = motion.gray.shape
    sx, sy = w / width, h / height
    # pixel centres: displayed pixel x covers [x, x + 1); working pixel i is centred on i
    p0 = np.array([((p.x + 0.5) * sx - 0.5, (p.y + 0.5) * sy - 0.5) for p in points], np.float32)
    guess = p0 + sample(motion.fwd, p0[None])[0]  # (n, 2)
    p1, found, change = _lucas_kanade(motion.prev_gray, motion.gray, p0, guess)
    guess_back = sample(motion.coords, p1[None])[0]  # the DIS backward flow where they land
    back, found_back, _ = _lucas_kanade(motion.gray, motion.prev_gray, p1, guess_back)
    fwd, bwd = p1 - p0, back - p1
    err = ((fwd + bwd) ** 2).sum(-1)  # ~0 where both ways agree
    bound = FB_RELATIVE * ((fwd**2).sum(-1) + (bwd**2).sum(-1)) + FB_ABSOLUTE
    keep = found & found_back & (err <= bound) & (change <= MAX_PATCH_CHANGE)
    moved = []
    for p, (u, v), ok in zip(points, p1, keep, strict=True):
        x, y = (float(u) + 0.5) / sx - 0.5, (float(v) + 0.5) / sy - 0.5
        if ok and 0.0 <= x < width and 0.0 <= y < height:
            moved.append(Hint(x, y, p.rgb, p.radius))
    return moved


def _lucas_kanade(
    gray0: np.ndarray, gray1: np.ndarray, p0: np.ndarray, guess: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade from ``gray0`` to ``gray1`` (uint8 ``(h, w)``) of the points
    ``p0 (n, 2)``, starting at ``guess (n, 2)``: the new points, whether each was found, and
    the mean absolute difference of its windows in the two frames (gray units)."""
    p1, status, change = cv2.calcOpticalFlowPyrLK(
        gray0, gray1, p0.reshape(-1, 1, 2), guess.reshape(-1, 1, 2).copy(),
        winSize=(LK_WINDOW, LK_WINDOW), maxLevel=LK_LEVELS, criteria=LK_CRITERIA,
        flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
    )  # fmt: skip
    return p1.reshape(-1, 2), status.reshape(-1).astype(bool), change.reshape(-1)


class HintTracker:
    """The active hints of each frame of one clip, fed its motions in order (see the module doc).

    Example:
        >>> tracker = HintTracker(load_video_hints("reel.hints.json"))
        >>> for rgb, L in frames:  # each frame and its working-size lightness
        ...     points = tracker(motion_of(L), rgb.shape[:2])
    """

    def __init__(self, hints: VideoHints) -> None:
        self.hints = hints
        self.frame = 0  # index of the next frame
        self.points: list[Hint] = []  # the active points of the last frame
        self.last_keyframe = False  # whether the last frame was a keyframe

    def __call__(self, motion: Motion, image_hw: tuple[int, int]) -> list[Hint]:
        """The hints of the next frame, in its displayed pixels.

        Args:
            motion: the motion from the previous frame to this one (a cut on the first).
            image_hw: ``(H, W)`` of this frame.

        Raises:
            HintError: a keyframe point outside the frame (checked for every keyframe at the
                first frame, and again at each keyframe), naming the file and frame.
        """
        if self.frame == 0:
            for n, points in self.hints.keyframes.items():
                check_inside(points, image_hw, f"{self.hints.source}: frame {n}", "frame")
        self.points = [] if motion.cut else move_points(self.points, motion, image_hw)
        keyframe = self.hints.keyframes.get(self.frame)
        self.last_keyframe = keyframe is not None
        if keyframe is not None:
            where = f"{self.hints.source}: frame {self.frame}"
            check_inside(keyframe, image_hw, where, "frame")
            self.points = list(keyframe)
        self.frame += 1
        return list(self.points)


def predict_with_hints(
    model: Colorizer,
    L: Tensor,
    points: Sequence[Hint],
    image_hw: tuple[int, int],
    source: str = "hints",
) -> Tensor:
    """The working-size ab ``model.colorize(frame, hints=points)`` composes for one frame
    (without points, the model's prediction at ``L``'s one size: a caller that leaves the size
    to the model averages in its extra sizes, :func:`pixcolor.multiscale.average_sizes`).

    Args:
        model: the colorizer; with points, its :meth:`~Colorizer.hint_colorizer` runs.
        L: the frame's lightness ``(1, 1, h, w)`` at the working size, Lab units 0..100.
        points: hints in the frame's displayed pixels (none: the model alone).
        image_hw: ``(H, W)`` of the frame.

    Returns:
        ab ``(2, h, w)`` in Lab units.
    """
    if not points:
        return model.predict_ab(L)[0]
    hint_map = render_hints(points, image_hw, (L.shape[-2], L.shape[-1]), source)
    return model.predict_hinted_ab(L, hint_map)[0]
