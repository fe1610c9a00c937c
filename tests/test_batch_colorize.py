"""``pixcolor colorize`` as users run it: output folders, runs side by side, SIGTERM, stale temp
files, HEIC, devices, colour strength, --stochastic, and the one-call API's model cache."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pixcolor
from pixcolor import pipeline
from pixcolor.batch import run_batch
from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.color import rgb_to_lab
from pixcolor.models import create_generator


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """A tiny untrained U-Net (no dropout), saved as a model folder."""
    kwargs = {"base_channels": 8, "num_downs": 5}
    folder = tmp_path_factory.mktemp("model") / "tiny"
    save_model(create_generator("unet", **kwargs), folder, "unet", kwargs, extra={"size": 64})
    return str(folder)


def _photo(path: Path, value: int = 120) -> Path:
    rng = np.random.default_rng(value)
    pixels = np.clip(value + rng.normal(0, 20, (40, 56)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _colorize(tiny: str, *args: str) -> int:
    return main(["colorize", *args, "--model", tiny, "--device", "cpu"])


def test_output_folder_inside_the_input_folder_is_not_searched(tiny, tmp_path, capsys):
    _photo(tmp_path / "nest" / "a.jpg")
    out = tmp_path / "nest" / "out"
    assert _colorize(tiny, str(tmp_path / "nest"), "-o", str(out)) == 0
    assert _colorize(tiny, str(tmp_path / "nest"), "-o", str(out)) == 0
    captured = capsys.readouterr()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a.png"]
    assert captured.out.count("not searched for inputs") == 2  # once per run
    assert "colorized 0, skipped 1 (output exists; use --overwrite to replace them)" in captured.out


def test_input_folder_as_output_folder_is_refused_before_any_work(tiny, tmp_path, capsys):
    _photo(tmp_path / "in" / "a.jpg")
    assert _colorize(tiny, str(tmp_path / "in"), "-o", str(tmp_path / "in" / ".")) == 2
    err = capsys.readouterr().err
    assert "the output folder is the input folder; choose another -o" in err
    assert len(err.strip().splitlines()) == 1 and "loading" not in err
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.jpg"]


def test_empty_output_folder_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["colorize", str(_photo(tmp_path / "a.jpg")), "-o", ""])
    assert exc.value.code == 2
    assert "the output folder is empty" in capsys.readouterr().err


def test_output_written_by_another_run_meanwhile_is_skipped(tmp_path, capsys):
    src = _photo(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"

    def job(item) -> Image.Image:  # another run publishes a.png while this one works
        Image.new("RGB", (4, 4), (1, 2, 3)).save(out / "a.png")
        return Image.new("RGB", (4, 4))

    result = run_batch([src], out, job, verb="colorized")
    assert (result.exit_code, result.done, result.raced) == (0, 0, 1)
    text = capsys.readouterr()
    assert "colorized 0, skipped 0, skipped 1 (written by another run), failed 0" in text.out
    assert "overwrite=True" not in text.out + text.err
    assert Image.open(out / "a.png").getpixel((0, 0)) == (1, 2, 3)  # theirs is kept


def test_unreadable_output_of_another_run_is_a_failure(tmp_path, capsys):
    src = _photo(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"

    def job(item) -> Image.Image:
        (out / "a.png").write_bytes(b"not a png")
        return Image.new("RGB", (4, 4))

    assert run_batch([src], out, job).exit_code == 1
    assert "another run wrote it, but it is not a readable image" in capsys.readouterr().err


# A child that colorizes one file with a stand-in writer that receives SIGTERM mid-write.
SIGTERM_CHILD = r"""
import os, signal, sys, time
import pixcolor.imagewrite
from PIL import Image
from pixcolor.batch import run_batch

def slow_write(get_rows, shape, fp, **kwargs):
    fp.write(b"\x89PNG half")
    fp.flush()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)

pixcolor.imagewrite.write_png_rows = slow_write
try:
    run_batch([sys.argv[1]], sys.argv[2], lambda p: Image.new("RGB", (8, 8)))
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_sigterm_during_a_write_leaves_no_temp_file(tmp_path):
    src, out = _photo(tmp_path / "a.jpg"), tmp_path / "out"
    child = [sys.executable, "-c", SIGTERM_CHILD, str(src), str(out)]
    done = subprocess.run(child, capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert [p.name for p in out.iterdir()] == []  # neither a.png nor its temp file


def test_stale_temp_files_of_killed_runs_are_removed(tmp_path):
    src, out = _photo(tmp_path / "a.jpg"), tmp_path / "out"
    out.mkdir()
    stale, fresh = out / ".a.png.pixcolor-0123abcd.tmp", out / ".b.png.pixcolor-89abcdef.tmp"
    other = out / ".notes.tmp"  # not our naming pattern: never touched
    for path in (stale, fresh, other):
        path.write_bytes(b"partial")
    old = time.time() - 120
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    run_batch([src], out, lambda p: Image.new("RGB", (4, 4)))
    assert sorted(p.name for p in out.iterdir()) == sorted([fresh.name, other.name, "a.png"])


@pytest.mark.skipif(importlib.util.find_spec("pillow_heif") is not None, reason="HEIC readable")
def test_heic_files_in_folders_are_listed_as_skipped(tmp_path, capsys):
    _photo(tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "b.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    result = run_batch([tmp_path / "in"], tmp_path / "out", lambda p: Image.new("RGB", (4, 4)))
    assert result.exit_code == 0 and result.done == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'in' / 'b.HEIC'}: skipped: HEIC/HEIF photos need the pillow-heif" in err


def test_heic_files_are_taken_when_pillow_heif_is_installed(tmp_path, monkeypatch):
    from pixcolor import files

    (tmp_path / "b.heic").write_bytes(b"x")
    monkeypatch.setattr(files, "heif_supported", lambda: True)
    found, problems = files.collect_inputs([tmp_path])
    assert [item.relative.as_posix() for item in found] == ["b.heic"] and problems == []


@pytest.mark.parametrize(
    "device, message",
    [("nonsense", "'nonsense' is not a device name; available: "), ("cuda:7", "'cuda:7'")],
)
def test_unusable_device_is_one_line(tiny, tmp_path, capsys, device, message):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    src = _photo(tmp_path / "a.jpg")
    for argv in (
        ["colorize", str(src), "-o", str(tmp_path / "o"), "--model", tiny],
        ["upscale", str(src), "-o", str(tmp_path / "o")],
        ["info"],
    ):
        assert main([*argv, "--device", device]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "cpu" in err and len(err.splitlines()) <= 2  # + loading line


def test_saturation_flag(tiny, tmp_path, capsys):
    src = _photo(tmp_path / "a.jpg")
    assert _colorize(tiny, str(src), "-o", str(tmp_path / "s0"), "--saturation", "0") == 0
    gray = np.asarray(Image.open(tmp_path / "s0" / "a.png"))
    lab = rgb_to_lab(torch.from_numpy(gray.copy()).permute(2, 0, 1).double() / 255)
    assert lab[1:].abs().max() < 1.0  # a = b = 0 up to 8-bit rounding
    assert _colorize(tiny, str(src), "-o", str(tmp_path / "s3"), "--saturation", "3") == 2
    assert "--saturation must be in [0, 2], got 3" in capsys.readouterr().err


def test_saturation_in_the_api(tiny):
    model = pixcolor.load_model(tiny, device="cpu")
    image = _photo(Path(tiny).parent / "p.png")
    base = np.asarray(model.colorize(image))
    assert np.array_equal(np.asarray(model.colorize(image, saturation=1.0)), base)
    assert np.array_equal(np.asarray(pixcolor.colorize(image, model=model, saturation=1)), base)
    strong = np.asarray(model.colorize(image, saturation=2.0)).astype(int)
    assert (
        np.abs(strong[..., 0] - strong[..., 2]).mean()
        > np.abs(base[..., 0] - base[..., 2].astype(int)).mean()
    )
    with pytest.raises(ValueError, match="saturation must be in"):
        model.colorize(image, saturation=-0.5)


def test_stochastic_without_dropout_is_refused(tiny, tmp_path, capsys):
    src = _photo(tmp_path / "a.jpg")
    assert _colorize(tiny, str(src), "-o", str(tmp_path / "o"), "--stochastic") == 2
    err = capsys.readouterr().err
    assert "--stochastic (stochastic=True) needs a model with dropout" in err
    assert not (tmp_path / "o").exists()


def test_one_call_api_loads_a_shipped_model_once(monkeypatch):
    loaded = []

    class Stub:
        def colorize(self, image, **kwargs):
            return kwargs

    def fake_load(name=None, device=None):
        loaded.append(name)
        return Stub()

    monkeypatch.setattr(pipeline, "load_model", fake_load)
    pipeline.shipped_model.cache_clear()
    try:
        for _ in range(3):
            assert pixcolor.colorize("x.jpg", saturation=0.5)["saturation"] == 0.5
        pixcolor.colorize("x.jpg", model="fast")
    finally:
        pipeline.shipped_model.cache_clear()
    assert loaded == ["default", "fast"]


def _tagged_photo(path: Path) -> tuple[Path, bytes]:
    """A colour JPEG with EXIF (orientation 6, date taken, camera, description) and an sRGB
    ICC profile; returns its path and the profile."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = "Acme"  # Make
    exif[0x0110] = "Box Camera 2"  # Model
    exif[0x010E] = "Grandma, 1952"  # ImageDescription
    exif.get_ifd(0x8769)[0x9003] = "1952:07:14 10:30:00"  # DateTimeOriginal (Exif IFD)
    rng = np.random.default_rng(0)
    pixels = rng.integers(60, 200, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, exif=exif, icc_profile=icc, quality=95)
    return path, icc


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_outputs_keep_exif_and_icc_but_not_orientation(tiny, tmp_path, fmt):
    src, icc = _tagged_photo(tmp_path / "grandma.jpg")
    assert _colorize(tiny, str(src), "-o", str(tmp_path / "out"), "--format", fmt) == 0
    with Image.open(tmp_path / "out" / f"grandma.{fmt}") as out:
        assert out.size == (24, 40)  # the orientation was applied to the pixels
        exif = out.getexif()
        assert out.info.get("icc_profile") == icc
    assert 0x0112 not in exif
    assert (exif[0x010F], exif[0x0110], exif[0x010E]) == ("Acme", "Box Camera 2", "Grandma, 1952")
    assert exif.get_ifd(0x8769)[0x9003] == "1952:07:14 10:30:00"


def test_gray_icc_profiles_are_not_put_on_colour_outputs(tmp_path):
    from pixcolor.imageio import output_metadata

    gray_icc = bytes(16) + b"GRAY" + bytes(108)  # an ICC header whose colour space is gray
    Image.new("L", (8, 8), 90).save(tmp_path / "g.jpg", icc_profile=gray_icc)
    assert output_metadata(tmp_path / "g.jpg") == {}
    (tmp_path / "bad.jpg").write_bytes(b"nonsense")
    assert output_metadata(tmp_path / "bad.jpg") == {}
