"""ColorizationDataset (folder, list, cache), the uint8 cache, the loader, and the preview."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixcolor.data import (
    CACHE_IMAGES,
    CACHE_META,
    ColorizationDataset,
    UnreadableImageWarning,
    default_num_workers,
    make_loader,
    prepare_cache,
)
from pixcolor.errors import PixcolorError

SIZE = 32  # small squares keep the suite fast


def _photo(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """A photo-like RGB image: smooth colour gradients plus sensor-like noise."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    base = np.stack([0.5 + 0.4 * np.sin(3 * x + 2 * y + p) for p in phase], axis=-1)
    noisy = base + rng.normal(0, 0.04, size=base.shape)
    return Image.fromarray((noisy.clip(0, 1) * 255).astype(np.uint8))


@pytest.fixture
def photos(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Six small photos (4 JPEG, 2 PNG, two in a subfolder) in ``tmp_path/photos``."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    shapes = [(40, 56), (48, 48), (36, 60), (64, 44), (50, 50), (45, 70)]
    for i, (h, w) in enumerate(shapes):
        folder = root / "sub" if i >= 4 else root
        suffix = ".png" if i % 3 == 1 else ".jpg"
        _photo(rng, h, w).save(folder / f"img{i}{suffix}", quality=92)
    (root / "notes.txt").write_text("not an image")
    return root


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".jpg", ".png"))


def test_lab_items_shapes_dtypes_ranges(photos: Path) -> None:
    ds = ColorizationDataset(photos, split="val", size=SIZE)
    assert len(ds) == 6 and ds.paths == _files(photos)
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"L", "ab"}
        assert item["L"].shape == (1, SIZE, SIZE) and item["L"].dtype == torch.float32
        assert item["ab"].shape == (2, SIZE, SIZE) and item["ab"].dtype == torch.float32
        assert item["L"].min() >= -1 and item["L"].max() <= 1
        assert item["ab"].abs().max() <= 1.0
        assert item["ab"].abs().max() > 0.05  # the photos are coloured


def test_rgb_items(photos: Path) -> None:
    item = ColorizationDataset(photos, split="val", size=SIZE, output="rgb")[2]
    assert set(item) == {"rgb"}
    assert item["rgb"].shape == (3, SIZE, SIZE) and item["rgb"].dtype == torch.uint8


def test_val_is_deterministic(photos: Path) -> None:
    a = ColorizationDataset(photos, split="val", size=SIZE)
    b = ColorizationDataset(photos, split="val", size=SIZE)
    for i in range(len(a)):
        first, again, other = a[i], a[i], b[i]
        assert torch.equal(first["L"], again["L"]) and torch.equal(first["ab"], again["ab"])
        assert torch.equal(first["L"], other["L"]) and torch.equal(first["ab"], other["ab"])


def test_train_flips_reproducibly(photos: Path) -> None:
    val = ColorizationDataset(photos, split="val", size=SIZE, output="rgb")
    seen = []
    for _ in range(2):
        train = ColorizationDataset(photos, split="train", size=SIZE, output="rgb", seed=3)
        flips = []
        for _epoch in range(3):
            for i in range(len(train)):
                got, plain = train[i]["rgb"], val[i]["rgb"]
                assert torch.equal(got, plain) or torch.equal(got, plain.flip(-1))
                flips.append(not torch.equal(got, plain))
        seen.append(flips)
    assert seen[0] == seen[1]  # same seed, same flips
    assert any(seen[0]) and not all(seen[0])


@pytest.mark.parametrize("kwargs", [{"split": "test"}, {"output": "hsv"}, {"size": 0}])
def test_bad_arguments(photos: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        ColorizationDataset(photos, **kwargs)


def test_corrupt_file_is_skipped_with_one_warning(photos: Path) -> None:
    (photos / "img0b.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a JPEG")
    ds = ColorizationDataset(photos, split="val", size=SIZE, output="rgb")
    bad = [p.name for p in ds.paths].index("img0b.jpg")
    with pytest.warns(UnreadableImageWarning, match="img0b.jpg"):
        item = ds[bad]
    assert torch.equal(item["rgb"], ds[bad + 1]["rgb"])  # the next image stands in
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[bad]  # warned once only


def test_all_corrupt_raises(tmp_path: Path) -> None:
    for i in range(2):
        (tmp_path / f"bad{i}.png").write_bytes(b"junk")
    ds = ColorizationDataset(tmp_path, split="val", size=SIZE)
    with pytest.warns(UnreadableImageWarning), pytest.raises(PixcolorError, match="none of the 2"):
        ds[0]


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(PixcolorError, match="no such file"):
        ColorizationDataset(tmp_path / "nope")
    with pytest.raises(PixcolorError, match="no image"):
        ColorizationDataset(tmp_path)


def test_list_file_sequence_limit_and_indices(photos: Path, tmp_path: Path) -> None:
    files = _files(photos)
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text(f"# two photos\n../photos/{files[3].name}\n\n{files[1]}\n")
    by_list = ColorizationDataset(listing, split="val", size=SIZE, output="rgb")
    assert by_list.paths == [photos / files[3].name, files[1]]
    folder = ColorizationDataset(photos, split="val", size=SIZE, output="rgb")
    assert torch.equal(by_list[0]["rgb"], folder[3]["rgb"])
    by_seq = ColorizationDataset([str(f) for f in files[::-1]], split="val", size=SIZE)
    assert by_seq.paths == files[::-1]  # a sequence keeps its order
    assert ColorizationDataset(photos, size=SIZE, limit=3).paths == files[:3]
    shard = ColorizationDataset(photos, size=SIZE, limit=5, indices=range(1, 5, 2))
    assert shard.paths == [files[1], files[3]]


def test_cache_matches_folder_exactly(photos: Path, tmp_path: Path) -> None:
    cache = prepare_cache(photos, tmp_path / "cache", SIZE, num_workers=2, progress=False)
    meta = json.loads((cache / CACHE_META).read_text())
    assert meta["count"] == 6 and meta["size"] == SIZE and meta["skipped"] == []
    assert np.load(cache / CACHE_IMAGES, mmap_mode="r").dtype == np.uint8
    cached = ColorizationDataset(cache, split="val", size=SIZE)
    folder = ColorizationDataset(photos, split="val", size=SIZE)
    assert cached.paths == folder.paths
    for i in range(len(folder)):
        assert torch.equal(cached[i]["L"], folder[i]["L"])
        assert torch.equal(cached[i]["ab"], folder[i]["ab"])
    assert len(pickle.dumps(cached)) < 20_000  # workers get the path, not the memory map
    shard = ColorizationDataset(cache, split="val", size=SIZE, output="rgb", indices=[4, 5])
    assert torch.equal(
        shard[1]["rgb"], ColorizationDataset(photos, "val", SIZE, output="rgb")[5]["rgb"]
    )
    with pytest.raises(ValueError, match="holds 32px"):
        ColorizationDataset(cache, size=64)


def test_cache_is_idempotent_and_skips_bad_files(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    prepare_cache(photos, out, SIZE, num_workers=0, progress=False)
    stamp = (out / CACHE_IMAGES).stat().st_mtime_ns
    prepare_cache(photos, out, SIZE, num_workers=0, progress=False)
    assert (out / CACHE_IMAGES).stat().st_mtime_ns == stamp  # same inputs: nothing redone
    (photos / "zz_bad.jpg").write_bytes(b"broken")
    with pytest.warns(UnreadableImageWarning, match="zz_bad.jpg"):
        prepare_cache(photos, out, SIZE, num_workers=0, progress=False)
    meta = json.loads((out / CACHE_META).read_text())
    assert meta["count"] == 6 and [s["path"] for s in meta["skipped"]] == [
        str(photos / "zz_bad.jpg")
    ]
    assert len(ColorizationDataset(out, size=SIZE)) == 6
    assert sorted(p.name for p in out.iterdir()) == [CACHE_META, CACHE_IMAGES]


def test_make_loader_batches_in_a_seeded_order(photos: Path) -> None:
    ds = ColorizationDataset(photos, split="val", size=SIZE)
    assert default_num_workers(len(ds), 4) == 0  # tiny set: no worker processes
    batches = list(make_loader(ds, 4, shuffle=True, seed=7))
    assert [b["L"].shape for b in batches] == [(4, 1, SIZE, SIZE), (2, 1, SIZE, SIZE)]
    assert batches[0]["ab"].shape == (4, 2, SIZE, SIZE)
    again = list(make_loader(ds, 4, shuffle=True, seed=7))
    assert all(torch.equal(a["ab"], b["ab"]) for a, b in zip(batches, again, strict=True))
    loader = make_loader(ds, 4, shuffle=False, seed=0, drop_last=True)
    assert len(loader) == 1 and not loader.pin_memory


def test_make_loader_workers_reproducible_flips(photos: Path) -> None:
    ds = ColorizationDataset(photos, split="train", size=SIZE, output="rgb")
    runs = []
    for _ in range(2):
        loader = make_loader(ds, 3, shuffle=True, seed=5, num_workers=2)
        runs.append(torch.cat([b["rgb"] for b in loader]))
    assert runs[0].shape == (6, 3, SIZE, SIZE) and torch.equal(runs[0], runs[1])


def test_preview_grid(photos: Path, tmp_path: Path) -> None:
    from pixcolor.datasets.preview import preview_grid

    out = preview_grid(photos, tmp_path / "grid.png", n=4, size=24)
    grid = Image.open(out)
    assert grid.mode == "RGB" and grid.width == 48 and grid.height >= 4 * 24
    cache = prepare_cache(photos, tmp_path / "cache", SIZE, num_workers=0, progress=False)
    assert Image.open(preview_grid(cache, tmp_path / "grid.png", n=2, size=24)).width == 48


def test_cli_prepare_and_preview(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixcolor.cli import main

    cache, grid = tmp_path / "cache", tmp_path / "grid.png"
    assert (
        main(["data", "prepare", str(photos), "--out", str(cache), "--size", "32", "--no-progress"])
        == 0
    )
    assert main(["data", "preview", str(cache), "-o", str(grid), "--n", "3", "--size", "24"]) == 0
    out = capsys.readouterr().out
    assert "6 images, 32px" in out and str(grid) in out
    assert Image.open(grid).width == 48
    assert main(["data"]) == 2  # no action: help
