"""``pixcolor video``: colorize whole clips (video files or frame folders) into an output folder.

A video file ``name.ext`` gives ``OUT/name.mp4``; a frame folder ``name/`` gives ``OUT/name/``
with each frame saved as PNG under its own name. Each output is written under a hidden
temporary name and renamed into place only once complete (:func:`pixcolor.atomic.atomic_output`),
so an interrupted run (Ctrl-C, a crash, a full disk) leaves no partial output behind; outputs
that exist are kept unless ``overwrite``, and an input is never replaced.

Colour hints (:mod:`pixcolor.video.hints`): ``--hints FILE`` for one clip, or ``--hints
FOLDER`` holding ``<clip name>.json`` per clip (the video file's stem or the frame folder's
name; a clip without one gets none). A bad hints file fails its clip only, before any work.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pixcolor.atomic import atomic_output
from pixcolor.errors import PixcolorError
from pixcolor.pipeline import Colorizer
from pixcolor.png import write_png
from pixcolor.video.frames import colorize_frames
from pixcolor.video.hints import VideoHints, load_video_hints
from pixcolor.video.io import is_video_name, list_frames, probe_video, read_frames, transcode_video
from pixcolor.video.temporal import TemporalOptions


class OutputExistsError(PixcolorError):
    """The output of a clip exists already (and overwriting was not asked for)."""


@dataclass(frozen=True)
class VideoSettings:
    """How clips are colorized (the flags of ``pixcolor video``)."""

    size: int | None = None  # the model's working size; None: the model's own
    consistent: bool = True  # temporal consistency (False: plain per-frame colorization)
    temporal: TemporalOptions = field(
        default_factory=TemporalOptions
    )  # the temporal filter's settings
    overwrite: bool = False  # replace outputs that exist
    saturation: float = 1.0  # factor on the output's ab (1 = the model's own colours)
    hints: Path | None = None  # a video hints file (one clip) or a folder of <clip name>.json


def output_for(src: Path, out_dir: Path) -> Path:
    """``OUT/<stem>.mp4`` for a video file, ``OUT/<folder name>`` for a frame folder."""
    return out_dir / (f"{src.stem}.mp4" if src.is_file() else src.resolve().name)


def clip_hints(src: Path, hints: Path | None) -> VideoHints | None:
    """The hints of clip ``src`` from ``--hints`` (see the module doc); None without any.

    Raises:
        HintError: the clip's hints file is missing (a file given), unreadable or malformed.
    """
    if hints is None:
        return None
    if hints.is_dir():
        path = hints / f"{src.stem if src.is_file() else src.resolve().name}.json"
        return load_video_hints(path) if path.is_file() else None
    return load_video_hints(hints)


def check_input(src: Path) -> None:
    """Raise :class:`PixcolorError` with one clear line when ``src`` is no clip."""
    if src.is_dir():
        return
    if not src.exists():
        raise PixcolorError(f"{src}: no such file or folder")
    if not is_video_name(src):
        raise PixcolorError(
            f"{src}: not a video (.avi, .mkv, .mov, .mp4, .webm) or a folder of frames"
        )


def _check_target(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse to replace an input, or an existing output without ``overwrite``."""
    s, d = src.resolve(), dst.resolve()
    if s == d or d in s.parents:
        raise PixcolorError(f"{src}: the output {dst} would replace the input; choose another -o")
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst}: already exists (--overwrite to replace it)")


def colorize_clip(
    model: Colorizer,
    src: Path,
    out_dir: Path,
    settings: VideoSettings = VideoSettings(),
    hints: VideoHints | None = None,
) -> Path:
    """Colorize one clip into ``out_dir`` and return the output's path (see the module doc).

    ``hints`` are the clip's colour hints (:func:`clip_hints`); ``settings.hints`` is not read.

    Raises:
        PixcolorError: bad input (one line naming the file), or the output exists.
    """
    check_input(src)
    dst = output_for(src, out_dir)
    _check_target(src, dst, settings.overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)

    def process(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        return colorize_frames(
            model, frames, size=settings.size, temporal=settings.temporal,
            consistent=settings.consistent, saturation=settings.saturation, hints=hints,
        )  # fmt: skip

    folder = src.is_dir()
    with atomic_output(dst, overwrite=settings.overwrite, folder=folder) as tmp:
        if folder:
            paths = list_frames(src)
            with _bar(src, len(paths)) as bar:
                for path, rgb in zip(paths, process(read_frames(paths)), strict=True):
                    with open(tmp / f"{path.stem}.png", "wb") as fp:
                        write_png(rgb, fp)
                    bar.update()
        else:
            with _bar(src, probe_video(src).frames) as bar:
                transcode_video(src, tmp, process, on_frame=bar.update)
    return dst


def _bar(src: Path, total: int | None) -> tqdm:
    """A progress bar over one clip's frames: frames per second and time left."""
    return tqdm(total=total, desc=src.name, unit="frame", disable=None, leave=False)


def run_clips(
    load: Callable[[], Colorizer],
    inputs: Sequence[str | Path],
    out_dir: Path,
    settings: VideoSettings,
) -> int:
    """Colorize every input clip; a bad one is one line on stderr and the rest go on.

    Args:
        load: returns the colorizer; called once, at the first input that is a clip.
        inputs: video files and frame folders.
        out_dir: the output folder.
        settings: how to colorize.

    Returns:
        The exit code: 0 when all were written (or kept), 1 when any failed.
    """
    done = skipped = failed = 0
    model = None
    for raw in inputs:
        src = Path(raw)
        try:
            check_input(src)
            _check_target(src, output_for(src, out_dir), settings.overwrite)
            hints = clip_hints(src, settings.hints)
        except OutputExistsError as exc:
            print(f"{exc}; skipped", file=sys.stderr)
            skipped += 1
            continue
        except PixcolorError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        model = model or load()  # a bad --model stops the run here (exit 2)
        try:
            print(f"{src} -> {colorize_clip(model, src, out_dir, settings, hints)}")
            done += 1
        except (PixcolorError, OSError) as exc:
            print(exc if isinstance(exc, PixcolorError) else f"{src}: {exc}", file=sys.stderr)
            failed += 1
    print(f"colorized {done}, skipped {skipped} (output exists), failed {failed}")
    return 1 if failed else 0
