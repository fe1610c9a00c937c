"""Video colorization: frame streams, temporal consistency, clip files and their scores.

Needs the ``video`` extra (PyAV and OpenCV): ``pip install 'pixcolor[video]'``.

Example:
    >>> import pixcolor
    >>> from pixcolor.video import colorize_frames
    >>> model = pixcolor.load_model("fast")
    >>> outputs = colorize_frames(model, frames)  # frames: iterable of (H, W, 3) uint8
"""

from pixcolor.video.frames import colorize_frames, predictions
from pixcolor.video.temporal import TemporalFilter, TemporalOptions, is_cut

__all__ = ["TemporalFilter", "TemporalOptions", "colorize_frames", "is_cut", "predictions"]
