"""The training data path: ColorizationDataset (folder, list, cache), the uint8 cache, the
training loader, the batched augmentation, and the preview."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixcolor.color import rgb_to_lab_normalized
from pixcolor.config import TrainConfig
from pixcolor.data import (
    CACHE_IMAGES,
    CACHE_META,
    ColorizationDataset,
    UnreadableImageWarning,
    default_num_workers,
    prepare_cache,
)
from pixcolor.distributed import DistContext
from pixcolor.errors import PixcolorError
from pixcolor.train_setup import EpochSampler, make_train_loader, prepare_batch

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


def test_items_are_the_bicubic_resized_photos(photos: Path) -> None:
    ds = ColorizationDataset(photos, size=SIZE)
    assert len(ds) == 6 and ds.paths == _files(photos)
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"rgb"}
        assert item["rgb"].shape == (3, SIZE, SIZE) and item["rgb"].dtype == torch.uint8
        with Image.open(ds.paths[i]) as img:
            ref = np.asarray(img.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC))
        np.testing.assert_array_equal(item["rgb"].permute(1, 2, 0).numpy(), ref)
        assert torch.equal(ds[i]["rgb"], item["rgb"])  # read again: the same


def test_bad_arguments(photos: Path) -> None:
    with pytest.raises(ValueError, match="size must be positive"):
        ColorizationDataset(photos, size=0)


def test_corrupt_file_is_skipped_with_one_warning(photos: Path) -> None:
    (photos / "img0b.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a JPEG")
    ds = ColorizationDataset(photos, size=SIZE)
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
    ds = ColorizationDataset(tmp_path, size=SIZE)
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
    by_list = ColorizationDataset(listing, size=SIZE)
    assert by_list.paths == [photos / files[3].name, files[1]]
    folder = ColorizationDataset(photos, size=SIZE)
    assert torch.equal(by_list[0]["rgb"], folder[3]["rgb"])
    by_seq = ColorizationDataset([str(f) for f in files[::-1]], size=SIZE)
    assert by_seq.paths == files[::-1]  # a sequence keeps its order
    assert ColorizationDataset(photos, size=SIZE, limit=3).paths == files[:3]
    shard = ColorizationDataset(photos, size=SIZE, limit=5, indices=range(1, 5, 2))
    assert shard.paths == [files[1], files[3]]


def test_cache_matches_folder_exactly(photos: Path, tmp_path: Path) -> None:
    cache = prepare_cache(photos, tmp_path / "cache", SIZE, num_workers=2, progress=False)
    meta = json.loads((cache / CACHE_META).read_text())
    assert meta["count"] == 6 and meta["size"] == SIZE and meta["skipped"] == []
    assert np.load(cache / CACHE_IMAGES, mmap_mode="r").dtype == np.uint8
    cached = ColorizationDataset(cache, size=SIZE)
    folder = ColorizationDataset(photos, size=SIZE)
    assert cached.paths == folder.paths and cached.is_cached and not folder.is_cached
    for i in range(len(folder)):
        assert torch.equal(cached[i]["rgb"], folder[i]["rgb"])
    assert len(pickle.dumps(cached)) < 20_000  # workers get the path, not the memory map
    shard = ColorizationDataset(cache, size=SIZE, indices=[4, 5])
    assert torch.equal(shard[1]["rgb"], folder[5]["rgb"])
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


def test_training_loader_follows_the_sampler_with_or_without_workers(photos: Path) -> None:
    """The loader training uses: batches in the EpochSampler's order, the same bytes whether
    worker processes decode them or not."""
    ds = ColorizationDataset(photos, size=SIZE)
    sampler = EpochSampler(len(ds), seed=7, epoch=1, batch_size=4)
    assert sampler.num_batches == 1  # 6 images: one full batch, the rest dropped
    runs = []
    for workers in (0, 2):
        config = TrainConfig(data=str(photos), num_workers=workers)
        loader = make_train_loader(ds, sampler, config, torch.device("cpu"))
        runs.append(torch.cat([b["rgb"] for b in loader]))
    expected = torch.stack([ds[i]["rgb"] for i in sampler.batches[0]])
    assert torch.equal(runs[0], expected) and torch.equal(runs[1], expected)
    assert default_num_workers(len(ds), 4) == 0  # a tiny set decodes in the main process


def test_prepare_batch_flips_on_the_device_reproducibly(photos: Path) -> None:
    ds = ColorizationDataset(photos, size=SIZE)
    rgb = torch.stack([ds[i]["rgb"] for i in range(6)])
    config = TrainConfig(data=str(photos), size=SIZE, augment="flip", channels_last=False)
    single = DistContext.single()
    L, ab = prepare_batch(rgb, config, torch.device("cpu"), single, epoch=0, step=0)
    again = prepare_batch(rgb, config, torch.device("cpu"), single, epoch=0, step=0)
    assert L.shape == (6, 1, SIZE, SIZE) and ab.shape == (6, 2, SIZE, SIZE)
    assert torch.equal(L, again[0]) and torch.equal(ab, again[1])
    plain, _ = rgb_to_lab_normalized(rgb.float() / 255)
    flipped = [not torch.allclose(L[i], plain[i], atol=1e-5) for i in range(6)]
    for i, flip in enumerate(flipped):
        torch.testing.assert_close(L[i], plain[i].flip(-1) if flip else plain[i], atol=1e-5, rtol=0)
    assert any(flipped) and not all(flipped)


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


def test_prepare_joins_several_sources_less_excluded_shuffled(
    photos: Path, tmp_path: Path, rng: np.random.Generator
) -> None:
    from pixcolor.cli import main
    from pixcolor.data import load_cache_info

    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(3):
        _photo(rng, 30 + i, 40).save(extra / f"x{i}.jpg")
    held = tmp_path / "held.txt"
    held.write_text(f"{photos / 'img0.jpg'}\n{extra / 'x1.jpg'}\n")
    out = tmp_path / "cache"
    args = ["data", "prepare", str(photos), str(extra), str(photos / "img2.jpg"), "--size", "32"]
    args += ["--out"]
    assert main([*args, str(out), "--exclude", str(held), "--no-progress"]) == 0
    info = load_cache_info(out)
    want = [p for p in [*_files(photos), *_files(extra)] if p.name not in ("img0.jpg", "x1.jpg")]
    assert info["count"] == 7 and [Path(f).name for f in info["files"]] == [p.name for p in want]
    shuffled = tmp_path / "shuffled"
    assert main([*args, str(shuffled), "--shuffle", "3", "--no-progress"]) == 0
    names = [Path(f).name for f in load_cache_info(shuffled)["files"]]
    assert sorted(names) == sorted(p.name for p in [*_files(photos), *_files(extra)])
    assert names != [p.name for p in [*_files(photos), *_files(extra)]]  # seed 3 reorders


def test_prepare_refuses_when_everything_is_excluded(photos: Path, tmp_path: Path) -> None:
    from pixcolor.cli import main

    assert main(["data", "prepare", str(photos), "--exclude", str(photos), "--out",
                 str(tmp_path / "c"), "--no-progress"]) == 2  # fmt: skip
