"""Robustness and safety (issue 7): bad input, crashes and untrusted files lose nothing.

- A bad-input corpus, generated here, through ``colorize``, ``upscale``, ``evaluate`` and the
  data sets: valid images come out right, each bad one gets one line naming it and the reason,
  no traceback, the batch goes on, the exit code says some failed, nothing else is written, and
  the decompression bomb is refused from its header.
- Bounded memory on a large photo (peak RSS of a child process).
- Nothing lost: existing outputs and inputs, full disks, unwritable folders, SIGKILL in the
  middle of an epoch and of a checkpoint write, corrupt checkpoints.
- Run nobody's code: pickles with a payload are refused and the payload never runs.
- Fuzzing (hypothesis, bounded): image reading and config parsing raise only their typed errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import logging
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile
from train_helpers import tiny_train_config

from pixcolor import checkpoint as ckpt
from pixcolor import imageio
from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.config import TrainConfig
from pixcolor.data import ColorizationDataset, UnreadableImageWarning, prepare_cache
from pixcolor.errors import CheckpointError, ConfigError, ImageReadError, PixcolorError
from pixcolor.imageio import DEFAULT_MAX_PIXELS, read_image
from pixcolor.models import create_generator
from pixcolor.pipeline import load_model

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TINY = {"base_channels": 8, "num_downs": 5}
SRC = Path(__file__).resolve().parent.parent / "src"


# ---- the corpus ------------------------------------------------------------------------------


def png_bytes(width: int, height: int, colour_type: int = 2, raw: bytes = b"\0") -> bytes:
    """A hand-written 8-bit PNG whose header claims ``width`` x ``height`` (any size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A colour photo stand-in ``(height, width, 3)`` uint8: gradients plus grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x * 255 / max(1, width), y * 255 / max(1, height), np.full((height, width), 90)], -1
    )
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def skimage_photos(height: int | None) -> dict[str, Image.Image]:
    """scikit-image's astronaut, coffee and chelsea, scaled to ``height`` rows (None: as is)."""
    from skimage import data

    photos = {}
    for name in ("astronaut", "coffee", "chelsea"):
        img = Image.fromarray(getattr(data, name)())
        if height is not None:
            img = img.resize((round(img.width * height / img.height), height), Image.BICUBIC)
        photos[f"{name}.jpg"] = img
    return photos


@dataclass
class Corpus:
    """A folder of the corpus: what each file should become.

    Attributes:
        root: The folder.
        valid: Image file (relative name) -> its displayed size ``(width, height)``.
        invalid: Bad file (relative name) -> the reason its one error line must give.
        locked: The file without read permission (emulated when running as root).
    """

    root: Path
    valid: dict[str, tuple[int, int]]
    invalid: dict[str, str]
    locked: Path


def make_corpus(root: Path, photo_height: int | None = 48) -> Corpus:
    """Write the whole bad-input corpus of issue 7 plus three valid photos into ``root``."""
    root.mkdir(parents=True)
    valid: dict[str, tuple[int, int]] = {}
    invalid: dict[str, str] = {}

    def put(name: str, data: bytes, reason: str | None = None) -> Path:
        (root / name).write_bytes(data)
        if reason is not None:
            invalid[name] = reason
        return root / name

    def image(name: str, img: Image.Image, fmt: str, **options) -> None:
        put(name, encoded(img, fmt, **options))
        valid[name] = img.size

    for name, photo in skimage_photos(photo_height).items():
        image(name, photo, "JPEG", quality=90)
    small = Image.fromarray(gradient(40, 24))
    jpeg, png = encoded(small, "JPEG"), encoded(small, "PNG")
    # Bad files: one clear line each.
    put("empty.jpg", b"", "empty file")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], "truncated image data")
    put("truncated.png", png[: len(png) // 2], "truncated image data")
    put("notes.jpg", b"shopping list: milk, eggs\n", "not an image file")
    put("page.png", b"<!doctype html><html><body>404</body></html>\n", "not an image file")
    put("bomb.png", png_bytes(100_000, 100_000), "image too large")
    locked = put("locked.jpg", jpeg, "permission denied")
    locked.chmod(0)
    (root / "cycle.jpg").symlink_to("cycle.jpg")  # a symlink loop named like an image
    invalid["cycle.jpg"] = "symbolic link loop"
    # Odd but valid images: processed.
    image("tiny 1x1.png", Image.new("RGB", (1, 1), (200, 30, 30)), "PNG")
    image("strip_1x5000.png", Image.fromarray(gradient(1, 5000)), "PNG")
    wide = (np.arange(64 * 48).reshape(48, 64) * 21).astype(np.uint16)  # 0..64491
    image("gray16.png", Image.fromarray(wide), "PNG")
    image("cmyk.jpg", small.convert("CMYK"), "JPEG")
    rgba = small.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    image("rgba.png", rgba, "PNG")
    image("palette.gif", small.convert("P", palette=Image.Palette.ADAPTIVE), "GIF")
    frames = [Image.new("RGB", (30, 20), c).convert("P") for c in ("red", "green", "blue")]
    put("animated.gif", encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    valid["animated.gif"] = (30, 20)
    # EXIF orientation 6 ("rotate 90 CW to display"): stored 40x24, displayed 24x40 with a
    # bright top half, which every output must keep.
    displayed = np.full((40, 24, 3), 40, np.uint8)
    displayed[:20] = 220
    stored = Image.fromarray(displayed).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    put("rotated.jpg", encoded(stored, "JPEG", exif=exif, quality=95))
    valid["rotated.jpg"] = (24, 40)
    image("Grand-mère à la plage 1952.jpg", Image.fromarray(gradient(36, 28, seed=3)), "JPEG")
    # Not files: skipped without a word (a folder named like an image, a folder symlink loop).
    (root / "album.jpg").mkdir()
    (root / "loop").symlink_to(".", target_is_directory=True)
    return Corpus(root, valid, invalid, locked)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "photos")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    g = create_generator("unet", **TINY)
    return save_model(
        g, tmp_path_factory.mktemp("model") / "tiny", "unet", TINY, extra={"size": 64}
    )


@pytest.fixture
def unreadable(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``corpus.locked`` unreadable: chmod 000 does it, except for root, who reads all;
    then ``open`` is patched to answer for that one file as the kernel would."""
    if not IS_ROOT:
        return
    real_open = open

    def guarded_open(file, *args, **kwargs):
        if os.path.abspath(file) == str(corpus.locked):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(imageio, "open", guarded_open, raising=False)


@pytest.fixture
def no_huge_decode(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record every image Pillow decodes; the bomb must never be among them."""
    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def load(self):
        decoded.append(self.size)
        if self.size[0] * self.size[1] > DEFAULT_MAX_PIXELS:
            raise AssertionError(f"decoding a {self.size} image")
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return decoded


def output_name(name: str, suffix: str = ".png") -> str:
    return str(Path(name).with_suffix(suffix))


def everything_under(folder: Path) -> set[str]:
    """Every file and folder below ``folder``, hidden ones included (relative, POSIX)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def check_error_lines(corpus: Corpus, text: str, *, prefix: str = "") -> None:
    """Each bad file: exactly one line, naming it and giving its reason; no valid file named."""
    assert "Traceback" not in text
    lines = text.splitlines()
    for name, reason in corpus.invalid.items():
        mine = [line for line in lines if f"{corpus.root / name}:" in line]
        assert len(mine) == 1, (name, mine)
        assert mine[0].startswith(prefix + str(corpus.root / name) + ":"), mine[0]
        assert reason in mine[0], (name, mine[0])
    for name in corpus.valid:
        assert not [line for line in lines if str(corpus.root / name) in line], name


def mean_luma(img: Image.Image) -> tuple[float, float]:
    """Mean gray level of the top and bottom halves."""
    gray = np.asarray(img.convert("L"), np.float64)
    half = gray.shape[0] // 2
    return gray[:half].mean(), gray[half:].mean()


# ---- the corpus through every command ------------------------------------------------------


def test_colorize_corpus(corpus, tiny_model, tmp_path, capsys, unreadable, no_huge_decode):
    out = tmp_path / "out"
    code = main(["colorize", str(corpus.root), "-o", str(out), "--model", str(tiny_model)])
    captured = capsys.readouterr()
    assert code == 1
    check_error_lines(corpus, captured.err)
    assert "Traceback" not in captured.out
    n_ok, n_bad = len(corpus.valid), len(corpus.invalid)
    assert f"colorized {n_ok}, skipped 0, failed {n_bad}" in captured.out
    assert everything_under(out) == {output_name(n) for n in corpus.valid}  # nothing else
    for name, size in corpus.valid.items():
        with Image.open(out / output_name(name)) as result:
            assert result.size == size and result.mode == "RGB", name
    top, bottom = mean_luma(Image.open(out / "rotated.png"))
    assert top > bottom + 100  # displayed orientation kept
    assert all(w * h <= DEFAULT_MAX_PIXELS for w, h in no_huge_decode)


def test_upscale_corpus(corpus, tmp_path, capsys, unreadable, no_huge_decode):
    out = tmp_path / "big"
    code = main(["upscale", str(corpus.root), "-o", str(out), "--scale", "2", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1
    check_error_lines(corpus, captured.err)
    assert f"failed {len(corpus.invalid)}" in captured.out
    assert everything_under(out) == {output_name(n) for n in corpus.valid}
    for name, (w, h) in corpus.valid.items():
        with Image.open(out / output_name(name)) as result:
            assert result.size == (2 * w, 2 * h), name
    top, bottom = mean_luma(Image.open(out / "rotated.png"))
    assert top > bottom + 100


def test_evaluate_corpus(corpus, tiny_model, tmp_path, capsys, unreadable, no_huge_decode):
    report = tmp_path / "report"
    args = ["evaluate", str(corpus.root), "--model", str(tiny_model), "--device", "cpu"]
    code = main([*args, "-o", str(report)])
    captured = capsys.readouterr()
    assert code == 1
    check_error_lines(corpus, captured.err)
    assert "Traceback" not in captured.out
    assert everything_under(report) == {"metrics.json", "distributions.png", "report.html"}
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["meta"]["images"] == len(corpus.valid)
    assert metrics["meta"]["failed"] == len(corpus.invalid)


def test_evaluate_models_of_one_name_get_rows_of_their_own(tiny_model, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), np.uint8)).save(
        photos / "a.png"
    )
    twin = tmp_path / "other" / tiny_model.name  # another model folder of the same name
    shutil.copytree(tiny_model, twin)
    args = ["evaluate", str(photos), "--model", str(tiny_model), "--compare", str(twin),
            str(twin), "--device", "cpu", "-o", str(tmp_path / "report")]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((tmp_path / "report" / "metrics.json").read_text())["summary"]["all"]
    assert {tiny_model.name, str(twin), f"{twin} (2)"} <= set(summary)
    capsys.readouterr()


def test_datasets_skip_bad_files(corpus, tmp_path, unreadable, no_huge_decode):
    ds = ColorizationDataset(corpus.root, size=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [ds[i] for i in range(len(ds))]
    assert all(item["rgb"].shape == (3, 32, 32) for item in items)
    messages = [str(w.message) for w in caught if issubclass(w.category, UnreadableImageWarning)]
    assert len(messages) == len(corpus.invalid) == len(ds) - len(corpus.valid)
    for name, reason in corpus.invalid.items():
        assert any(f"{corpus.root / name}: {reason}" in m for m in messages), name

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableImageWarning)
        cache = prepare_cache(corpus.root, tmp_path / "cache", 32, num_workers=2, progress=False)
    info = json.loads((cache / "cache.json").read_text())
    assert info["count"] == len(corpus.valid)
    skipped = {Path(s["path"]).name: s["reason"] for s in info["skipped"]}
    assert set(skipped) == set(corpus.invalid)
    assert all(corpus.invalid[n] in r for n, r in skipped.items())
    assert everything_under(cache) == {"cache.json", "images.npy"}


def test_data_prepare_command(corpus, tmp_path, capsys, unreadable):
    args = ["data", "prepare", str(corpus.root), "--out", str(tmp_path / "c"), "--size", "32"]
    code = main([*args, "--workers", "0", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    check_error_lines(corpus, captured.out + captured.err, prefix="skipped ")


def test_unreadable_for_real(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (2, 2)).save(path)
    path.chmod(0)
    if not IS_ROOT:
        with pytest.raises(ImageReadError, match="permission denied"):
            read_image(path)
        return
    # Root reads everything, unless it gives up the capabilities that bypass permissions.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: unreadability is emulated instead")
    code = "import sys; from pixcolor.imageio import read_image; read_image(sys.argv[1])"
    drop = "--bounding-set=-dac_override,-dac_read_search"
    done = subprocess.run(
        [setpriv, drop, "--", sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "permission denied" in done.stderr


# ---- bounded memory on a large photo ----------------------------------------------------------

PEAK_RSS_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from pixcolor.pipeline import load_model
    colorizer = load_model(sys.argv[2], device="cpu")
    kib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = kib()
    size = colorizer.colorize(sys.argv[1]).size
    print(json.dumps({"size": size, "before": before * 1024, "peak": kib() * 1024}))
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units differ outside Linux")
@pytest.mark.timeout(240)
def test_large_photo_colorized_in_bounded_memory(tiny_model, tmp_path):
    # 3000x1300 (3.9 MP, under the size that triggers torch.compile, to stay fast). Decoded RGB
    # is 11.7 MB; the pipeline should need a few copies of it plus fixed-size tiles, nowhere
    # near the ~90 bytes/pixel a whole-image float Lab round trip would take (350 MB).
    width, height = 3000, 1300
    Image.fromarray(gradient(width // 10, height // 10)).resize((width, height)).save(
        tmp_path / "big.jpg", quality=90
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_CHILD, str(tmp_path / "big.jpg"), str(tiny_model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=200,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert tuple(result["size"]) == (width, height)
    growth = result["peak"] - result["before"]
    assert growth < 40 * width * height + 100 * 2**20, f"{growth / 2**20:.0f} MiB for 3.9 MP"


def test_to_array_in_strips_equals_asarray(monkeypatch):
    monkeypatch.setattr(imageio, "_ARRAY_STRIP_PIXELS", 100)  # many strips, one partial
    rgb = Image.fromarray(gradient(37, 23))
    assert np.array_equal(imageio.to_array(rgb), np.asarray(rgb))
    gray = rgb.convert("L")
    assert np.array_equal(imageio.to_array(gray), np.asarray(gray.convert("RGB")))
    assert imageio.to_array(Image.new("RGB", (1, 1))).shape == (1, 1, 3)


def test_extreme_aspect_ratios_stay_small(tiny_model):
    model = load_model(tiny_model, device="cpu")
    for shape in [(1, 20_000), (20_000, 1), (3, 9_000)]:
        out = model.colorize(np.full((*shape, 3), 128, np.uint8), size=256)
        assert out.size == shape[::-1]


# ---- nothing lost: existing outputs, inputs, full disks, unwritable folders ---------------------


def _photo(path: Path, size: tuple[int, int] = (24, 16), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient(*size, seed=seed)).save(path)
    return path


@pytest.fixture(params=["colorize", "upscale"])
def command(request, tiny_model) -> list[str]:
    """The command-line head of each batch command (its inputs and -o come after)."""
    if request.param == "colorize":
        return ["colorize", "--model", str(tiny_model), "--device", "cpu"]
    return ["upscale", "--scale", "2", "--device", "cpu"]


def test_existing_output_kept_unless_overwrite(command, tmp_path, capsys):
    src = _photo(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"precious")
    assert main([*command, str(src), "-o", str(out)]) == 0
    assert "skipped 1" in capsys.readouterr().out
    assert (out / "a.png").read_bytes() == b"precious"
    assert main([*command, str(src), "-o", str(out), "--overwrite"]) == 0
    assert Image.open(out / "a.png").format == "PNG"
    assert everything_under(out) == {"a.png"}


def test_input_never_overwritten(command, tmp_path, capsys):
    src = _photo(tmp_path / "a.png")
    before = src.read_bytes()
    # The input folder as the output folder: refused as a whole, before any work.
    assert main([*command, str(tmp_path), "-o", str(tmp_path), "--overwrite"]) == 2
    assert "the output folder is the input folder" in capsys.readouterr().err
    # A file whose output would be itself: that file fails.
    assert main([*command, str(src), "-o", str(tmp_path), "--overwrite"]) == 1
    captured = capsys.readouterr()
    assert f"{src}: " in captured.err and "overwrite the input" in captured.err
    assert src.read_bytes() == before
    assert everything_under(tmp_path) == {"a.png"}


def test_two_inputs_one_output_first_one_kept(tiny_model, tmp_path, capsys):
    _photo(tmp_path / "in" / "a.jpg", seed=1)
    _photo(tmp_path / "in" / "a.png", seed=2)
    out = tmp_path / "out"
    args = ["colorize", str(tmp_path / "in"), "-o", str(out), "--model", str(tiny_model)]
    assert main([*args, "--overwrite"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{tmp_path / 'in' / 'a.png'}: same output")
    expected = np.asarray(load_model(tiny_model, device="cpu").colorize(tmp_path / "in" / "a.jpg"))
    assert np.array_equal(np.asarray(Image.open(out / "a.png")), expected)


def test_disk_full_leaves_no_partial_file(command, tmp_path, capsys, monkeypatch):
    for i in range(2):
        _photo(tmp_path / "in" / f"p{i}.png", seed=i)
    real_save = Image.Image.save

    def disk_full(self, fp, *args, **kwargs):
        if isinstance(fp, (str, Path)):  # only the output files, written through a handle
            return real_save(self, fp, *args, **kwargs)
        fp.write(b"half an image")
        raise OSError(errno.ENOSPC, "No space left on device")

    def png_disk_full(get_rows, shape, fp, **kwargs):  # pixcolor.png writes the 8-bit PNGs
        fp.write(b"half an image")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    monkeypatch.setattr("pixcolor.imagewrite.write_png_rows", png_disk_full)
    out = tmp_path / "out"
    assert main([*command, str(tmp_path / "in"), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2 and all("No space left on device" in line for line in lines)
    assert "Traceback" not in captured.err
    assert everything_under(out) == set()  # no half-written image, no temp file


def test_unwritable_output_folder_is_one_error(command, tmp_path, capsys, monkeypatch):
    for i in range(3):
        _photo(tmp_path / "in" / f"p{i}.png", seed=i)
    (tmp_path / "file").write_text("not a folder")
    assert main([*command, str(tmp_path / "in"), "-o", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write to the output folder" in err[0], err

    locked = tmp_path / "locked"
    locked.mkdir()
    if IS_ROOT:  # root writes anywhere: the kernel's answer for a read-only folder, emulated
        import tempfile

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(tempfile, "mkstemp", denied)
    locked.chmod(0o500)
    try:
        assert main([*command, str(tmp_path / "in"), "-o", str(locked)]) == 2
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Permission denied" in err[0] and str(locked) in err[0], err
    assert everything_under(locked) == set()


def test_checkpoint_write_on_full_disk_keeps_previous(tmp_path, monkeypatch):
    final = tmp_path / "checkpoints" / "last"
    ckpt.write_checkpoint_dir(final, {"state.bin": lambda p: p.write_bytes(b"good" * 100)})

    def disk_full(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CheckpointError, match="last: cannot write checkpoint: No space left"):
        ckpt.write_checkpoint_dir(
            final, {"model.bin": lambda p: p.write_bytes(b"m"), "x": disk_full}
        )
    ckpt.verify_checkpoint_dir(final)
    assert (final / "state.bin").read_bytes() == b"good" * 100
    assert everything_under(tmp_path / "checkpoints") == {
        "last",
        "last/state.bin",
        "last/manifest.json",
    }
    # Weights and small files: the same clear error, nothing half-written.
    monkeypatch.setattr("pixcolor.atomic.fsync_file", disk_full)  # the disk fills while saving
    with pytest.raises(PixcolorError, match="No space left on device"):
        save_model(create_generator("unet", **TINY), tmp_path / "export", "unet", TINY)
    assert everything_under(tmp_path / "export") == set()


# ---- nothing lost: SIGKILL in the middle of an epoch and of a checkpoint write ------------------

TRAIN_ARGS = [
    "train",
    "--preset", "seed",
    "--size", "32",
    "--generator", "unet",
    "--generator-kwargs", json.dumps(TINY),
    "--discriminator-kwargs", '{"base_channels": 8}',
    "--batch-size", "1",
    "--epochs", "3",
    "--num-workers", "0",
    "--precision", "fp32",
    "--keep-last", "2",
    "--log-every", "1",
]  # fmt: skip
STEPS_PER_EPOCH = 12

# ``pixcolor train`` with one thing changed, from the test side: writing state.pt (the 4th of
# a checkpoint's 5 files) then hangs, so the test can kill the process mid-write.
SLOW_CHECKPOINT_CHILD = textwrap.dedent(
    """
    import sys, time
    import pixcolor.checkpoint as ckpt
    from pixcolor.cli import main
    real = ckpt.save_torch_state
    def slow(state, path):
        real(state, path)
        time.sleep(600)
    ckpt.save_torch_state = slow
    sys.exit(main(sys.argv[1:]))
    """
)


def _rows(run: Path) -> list[dict]:
    """The complete rows of metrics.jsonl (a half-written last line is skipped)."""
    rows = []
    path = run / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def _epoch_of(folder: Path) -> int:
    ckpt.verify_checkpoint_dir(folder)
    return json.loads((folder / "config.json").read_text())["epoch"]


def _kill_when(cmd: list[str], ready, log: Path, timeout: float = 240) -> None:
    """Start ``cmd``, SIGKILL it as soon as ``ready()`` holds; fail if it ends first."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"exited {proc.returncode} early:\n{log.read_text()}"
            assert time.monotonic() < deadline, "timed out waiting to kill"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.timeout(600)
def test_sigkill_mid_epoch_and_mid_checkpoint_then_resume(tmp_path):
    data = tmp_path / "data"
    for i in range(STEPS_PER_EPOCH):
        _photo(data / f"{i:02d}.png", (32, 32), seed=i)
    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    args = [*TRAIN_ARGS, "--data", str(data), "--out", str(run)]
    module = [sys.executable, "-m", "pixcolor"]

    # 1. Killed in the middle of epoch 2: epoch 1's checkpoint is the last complete one.
    _kill_when(
        [*module, *args], lambda: any(r.get("epoch") == 2 for r in _rows(run)), tmp_path / "1.log"
    )
    assert _epoch_of(checkpoints / "last") == 1
    assert not (checkpoints / "epoch_0002").exists()
    assert max(r["step"] for r in _rows(run)) > STEPS_PER_EPOCH  # work after it was lost

    # 2. Resumed, then killed while writing epoch 2's checkpoint (state.pt written, no
    #    manifest yet): the half-written folder stays hidden, "last" is still epoch 1's.
    def writing() -> bool:
        return any((tmp / "state.pt").exists() for tmp in checkpoints.glob(".last.*.tmp"))

    _kill_when(
        [sys.executable, "-c", SLOW_CHECKPOINT_CHILD, *args, "--resume"],
        writing,
        tmp_path / "2.log",
    )
    assert "resumed from" in (tmp_path / "2.log").read_text()
    assert [p.name for p in checkpoints.glob(".last.*.tmp")]
    assert _epoch_of(checkpoints / "last") == 1

    # 3. Resumed again: loads the last complete checkpoint, tidies the leftovers, runs to the end.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*module, *args, "--resume"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert f"resumed from {checkpoints / 'last'}: epoch 2, step 0" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_0002", "epoch_0003", "last"]
    assert _epoch_of(checkpoints / "last") == 3
    steps = [r["step"] for r in _rows(run) if r["kind"] == "train"]
    assert steps == list(range(1, 3 * STEPS_PER_EPOCH + 1))  # each step logged once, in order


# ---- nothing lost: corrupt or truncated checkpoints ------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    """A tiny run of 2 epochs (checkpoints last, epoch_0001, epoch_0002), done once, in the
    layout of older versions, whose epoch checkpoints hold the full training state too."""
    from pixcolor.train import Trainer

    root = tmp_path_factory.mktemp("run")
    for i in range(4):
        _photo(root / "data" / f"{i}.png", (32, 32), seed=i)
    config = tiny_train_config(data=str(root / "data"), out=str(root / "run"), keep_last=2)
    trainer = Trainer(config)
    trainer.full_state_everywhere = True
    trainer.fit()
    return config


def _fresh_copy(config: TrainConfig, tmp_path: Path):
    """A Trainer on a private copy of ``finished_run``'s folder."""
    from pixcolor.train import Trainer

    shutil.copytree(config.out, tmp_path / "run")
    return Trainer(config.replace(out=str(tmp_path / "run")))


def test_truncated_or_corrupt_checkpoint_falls_back(finished_run, tmp_path, caplog):
    trainer = _fresh_copy(finished_run, tmp_path)
    checkpoints = trainer.out / "checkpoints"
    state = checkpoints / "last" / "state.pt"
    state.write_bytes(state.read_bytes()[:-100])  # truncated, manifest untouched
    flipped = checkpoints / "epoch_0002" / "discriminator.safetensors"
    data = bytearray(flipped.read_bytes())
    data[-1] ^= 0xFF
    flipped.write_bytes(bytes(data))  # same size, one bit-flipped byte
    with caplog.at_level(logging.WARNING):
        used = trainer.resume()
    assert used.name == "epoch_0001" and trainer.epoch == 1
    assert re.search(r"refusing checkpoint .*last: .*state\.pt: truncated", caplog.text)
    assert "epoch_0002/discriminator.safetensors: checksum mismatch" in caplog.text


def test_kill_between_the_two_renames_keeps_last(finished_run, tmp_path):
    # write_checkpoint_dir renames last -> .last.old, then the new folder -> last; a kill in
    # between leaves only .last.old (complete) and the finished temp folder.
    trainer = _fresh_copy(finished_run, tmp_path)
    checkpoints = trainer.out / "checkpoints"
    os.rename(checkpoints / "last", checkpoints / ".last.old")
    (checkpoints / ".last.x1y2z3.tmp").mkdir()
    (checkpoints / ".last.x1y2z3.tmp" / "model.safetensors").write_bytes(b"half")
    used = trainer.resume()
    assert used.name == ".last.old" and trainer.epoch == 2
    assert not (checkpoints / ".last.x1y2z3.tmp").exists()
    trainer.save_checkpoint("last")  # the next save puts everything back in order
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_0001", "epoch_0002", "last"]


# ---- run nobody's code: pickles with a payload ------------------------------------------------


class Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _evil_pickle(path: Path, marker: Path) -> Path:
    torch.save({"epoch": 1, "opt_g": Payload(marker)}, path)
    return path


def test_pickle_payload_in_training_state_never_runs(finished_run, tmp_path, caplog):
    marker = tmp_path / "pwned"
    trainer = _fresh_copy(finished_run, tmp_path)
    last = trainer.out / "checkpoints" / "last"
    _evil_pickle(last / "state.pt", marker)
    files = {p.name: (lambda dst, src=p: dst.write_bytes(src.read_bytes())) for p in last.iterdir()}
    files.pop("manifest.json")
    ckpt.write_checkpoint_dir(last, files)  # a valid manifest over the evil state.pt
    ckpt.verify_checkpoint_dir(last)
    with pytest.raises(CheckpointError, match="refused training state"):
        ckpt.load_torch_state(last / "state.pt")
    with caplog.at_level(logging.WARNING):
        assert trainer.resume().name == "epoch_0002"  # refused, fell back
    assert "state.pt: refused" in caplog.text
    assert not marker.exists()


@pytest.mark.parametrize(
    "name", ["model.pt", "model.pth", "pytorch_model.bin", "model.safetensors"]
)
def test_pickle_payload_as_weights_never_runs(tmp_path, capsys, name):
    marker = tmp_path / "pwned"
    folder = tmp_path / "download"
    folder.mkdir()
    weights = _evil_pickle(folder / name, marker)
    (folder / "config.json").write_text(json.dumps({"arch": "unet", "kwargs": TINY}))
    for source in (weights, folder):
        if source is folder and name != "model.safetensors":
            continue
        with pytest.raises(CheckpointError, match=r"safetensors|corrupt or unreadable"):
            load_model(source, device="cpu")
    from pixcolor.sr import load_upscaler

    with pytest.raises(PixcolorError):  # refused: unreadable weights, or not an upscaler
        load_upscaler(weights, device="cpu")
    _photo(tmp_path / "in.png")
    args = [
        "colorize",
        str(tmp_path / "in.png"),
        "-o",
        str(tmp_path / "out"),
        "--model",
        str(weights),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixcolor: error: ") and len(err.strip().splitlines()) == 1
    assert not marker.exists()


# ---- config values are validated ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochz = 3\n", r"unknown key\(s\) \['epochz'\]"),
        ("source = 'x'\n", r"unknown key\(s\) \['source'\]"),
        ('epochs = "3"\n', "epochs must be int, not str"),
        ("batch_size = 2.5\n", "batch_size must be int, not float"),
        ("channels_last = 1\n", "channels_last must be bool"),
        ("lr_g = 2.0\n", "learning rates must be in"),
        ("lr_d = nan\n", "learning rates must be in"),
        ("seed = -1\n", r"seed must be in \[0, 2\*\*32\)"),
        ("size = 100\n", "size must be a multiple of 16"),
        ('precision = "fp8"\n', "must be one of"),
        ("[generator_kwargs]\nwhen = 1979-05-27\n", "generator_kwargs must hold plain JSON"),
        ("epochs = \n", "cannot read config"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "cannot read config|unknown key"),
    ],
)
def test_toml_config_errors(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig.load(path)
    assert str(path) in str(info.value) or "invalid config" in str(info.value)
    assert main(["train", "--config", str(path), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixcolor: error: ") and "Traceback" not in err


def test_config_file_that_is_not_text_or_not_a_table(tmp_path):
    (tmp_path / "c.toml").write_bytes(b"\xff\xfe epochs = 3")
    with pytest.raises(ConfigError, match="cannot read config"):
        TrainConfig.load(tmp_path / "c.toml")
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="table of keys"):
        TrainConfig.load(tmp_path / "c.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="cannot read config"):
        TrainConfig.load(tmp_path / "deep.json")
    with pytest.raises(ConfigError, match="table of keys"):
        TrainConfig.from_dict([("epochs", 3)])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({3: "epochs"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--generator", "nosuch"], "unknown generator 'nosuch'"),
        (["--generator", "unet", "--generator-kwargs", '{"bogus": 1}'], "bogus"),
        (["--generator", "unet", "--generator-kwargs", '{"base_channels": -3}'], "negative"),
    ],
)
def test_bad_model_settings_are_one_line(tmp_path, capsys, flags, message):
    _photo(tmp_path / "data" / "a.png", (32, 32))
    args = ["train", "--preset", "seed", "--data", str(tmp_path / "data")]
    args += ["--out", str(tmp_path / "run"), *flags]
    assert main([*args, "--size", "32", "--num-workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixcolor: error: ") and message in err and "Traceback" not in err


def test_unwritable_training_log_is_one_line(tmp_path, capsys):
    _photo(tmp_path / "data" / "a.png", (32, 32))
    (tmp_path / "run" / "metrics.jsonl").mkdir(parents=True)  # appending to it fails
    args = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
    assert main([*TRAIN_ARGS, *args, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl: cannot write the training log" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["inf", "nan", "0"])
def test_dist_timeout_must_be_finite(tmp_path, capsys, value):
    _photo(tmp_path / "data" / "a.png", (32, 32))
    args = ["train", "--data", str(tmp_path / "data"), "--dist-timeout", value]
    assert main(args) == 2
    assert "dist_timeout must be positive and finite" in capsys.readouterr().err


# ---- fuzzing (bounded) -----------------------------------------------------------------------

FUZZ = settings(
    max_examples=100,
    deadline=2000,  # ms per example: a hang or a huge allocation fails loudly
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples every run: CI stays reproducible
)
SEEDS = {
    fmt: encoded(Image.fromarray(gradient(12, 9)), fmt)
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
}


def _read_or_refuse(data: bytes, max_pixels: int = 1_000_000) -> None:
    try:
        img = read_image(data, max_pixels=max_pixels)
    except ImageReadError as exc:
        assert exc.reason and "\n" not in exc.reason
    else:
        assert img.mode == "RGB" and img.width * img.height <= max_pixels


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's complaints about odd metadata
@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_read_image_random_bytes(data):
    _read_or_refuse(data)


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::UserWarning")
@FUZZ
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
    st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_fuzz_read_image_mutated_images(fmt, edits, cut):
    data = bytearray(SEEDS[fmt])
    for position, value in edits:
        data[position % len(data)] = value
    _read_or_refuse(bytes(data if cut is None else data[: cut % (len(data) + 1)]))


@pytest.mark.timeout(120)
@FUZZ
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.sampled_from([0, 2, 3, 4, 6]))
def test_fuzz_png_header_sizes(width, height, colour_type):
    _read_or_refuse(png_bytes(width, height, colour_type))


_FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.mark.timeout(120)
@FUZZ
@given(st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=10), _json, max_size=6))
def test_fuzz_config_from_dict(values):
    try:
        config = TrainConfig.from_dict(values)
    except ConfigError:
        return
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


_toml_line = st.one_of(
    st.builds(
        "{} = {}".format,
        st.sampled_from(_FIELDS),
        st.sampled_from(
            [
                "1",
                "0",
                "-5",
                "3.5",
                "nan",
                "inf",
                '"x"',
                "true",
                "[1, 2]",
                "{a = 1}",
                "1979-05-27",
                "'fp16'",
            ]
        ),
    ),
    st.text(max_size=30),
)


@pytest.mark.timeout(120)
@FUZZ
@given(st.lists(_toml_line, max_size=6))
def test_fuzz_config_toml_text(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("toml", numbered=True) / "c.toml"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    with contextlib.suppress(ConfigError):
        TrainConfig.load(path)


def test_largest_seed_trains(tmp_path):
    from pixcolor.augment import batch_generator
    from pixcolor.train_setup import EpochSampler

    config = TrainConfig.from_dict({"seed": 2**32 - 1})
    batch_generator(config.seed, epoch=999, step=10**6)  # no overflow of torch's seed range
    list(EpochSampler(10, config.seed, 999, 2))
    with pytest.raises(ConfigError, match="seed"):
        TrainConfig.from_dict({"seed": 2**32})


def test_curves_survive_a_half_written_log_line(tmp_path):
    from pixcolor.visualize import plot_curves

    log = tmp_path / "metrics.jsonl"
    rows = [{"kind": "train", "step": i, "epoch": 1, "loss_l1": 1 / i} for i in range(1, 4)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '3\n{"kind": "tra')
    assert plot_curves(log, tmp_path / "curves.png").stat().st_size > 0


# ---- the COCO extraction refuses what would escape its root ------------------------------------


def _tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))  # type: ignore[arg-type]
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = str(payload)
                tar.addfile(info)
    return path


@pytest.mark.parametrize(
    "members",
    [
        # Each link looks inside on its own; together "t" is the root's parent.
        [("s", "symlink", "."), ("t", "symlink", "s/.."), ("t/evil.txt", "file", b"evil")],
        [("d", "symlink", "sub/../.."), ("d/evil.txt", "file", b"evil")],
        [("h", "hardlink", "a/../../outside/target.txt")],
    ],
)
def test_archive_link_chains_are_refused_before_writing(tmp_path, members):
    from pixcolor.datasets.download import safe_extract
    from pixcolor.errors import DownloadError

    archive = _tar(tmp_path / "evil.tar", [("good.txt", "file", b"good"), *members])
    with pytest.raises(DownloadError, match="unsafe archive member"):
        safe_extract(archive, tmp_path / "root")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "root").exists() or everything_under(tmp_path / "root") == set()


@pytest.mark.parametrize(
    "name, why",
    [
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path|drive"),
        ("..\\evil.txt", "traversal"),
    ],
)
def test_zip_absolute_and_windows_paths_are_refused(tmp_path, name, why):
    import zipfile

    from pixcolor.datasets.download import safe_extract
    from pixcolor.errors import DownloadError

    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("fine.txt", b"ok")
        zf.writestr(name, b"evil")
    with pytest.raises(DownloadError, match=why):
        safe_extract(tmp_path / "evil.zip", tmp_path / "root")
    assert not (tmp_path / "root").exists() or everything_under(tmp_path / "root") == set()


def test_zip_symlinks_are_refused(tmp_path):
    import stat
    import zipfile

    from pixcolor.datasets.download import safe_extract
    from pixcolor.errors import DownloadError

    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../outside")
    with pytest.raises(DownloadError, match="symlinks"):
        safe_extract(tmp_path / "evil.zip", tmp_path / "root")
