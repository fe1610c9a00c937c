"""Reading and writing clips: video files through PyAV (FFmpeg), folders of frames.

:func:`transcode_video` decodes a video frame by frame, hands the frames to a processing
generator and encodes what it yields as H.264 in MP4, with each frame's own timestamp (so frame
rate and duration stay the input's, even for variable frame rate); the audio is copied packet
for packet, and only re-encoded to AAC when MP4 cannot hold the input's codec. Nothing is kept
in memory beyond the codecs' own buffers.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.files import is_image_name
from pixcolor.imageio import read_image, to_array

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm"})
# Audio codecs FFmpeg's MP4 muxer stores as they are; any other is re-encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"})
CRF = 17  # x264 constant quality: visually lossless for most footage
PRESET = "fast"  # x264 speed preset; encoding is a small part of the time per frame
DEFAULT_FPS = Fraction(25)  # for a stream that states no frame rate

FrameProcessor = Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]]


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` finds in a file."""

    width: int
    height: int
    fps: Fraction  # average frame rate
    frames: int | None  # frame count, when the container states or implies it
    audio_codec: str | None  # first audio stream's codec, None without audio


def is_video_name(path: str | Path) -> bool:
    """True when ``path`` ends in one of :data:`VIDEO_SUFFIXES` (any case)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        raise PixcolorError(f"{path}: cannot read video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise PixcolorError(f"{path}: no video stream")
    return container


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def probe_video(path: str | Path) -> VideoInfo:
    """Size, frame rate, frame count and audio codec of a video file.

    Raises:
        PixcolorError: not a readable video.
    """
    with _open(Path(path)) as container:
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
        frames = stream.frames or None
        if frames is None and stream.duration and stream.time_base:
            frames = round(float(stream.duration * stream.time_base * fps)) or None
        elif frames is None and container.duration:
            frames = round(container.duration / av.time_base * float(fps)) or None
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, Fraction(fps),
                         frames, audio)  # fmt: skip


def transcode_video(
    src: str | Path,
    dst: str | Path,
    process: FrameProcessor,
    *,
    on_frame: Callable[[], object] | None = None,
) -> int:
    """Decode ``src``, pass its frames through ``process`` and write the result to ``dst``.

    Args:
        src: a video file PyAV can read.
        dst: the MP4 file to write (H.264; audio copied). Written in place: callers write to a
            temporary name and rename it.
        process: takes an iterator of RGB frames ``(H, W, 3)`` uint8 and yields exactly one
            output frame of the same size per input frame, in order.
        on_frame: called after each output frame is encoded (progress bars).

    Returns:
        The number of frames written.

    Raises:
        PixcolorError: ``src`` cannot be read or decoded, or ``dst`` cannot be written.
    """
    src, dst = Path(src), Path(dst)
    with _open(src) as inp:
        try:
            with av.open(str(dst), "w", format="mp4") as out:
                return _transcode(inp, out, process, on_frame)
        except av.FFmpegError as exc:
            raise PixcolorError(f"{src}: cannot transcode ({_reason(exc)})") from None
        except PixcolorError as exc:
            raise PixcolorError(f"{src}: {exc}") from None


def _transcode(inp, out, process: FrameProcessor, on_frame) -> int:
    """The body of :func:`transcode_video` on open containers."""
    vin = inp.streams.video[0]
    vin.thread_type = "AUTO"
    width, height = vin.codec_context.width, vin.codec_context.height
    rate = vin.average_rate or vin.guessed_rate or DEFAULT_FPS
    vout = out.add_stream("libx264", rate=rate)
    vout.width, vout.height = width, height
    # 4:2:0 needs even sides; odd-sized clips keep full chroma instead of being cropped
    vout.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    vout.options = {"crf": str(CRF), "preset": PRESET}
    vout.time_base = vin.time_base or Fraction(1, 90000)
    vout.codec_context.time_base = vout.time_base
    ain = inp.streams.audio[0] if inp.streams.audio else None
    copy_audio = ain is not None and ain.codec_context.name in MP4_AUDIO_CODECS
    aout = None
    if copy_audio:
        aout = out.add_stream_from_template(ain)
    elif ain is not None:
        log.info("audio: %s cannot go into MP4 as it is; re-encoded to AAC", ain.codec_context.name)
        aout = out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
    stamps: deque[int | None] = deque()

    def frames() -> Iterator[np.ndarray]:
        streams = [s for s in (vin, ain) if s is not None]
        for packet in inp.demux(*streams):
            if packet.stream is ain:
                if packet.dts is None:  # a flush packet
                    continue
                if copy_audio:
                    packet.stream = aout
                    out.mux(packet)
                else:
                    for frame in packet.decode():
                        out.mux(aout.encode(frame))
                continue
            for frame in packet.decode():
                stamps.append(frame.pts)
                yield frame.to_ndarray(format="rgb24")

    count = 0
    for rgb in process(frames()):
        if rgb.shape != (height, width, 3):
            raise PixcolorError(f"frame {count} is {rgb.shape}, not ({height}, {width}, 3)")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        pts = stamps.popleft()
        frame.pts = pts if pts is not None else round(count / rate / vout.time_base)
        frame.time_base = vout.time_base
        out.mux(vout.encode(frame))
        count += 1
        if on_frame is not None:
            on_frame()
    out.mux(vout.encode(None))
    if aout is not None and not copy_audio:
        out.mux(aout.encode(None))
    if count == 0:
        raise PixcolorError("no frames could be decoded")
    return count


def _natural_key(path: Path) -> list[object]:
    """Sort key: ``frame_2`` before ``frame_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_frames(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, in natural name order.

    Raises:
        PixcolorError: not a folder, or no images in it.
    """
    folder = Path(folder)
    try:
        paths = [p for p in folder.iterdir() if p.is_file() and is_image_name(p.name)]
    except OSError as exc:
        raise PixcolorError(f"{folder}: cannot list folder ({_reason(exc)})") from None
    if not paths:
        raise PixcolorError(f"{folder}: no image files in this folder")
    return sorted(paths, key=_natural_key)


def read_frames(paths: list[Path]) -> Iterator[np.ndarray]:
    """Read frames one at a time as ``(H, W, 3)`` uint8 RGB; all must have the first's size.

    Raises:
        PixcolorError: a frame cannot be read, or its size differs from the first frame's.
    """
    shape = None
    for path in paths:
        try:
            rgb = to_array(read_image(path))
        except ImageReadError as exc:
            raise PixcolorError(f"{path}: {exc.reason}") from None
        if shape is not None and rgb.shape != shape:
            raise PixcolorError(
                f"{path}: frame is {rgb.shape[1]}x{rgb.shape[0]}, the clip is {shape[1]}x{shape[0]}"
            )
        shape = rgb.shape
        yield rgb
