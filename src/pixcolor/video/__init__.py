"""Video colorization: frame streams, temporal consistency, clip files and their scores.

Needs the ``video`` extra (PyAV and OpenCV): ``pip install 'pixcolor[video]'``.

Example:
    >>> import pixcolor
    >>> from pixcolor.video import colorize_frames
    >>> model = pixcolor.load_model("fast")
    >>> outputs = colorize_frames(model, frames)  # frames: iterable of (H, W, 3) uint8
    >>> hinted = colorize_frames(model, frames, hints=load_video_hints("reel.json"))
"""

from pixcolor.video.frames import colorize_frames, predictions
from pixcolor.video.hints import HintTracker, VideoHints, load_video_hints, parse_video_hints
from pixcolor.video.temporal import MotionEstimator, TemporalFilter, TemporalOptions, is_cut

__all__ = [
    "HintTracker",
    "MotionEstimator",
    "TemporalFilter",
    "TemporalOptions",
    "VideoHints",
    "colorize_frames",
    "is_cut",
    "load_video_hints",
    "parse_video_hints",
    "predictions",
]
