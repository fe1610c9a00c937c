"""``pixcolor demo``: colorize real sample photos that scikit-image ships, with the default model.

Colour samples are turned to grayscale first (their own L channel), so the side-by-side image
shows input | pixcolor | original. Writes into ``--out`` (default ``demo_out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pixcolor.errors import PixcolorError

# scikit-image's bundled photos (skimage.data): name -> loader attribute.
SAMPLES = ("camera", "astronaut", "coffee", "chelsea", "rocket")
THUMB_HEIGHT = 256


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="colorize scikit-image's sample photos with the default model")
    p.add_argument("-o", "--out", type=Path, default=Path("demo_out"), help="output folder")
    p.add_argument("--model", default=None, help="model name or path (default: shipped)")
    p.add_argument("--device", default=None, help="cpu / cuda / mps (default: best)")
    p.set_defaults(func=run)


def load_samples() -> dict[str, np.ndarray]:
    """Return the sample photos as ``(H, W, 3)`` uint8 RGB (the gray ``camera`` repeated)."""
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - scikit-image is a dependency
        raise PixcolorError(f"the demo needs scikit-image ({exc})") from None
    out = {}
    for name in SAMPLES:
        img = np.asarray(getattr(data, name)())
        out[name] = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
    return out


def _row(images: list[np.ndarray], labels: list[str]) -> Image.Image:
    thumbs = []
    for img in images:
        h, w = img.shape[:2]
        thumbs.append(Image.fromarray(img).resize((round(w * THUMB_HEIGHT / h), THUMB_HEIGHT)))
    row = Image.new("RGB", (sum(t.width for t in thumbs), THUMB_HEIGHT + 18), "white")
    x = 0
    draw = ImageDraw.Draw(row)
    for thumb, label in zip(thumbs, labels, strict=True):
        row.paste(thumb, (x, 18))
        draw.text((x + 4, 3), label, fill="black")
        x += thumb.width
    return row


def run(args: argparse.Namespace) -> int:
    """Colorize the samples and write outputs plus ``side_by_side.png``."""
    from pixcolor.color import gray_uint8
    from pixcolor.imagewrite import save_image_atomic
    from pixcolor.pipeline import load_model

    model = load_model(args.model, device=args.device)
    rows = []
    for name, rgb in load_samples().items():
        gray = gray_uint8(rgb)
        is_colour = not np.array_equal(rgb, gray) and rgb.std(axis=2).mean() > 1.0
        out = np.asarray(model.colorize(gray))
        save_image_atomic(Image.fromarray(gray), args.out / f"{name}_input.png", overwrite=True)
        save_image_atomic(Image.fromarray(out), args.out / f"{name}_pixcolor.png", overwrite=True)
        images, labels = [gray, out], ["input", "pixcolor"]
        if is_colour:
            images.append(rgb)
            labels.append("original")
        rows.append(_row(images, labels))
        print(f"colorized {name} ({rgb.shape[1]}x{rgb.shape[0]})")
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    path = save_image_atomic(sheet, args.out / "side_by_side.png", overwrite=True)
    print(f"outputs in {args.out.resolve()}/ ; side-by-side: {path.resolve()}")
    return 0
