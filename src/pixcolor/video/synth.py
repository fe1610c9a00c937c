"""Synthetic test clips made from still photos: pans, zooms, moving crops, moving objects, cuts.

Each frame is an affine view of the photo (OpenCV ``warpAffine``, bicubic), so the true colours
of every frame are known: colorize the clip's gray version and score it against the clip.

Example:
    >>> from skimage import data
    >>> frames = list(synthetic_clip([data.astronaut()], 24, (192, 128), "pan"))
    >>> len(frames), frames[0].shape
    (24, (128, 192, 3))
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

MOTIONS = ("pan", "zoom", "orbit", "object")
COVER = 0.75  # share of the photo's shorter extent that one frame's view covers at the start
OBJECT_SIZE = 0.4  # side of the moving object, as a share of the frame's height


def _view(photo: np.ndarray, size: tuple[int, int], cx: float, cy: float, scale: float,
          angle: float = 0.0) -> np.ndarray:  # fmt: skip
    """The frame ``(h, w, 3)`` seeing ``photo`` around ``(cx, cy)``, ``scale`` photo px per px."""
    w, h = size
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    # output (u, v) -> photo (x, y) = R S (u - w/2, v - h/2) + (cx, cy)
    m = np.array(
        [[c, -s, cx - c * w / 2 + s * h / 2], [s, c, cy - s * w / 2 - c * h / 2]], np.float64
    )
    return cv2.warpAffine(
        photo, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )  # fmt: skip


def _path(motion: str, t: float, photo_shape: tuple[int, ...], size: tuple[int, int],
          rng_phase: float) -> tuple[float, float, float, float]:  # fmt: skip
    """Centre x, y, scale and angle of the view at time ``t`` in [0, 1]."""
    ph, pw = photo_shape[:2]
    w, h = size
    base = COVER * min(pw / w, ph / h)  # photo pixels per frame pixel
    room_x, room_y = (pw - w * base) / 2, (ph - h * base) / 2  # free travel around the centre
    if motion in ("pan", "object"):
        direction = 1.0 if rng_phase < math.pi else -1.0
        x = pw / 2 + direction * room_x * 0.9 * (2 * t - 1)
        return x, ph / 2 + room_y * 0.3 * math.sin(2 * math.pi * t), base, 0.0
    if motion == "zoom":
        scale = base * (1.0 - 0.35 * t)
        return pw / 2 + room_x * 0.2 * t, ph / 2, scale, 0.0
    if motion == "orbit":  # a moving crop: an ellipse, a slow zoom and a slight rotation
        a = rng_phase + math.pi * t  # half a turn over the clip
        scale = base * (0.9 + 0.1 * math.cos(a))
        return (pw / 2 + room_x * 0.8 * math.cos(a), ph / 2 + room_y * 0.8 * math.sin(a),
                scale, math.radians(3.0) * math.sin(a))  # fmt: skip
    raise ValueError(f"unknown motion {motion!r}; choose from {MOTIONS}")


def synthetic_clip(
    photos: Sequence[np.ndarray],
    frames: int,
    size: tuple[int, int],
    motion: str,
    *,
    cut_at: int | None = None,
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Frames of a clip moving over ``photos[0]`` (then ``photos[1]`` after a cut).

    Args:
        photos: RGB photos ``(H, W, 3)`` uint8; ``photos[1]`` is needed for ``cut_at`` and
            for the ``object`` motion (the object is a piece of the next photo).
        frames: number of frames.
        size: ``(width, height)`` of the frames.
        motion: ``pan``, ``zoom``, ``orbit`` (a moving, slightly rotating crop) or ``object``
            (a pan with a piece of another photo moving the other way in front: occlusions).
        cut_at: index of the first frame of the second photo (a scene cut), or None.
        seed: picks the direction and phase of the motion.

    Yields:
        ``(height, width, 3)`` uint8 RGB frames.
    """
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; choose from {MOTIONS}")
    need = 2 if cut_at is not None or motion == "object" else 1
    if len(photos) < need:
        raise ValueError(f"motion {motion!r} with cut_at={cut_at} needs {need} photos")
    phase = np.random.default_rng(seed).uniform(0, 2 * math.pi)
    w, h = size
    side = max(8, round(OBJECT_SIZE * h))
    for i in range(frames):
        t = i / max(1, frames - 1)
        photo = photos[1] if cut_at is not None and i >= cut_at else photos[0]
        frame = _view(photo, size, *_path(motion, t, photo.shape, size, phase))
        if motion == "object":
            other = photos[-1] if photo is photos[0] else photos[0]
            piece = _view(other, (side, side), other.shape[1] / 2, other.shape[0] / 2,
                          min(other.shape[:2]) / side * 0.5)  # fmt: skip
            x = round((w - side) * (1 - t))
            y = round((h - side) / 2 + (h - side) / 3 * math.sin(math.pi * t + phase))
            frame[y : y + side, x : x + side] = piece
        yield frame


def write_frames(frames: Iterator[np.ndarray], folder: Path, *, prefix: str = "frame") -> int:
    """Save frames as ``folder/<prefix>_00000.png``...; returns how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, frame in enumerate(frames, 1):
        Image.fromarray(frame).save(folder / f"{prefix}_{count - 1:05d}.png", compress_level=1)
    return count


def write_video(
    frames: Iterator[np.ndarray],
    path: Path,
    *,
    fps: int = 24,
    tone_hz: float | None = 440.0,
    sample_rate: int = 48000,
) -> int:
    """Encode frames as an H.264 MP4 (PyAV), with a sine tone as AAC audio unless ``tone_hz``
    is None; the tone lasts as long as the video. Returns the number of frames written."""
    import av  # the video extra

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return 0
    count = 0
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.height, video.width = first.shape[:2]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "12", "preset": "ultrafast"}
        audio = out.add_stream("aac", rate=sample_rate) if tone_hz is not None else None
        for frame in itertools.chain([first], frames):
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            count += 1
        out.mux(video.encode(None))
        if audio is not None:
            n = round(count / fps * sample_rate)
            t = np.arange(n) / sample_rate
            wave = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = np.ascontiguousarray(wave[None, start : start + 1024])
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate, af.pts = sample_rate, start
                out.mux(audio.encode(af))
            out.mux(audio.encode(None))
    return count


def make_clip_set(
    photos: Sequence[Path],
    out_dir: Path,
    *,
    clips: int = 12,
    frames: int = 30,
    size: tuple[int, int] = (384, 216),
    seed: int = 0,
) -> list[Path]:
    """Write ``clips`` frame folders made from ``photos`` under ``out_dir`` (for evaluate-video).

    The motions take turns (pan, zoom, orbit, object); every fifth clip from the second on
    cuts to another photo two thirds of the way through. Photos are drawn without
    replacement with ``seed``, two per clip.

    Returns:
        The clip folders, named ``<index>_<motion>[_cut]``.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(photos))
    if len(order) < 2 * clips:
        raise ValueError(f"{clips} clips need {2 * clips} photos, got {len(photos)}")
    folders = []
    for i in range(clips):
        motion = MOTIONS[i % len(MOTIONS)]
        cut_at = round(frames * 2 / 3) if i % 5 == 1 else None
        pair = [np.asarray(Image.open(photos[j]).convert("RGB")) for j in order[2 * i : 2 * i + 2]]
        folder = out_dir / f"{i:02d}_{motion}{'_cut' if cut_at else ''}"
        write_frames(
            synthetic_clip(pair, frames, size, motion, cut_at=cut_at, seed=seed + i), folder
        )
        folders.append(folder)
    return folders
