"""Tests for pixcolor.imageio: every input kind, every refusal, the tensor glue, atomic saves."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from pixcolor import imageio
from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.imageio import DEFAULT_MAX_PIXELS, read_image, to_pil, to_tensor
from pixcolor.imagewrite import save_image_atomic

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def png_bytes(
    width: int, height: int, bit_depth: int = 8, colour_type: int = 2, raw: bytes = b"\0"
) -> bytes:
    """A PNG written by hand: signature, IHDR (any size it claims), one IDAT of ``raw``, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def noise(rng: np.random.Generator, size: tuple[int, int] = (24, 32)) -> Image.Image:
    """A random RGB image, ``size`` = (height, width)."""
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(int)


@pytest.fixture
def decode_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel data is decoded."""

    def forbidden(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)


# ---- formats that must load ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("PNG", ".png"), ("WEBP", ".webp"), ("TIFF", ".tif"), ("BMP", ".bmp")]
)
def test_lossless_formats_exact(
    tmp_path: Path, rng: np.random.Generator, fmt: str, suffix: str
) -> None:
    img = noise(rng)
    path = tmp_path / f"image{suffix}"
    img.save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    out = read_image(path)
    assert out.mode == "RGB" and out.size == (32, 24)
    np.testing.assert_array_equal(pixels(out), pixels(img))


def test_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "flat.jpg"
    Image.new("RGB", (16, 8), (200, 100, 50)).save(path, quality=95)
    out = read_image(str(path))
    assert out.mode == "RGB" and out.size == (16, 8)
    assert np.abs(pixels(out) - (200, 100, 50)).max() <= 3


def test_png_16bit_gray_is_rescaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 128, 257, 1000, 32896, 65535]], dtype=np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    out = pixels(read_image(path))
    assert out[..., 0].tolist() == [[0, 0, 1, 4, 128, 255]]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize("dtype", [">u2", "<u2", "int32"])
def test_wide_gray_modes_in_memory(dtype: str) -> None:
    img = Image.fromarray(np.array([[0, 1000, 65535]], dtype=dtype))
    assert pixels(read_image(img))[0, :, 0].tolist() == [0, 4, 255]


def test_png_16bit_rgb(tmp_path: Path) -> None:
    values = [(65535, 32768, 257), (1000, 128, 65280)]
    raw = b"\0" + b"".join(struct.pack(">HHH", *v) for v in values)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(2, 1, bit_depth=16, colour_type=2, raw=raw))
    out = pixels(read_image(path))
    np.testing.assert_allclose(out[0], np.array(values) / 257, atol=1)


def test_palette_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (4, 2), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (2, 0, 4, 2))
    path = tmp_path / "palette.png"
    img.save(path, transparency=1)
    out = pixels(read_image(path))
    assert out[0, 0].tolist() == list(RED) and out[0, 3].tolist() == list(WHITE)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composited_on_white(tmp_path: Path, mode: str) -> None:
    img = Image.new("RGBA", (3, 1))
    img.putpixel((0, 0), (255, 0, 0, 255))
    img.putpixel((1, 0), (255, 0, 0, 0))
    img.putpixel((2, 0), (0, 0, 0, 128))
    path = tmp_path / f"{mode}.png"
    img.convert(mode).save(path)
    out = pixels(read_image(path))[0]
    assert out[1].tolist() == list(WHITE)
    assert np.abs(out[2] - 127).max() <= 1  # black at half alpha over white
    assert out[0].tolist() == (list(RED) if mode == "RGBA" else [76] * 3)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_gray_and_bilevel(tmp_path: Path, mode: str) -> None:
    img = Image.new("L", (4, 4), 255).convert(mode)
    path = tmp_path / f"{mode}.png"
    img.save(path)
    out = read_image(path)
    assert out.mode == "RGB" and pixels(out).min() == 255


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 2
    assert pixels(read_image(path))[0, 0].tolist() == list(RED)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path)
    assert Image.open(path).mode == "CMYK"
    out = read_image(path)
    assert out.mode == "RGB"
    assert np.abs(pixels(out)[0, 0] - RED).max() <= 8


def test_exif_orientation_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), RED)
    img.paste(BLUE, (0, 0, 10, 20))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    out = read_image(path)
    assert out.size == (20, 40)
    assert np.abs(pixels(out)[2, 10] - BLUE).max() <= 40  # the left edge is now the top


def test_in_memory_sources(tmp_path: Path, rng: np.random.Generator) -> None:
    img = noise(rng)
    data = encoded(img, "PNG")
    expected = pixels(img)
    path = tmp_path / "x.png"
    path.write_bytes(data)

    class Stream(io.RawIOBase):  # a pipe-like stream: readable, not seekable
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk = self.inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    with open(path, "rb") as fp:
        from_file = read_image(fp)
    for out in (read_image(data), read_image(io.BytesIO(data)), read_image(Stream()), from_file):
        np.testing.assert_array_equal(pixels(out), expected)


def test_pil_input_returns_new_image() -> None:
    img = Image.new("RGB", (4, 4), RED)
    out = read_image(img)
    assert out is not img and out.mode == "RGB"
    out.putpixel((0, 0), BLUE)
    assert img.getpixel((0, 0)) == RED


# ---- refusals -----------------------------------------------------------------------------


def refused(source, **kwargs) -> ImageReadError:
    with pytest.raises(ImageReadError) as info:
        read_image(source, **kwargs)
    return info.value


def test_missing_directory_and_empty(tmp_path: Path) -> None:
    missing = refused(tmp_path / "nope.jpg")
    assert missing.reason == "no such file" and missing.path == tmp_path / "nope.jpg"
    assert "directory" in refused(tmp_path).reason
    os.mkfifo(tmp_path / "pipe.png")  # must not block waiting for a writer
    assert refused(tmp_path / "pipe.png").reason == "not a regular file"
    (tmp_path / "empty.jpg").touch()
    assert refused(tmp_path / "empty.jpg").reason == "empty file"
    assert refused(b"").reason == "empty file"
    assert refused(io.BytesIO()).reason == "empty file"
    assert refused(b"").path is None


def test_not_images(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("just some text\n" * 20)
    (tmp_path / "page.png").write_text("<!DOCTYPE html><html><body>404</body></html>")
    for name in ("notes.jpg", "page.png"):
        assert refused(tmp_path / name).reason == "not an image file"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(tmp_path: Path, rng: np.random.Generator, fmt: str) -> None:
    data = encoded(noise(rng, (64, 64)), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    assert refused(path).reason == "truncated image data"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def deny(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    path = tmp_path / "x.png"
    Image.new("RGB", (2, 2)).save(path)
    monkeypatch.setattr(imageio, "open", deny, raising=False)
    assert refused(path).reason == "permission denied"


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_permission_denied_for_real(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    Image.new("RGB", (2, 2)).save(path)
    path.chmod(0)
    assert refused(path).reason == "permission denied"


def test_header_bomb_refused_before_decoding(decode_forbidden: None) -> None:
    start = time.perf_counter()
    error = refused(png_bytes(100_000, 100_000))
    assert time.perf_counter() - start < 2
    assert error.reason.startswith("image too large")
    assert "10000000000 pixels > limit 178956970" in error.reason


def test_caller_max_pixels(
    tmp_path: Path, rng: np.random.Generator, decode_forbidden: None
) -> None:
    path = tmp_path / "small.png"
    noise(rng, (64, 64)).save(path)
    error = refused(path, max_pixels=1000)
    assert error.reason == "image too large: 64x64 = 4096 pixels > limit 1000"


def test_between_pillow_limits_no_warning_leaks(decode_forbidden: None) -> None:
    # 12000x9000 = 108 MP: over Pillow's warning threshold, under its hard limit.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        error = refused(png_bytes(12_000, 9_000, colour_type=0), max_pixels=100_000_000)
    assert error.reason == "image too large: 12000x9000 = 108000000 pixels > limit 100000000"
    assert DEFAULT_MAX_PIXELS > 12_000 * 9_000


def test_zero_size() -> None:
    assert "zero-size" in refused(Image.new("RGB", (0, 0))).reason
    refused(png_bytes(0, 0, raw=b""))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(b"x", max_pixels=0)
    with pytest.raises(TypeError, match="source"):
        read_image(12345)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's TIFF metadata complaints
def test_corrupted_bytes_never_escape(rng: np.random.Generator) -> None:
    originals = [
        encoded(noise(rng, (16, 16)), fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF")
    ]
    for data in originals:
        for _ in range(30):
            damaged = bytearray(data)
            for position in rng.integers(0, len(damaged), 4):
                damaged[position] = int(rng.integers(0, 256))
            with contextlib.suppress(ImageReadError):
                assert read_image(bytes(damaged)).mode == "RGB"


def test_global_pillow_state_untouched(tmp_path: Path) -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    refused(png_bytes(100_000, 100_000))
    read_image(Image.new("RGB", (2, 2)))
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)


# ---- tensors ------------------------------------------------------------------------------


def test_to_tensor_and_back(rng: np.random.Generator) -> None:
    img = noise(rng)
    t = to_tensor(img)
    assert t.shape == (3, 24, 32) and t.dtype == torch.float32
    assert t.min() >= 0 and t.max() <= 1
    np.testing.assert_array_equal(pixels(to_pil(t)), pixels(img))
    assert to_pil(t).mode == "RGB"


def test_to_tensor_converts_other_modes() -> None:
    assert to_tensor(Image.new("L", (5, 4), 128)).shape == (3, 4, 5)
    transparent = to_tensor(Image.new("RGBA", (2, 2), (0, 0, 0, 0)))
    assert torch.equal(transparent, torch.ones(3, 2, 2))


def test_to_pil_variants() -> None:
    gray = to_pil(torch.full((1, 2, 3), 0.5))
    assert gray.mode == "L" and gray.size == (3, 2) and gray.getpixel((0, 0)) == 128
    clamped = to_pil(torch.tensor([-1.0, 0.0, 2.0]).view(3, 1, 1))
    assert clamped.getpixel((0, 0)) == (0, 0, 255)
    as_uint8 = to_pil(torch.full((3, 1, 1), 7, dtype=torch.uint8))
    assert as_uint8.getpixel((0, 0)) == (7, 7, 7)
    assert to_pil(torch.zeros(3, 2, 2, requires_grad=True)).size == (2, 2)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_pil(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_pil(torch.zeros(1, 3, 4, 4))
    with pytest.raises(TypeError):
        to_pil(torch.zeros(3, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError):
        to_tensor(np.zeros((4, 4, 3)))


# ---- atomic save --------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*.tmp")]


def test_save_png_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    img = noise(rng)
    target = tmp_path / "deep" / "er" / "out.png"
    assert save_image_atomic(img, str(target)) == target
    with Image.open(target) as saved:
        assert saved.format == "PNG"
        np.testing.assert_array_equal(pixels(saved), pixels(img))
    assert leftovers(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 & ~umask


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [("a.jpg", None, "JPEG"), ("b.JPEG", None, "JPEG"), ("c.img", "png", "PNG")],
)
def test_save_format(tmp_path: Path, name: str, fmt: str | None, expected: str) -> None:
    target = save_image_atomic(Image.new("RGB", (8, 8), RED), tmp_path / name, format=fmt)
    with Image.open(target) as saved:
        assert saved.format == expected


def test_save_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(PixcolorError, match="suffix"):
        save_image_atomic(Image.new("RGB", (2, 2)), tmp_path / "out.xyz")


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(PixcolorError, match="already exists"):
        save_image_atomic(Image.new("RGB", (2, 2)), target)
    assert target.read_bytes() == b"precious"
    save_image_atomic(Image.new("RGB", (2, 2)), target, overwrite=True)
    assert Image.open(target).size == (2, 2)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["out.png", "out.jpg"])  # pixcolor.png, then Pillow
def test_save_failure_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name) -> None:
    def disk_full(*args, **kwargs):
        fp = next(a for a in args if hasattr(a, "write"))
        fp.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    monkeypatch.setattr("pixcolor.imagewrite.write_png_rows", disk_full)
    with pytest.raises(PixcolorError, match="No space left") as info:
        save_image_atomic(Image.new("RGB", (2, 2)), tmp_path / name)
    assert name in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_save_unwritable_mode_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(PixcolorError, match="RGBA"):
        save_image_atomic(Image.new("RGBA", (2, 2)), tmp_path / "out.jpg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_save_unwritable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PixcolorError, match=r"out\.png"):
            save_image_atomic(Image.new("RGB", (2, 2)), folder / "out.png")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)
