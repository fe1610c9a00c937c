"""``pixcolor video`` and ``evaluate-video`` end to end on generated clips (fast model, small)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from skimage import data  # noqa: E402

import pixcolor  # noqa: E402
from pixcolor.cli import main  # noqa: E402
from pixcolor.pipeline import Colorizer  # noqa: E402
from pixcolor.video import colorize_frames  # noqa: E402
from pixcolor.video.consistency import lab_of  # noqa: E402
from pixcolor.video.synth import synthetic_clip, write_frames, write_video  # noqa: E402

SIZE = (96, 64)  # (width, height) of the test clips
FAST = ["--model", "fast", "--size", "64", "--device", "cpu"]


def clip(frames: int = 12, motion: str = "pan") -> list[np.ndarray]:
    return list(synthetic_clip([data.astronaut(), data.coffee()], frames, SIZE, motion))


@pytest.fixture(scope="module")
def model() -> Colorizer:
    return pixcolor.load_model("fast", device="cpu")


def streams(path: Path) -> dict:
    """Frame count, rate, size and the audio packets' digest of a video file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        info = {"frames": frames, "fps": v.average_rate, "size": (v.width, v.height)}
        info["duration"] = float(v.duration * v.time_base)
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        digest = hashlib.sha256()
        for packet in c.demux(a):
            if packet.size:
                digest.update(bytes(packet))
        info["audio"] = (a.codec_context.name, digest.hexdigest())
    return info


def lightness(rgb: np.ndarray) -> np.ndarray:
    return lab_of(rgb)[0]


def test_video_file_in_and_out_keeps_rate_size_duration_and_audio(tmp_path, capsys):
    src = tmp_path / "home movie.mp4"
    write_video(iter(clip(12)), src, fps=12)
    assert main(["video", str(src), "-o", str(tmp_path / "out"), *FAST]) == 0
    out = tmp_path / "out" / "home movie.mp4"
    got, want = streams(out), streams(src)
    assert got["frames"] == want["frames"] == 12
    assert got["fps"] == want["fps"] == 12
    assert got["size"] == want["size"] == SIZE
    assert got["duration"] == pytest.approx(want["duration"])
    assert got["audio"] == want["audio"]  # the same AAC packets: copied, not re-encoded
    assert sorted(os.listdir(tmp_path / "out")) == ["home movie.mp4"]  # no temp file left
    assert "colorized 1, skipped 0 (output exists), failed 0" in capsys.readouterr().out


def test_frame_folder_in_and_out(tmp_path, model):
    frames = clip(6)
    folder = tmp_path / "reel"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"shot_{i + 1}.jpg", quality=95)
    assert main(["video", str(folder), "-o", str(tmp_path / "out"), *FAST]) == 0
    names = sorted(os.listdir(tmp_path / "out" / "reel"))
    assert names == sorted(f"shot_{i + 1}.png" for i in range(6))
    for i in (1, 6):
        src = np.asarray(Image.open(folder / f"shot_{i}.jpg").convert("RGB"))
        out = np.asarray(Image.open(tmp_path / "out" / "reel" / f"shot_{i}.png"))
        assert out.shape == src.shape
        assert np.abs(lightness(out) - lightness(src)).max() < 1.5  # luminance kept
        assert np.abs(lab_of(out)[1:]).mean() > 0.5  # and colour added (gray: under 0.01)


def test_per_frame_path_is_the_photo_pipeline(model):
    frames = clip(3)
    outs = list(colorize_frames(model, frames, size=64, consistent=False))
    for frame, out in zip(frames, outs, strict=True):
        np.testing.assert_array_equal(out, np.asarray(model.colorize(frame, size=64)))


def test_consistent_path_differs_only_after_the_first_frame(model):
    frames = clip(4)
    plain = list(colorize_frames(model, frames, size=64, consistent=False))
    steady = list(colorize_frames(model, frames, size=64))
    np.testing.assert_array_equal(plain[0], steady[0])
    assert any(
        np.abs(p.astype(int) - s).max() > 0 for p, s in zip(plain[1:], steady[1:], strict=True)
    )


def test_bad_inputs_are_one_line_each_and_the_rest_goes_on(tmp_path, capsys):
    good = tmp_path / "good"
    write_frames(iter(clip(3)), good)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 50)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    args = [str(tmp_path / "missing.mov"), str(broken), str(notes), str(good)]
    assert main(["video", *args, "-o", str(tmp_path / "out"), *FAST]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3, err
    assert "missing.mov: no such file or folder" in err[0]
    assert "broken.mp4: cannot read video" in err[1]
    assert "notes.txt: not a video" in err[2]
    assert sorted(os.listdir(tmp_path / "out")) == ["good"]


def test_outputs_are_kept_unless_overwrite_and_inputs_never_replaced(tmp_path, capsys):
    good = tmp_path / "good"
    write_frames(iter(clip(2)), good)
    out = tmp_path / "out"
    (out / "good").mkdir(parents=True)
    (out / "good" / "mine.txt").write_text("keep me")
    assert main(["video", str(good), "-o", str(out), *FAST]) == 0
    assert "already exists" in capsys.readouterr().err
    assert os.listdir(out / "good") == ["mine.txt"]
    assert main(["video", str(good), "-o", str(out), "--overwrite", *FAST]) == 0
    assert sorted(os.listdir(out / "good")) == ["frame_00000.png", "frame_00001.png"]
    assert sorted(os.listdir(out)) == ["good"]
    # the output folder of an input folder named like its parent would be the input itself
    assert main(["video", str(good), "-o", str(tmp_path), "--overwrite", *FAST]) == 1
    assert "would replace the input" in capsys.readouterr().err
    assert len(os.listdir(good)) == 2


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_interrupt_leaves_no_partial_output(tmp_path, monkeypatch, kind):
    if kind == "file":
        src = tmp_path / "clip.mp4"
        write_video(iter(clip(8)), src, fps=8)
    else:
        src = tmp_path / "clip"
        write_frames(iter(clip(8)), src)
    real = Colorizer.compose
    calls = []

    def compose_then_interrupt(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "compose", compose_then_interrupt)
    assert main(["video", str(src), "-o", str(tmp_path / "out"), *FAST]) == 130
    assert os.listdir(tmp_path / "out") == []


def test_evaluate_video_reports_both_paths(tmp_path, capsys):
    write_frames(synthetic_clip([data.astronaut()], 5, SIZE, "zoom"), tmp_path / "clips" / "z")
    assert (
        main(["evaluate-video", str(tmp_path / "clips"), *FAST, "--json", str(tmp_path / "s.json")])
        == 0
    )
    out = capsys.readouterr().out
    for row in ("gray", "per-frame", "consistent", "truth", "overall"):
        assert row in out
    assert "consistent vs per-frame: CDC" in out
    scores = __import__("json").loads((tmp_path / "s.json").read_text())["overall"]["scores"]
    assert scores["truth"]["warp_ratio"] == pytest.approx(1.0)
    assert scores["gray"]["ab"] < 1.0 < scores["per-frame"]["ab"]


def test_video_commands_start_without_torch_av_or_cv2():
    code = (
        "import sys; from pixcolor.cli import build_parser; build_parser(['video']); "
        "build_parser(['evaluate-video']); "
        "print(sorted({'torch', 'av', 'cv2'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_saturation_zero_gives_gray_frames(tmp_path):
    write_frames(iter(clip(2)), tmp_path / "reel")
    args = ["video", str(tmp_path / "reel"), "-o", str(tmp_path / "out"), "--saturation", "0"]
    assert main([*args, *FAST]) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "reel" / "frame_00001.png"))
    assert np.abs(lab_of(out)[1:]).mean() < 1.0


SIGTERM_VIDEO_CHILD = """
import os, signal, sys
import pixcolor.video.clips as clips
from pixcolor.cli import main

real = clips.write_png
count = 0

def write_then_term(rgb, fp):
    global count
    real(rgb, fp)
    count += 1
    if count == 2:  # mid-clip: two frames written into the temporary folder
        os.kill(os.getpid(), signal.SIGTERM)

clips.write_png = write_then_term
sys.exit(main(["video", sys.argv[1], "-o", sys.argv[2], "--model", "fast", "--size", "64",
               "--device", "cpu"]))
"""


def test_sigterm_mid_clip_leaves_no_partial_output(tmp_path):
    write_frames(iter(clip(6)), tmp_path / "reel")
    out = tmp_path / "out"
    child = [sys.executable, "-c", SIGTERM_VIDEO_CHILD, str(tmp_path / "reel"), str(out)]
    done = subprocess.run(child, capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert list(out.iterdir()) == []  # neither reel/ nor its temp folder
