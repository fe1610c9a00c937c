"""Training data: image files (or a decoded uint8 cache) -> square uint8 RGB tensors.

Three kinds of source are accepted everywhere: a folder (walked recursively), a ``.txt`` list
of paths, or a sequence of paths. :func:`prepare_cache` decodes a source once into a
memory-mapped ``images.npy`` (``(N, size, size, 3)`` uint8) plus ``cache.json``; a folder holding
those is a fourth kind of source, and reading it costs no JPEG decoding.

The data set only decodes and resizes; flips, crops and the Lab conversion happen batched on
the training device (:func:`pixcolor.train_setup.prepare_batch`), and the data order comes from
:class:`pixcolor.train_setup.EpochSampler` through :func:`~pixcolor.train_setup.make_train_loader`.

Example:
    >>> ds = ColorizationDataset("photos/train", size=256)  # doctest: +SKIP
    >>> ds[0]["rgb"].shape  # doctest: +SKIP
    torch.Size([3, 256, 256])
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from pixcolor.atomic import atomic_output, atomic_write_bytes
from pixcolor.datasets.split import Source, resolve_files
from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.imageio import DEFAULT_MAX_PIXELS, read_image

# Files of a prepared cache folder, and the version of its layout (bump on any change).
CACHE_META = "cache.json"
CACHE_IMAGES = "images.npy"
CACHE_FORMAT_VERSION = 1
# Files decoded per thread-pool round while preparing a cache (bounds memory).
_PREPARE_CHUNK = 256


class UnreadableImageWarning(UserWarning):
    """An image file could not be decoded and was skipped."""


def is_cache(source: object) -> bool:
    """Whether ``source`` is a folder prepared by :func:`prepare_cache`."""
    return isinstance(source, str | os.PathLike) and (Path(source) / CACHE_META).is_file()


def load_cache_info(cache_dir: str | Path) -> dict[str, Any]:
    """Read and check ``cache.json`` of a prepared cache (keys: size, count, files, ...)."""
    meta_path = Path(cache_dir) / CACHE_META
    try:
        info = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PixcolorError(f"{meta_path}: unreadable cache metadata ({exc})") from exc
    if info.get("format_version") != CACHE_FORMAT_VERSION:
        raise PixcolorError(
            f"{meta_path}: cache format {info.get('format_version')}, expected "
            f"{CACHE_FORMAT_VERSION}; prepare it again"
        )
    return info


def load_resized(
    path: str | Path, size: int, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode an image and resize it to ``size x size`` (Pillow bicubic, aspect ignored).

    Returns:
        ``(size, size, 3)`` uint8 RGB array.

    Raises:
        ImageReadError: If the file cannot be decoded.
    """
    img = read_image(path, max_pixels=max_pixels)
    try:
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BICUBIC)
        return np.array(img, dtype=np.uint8)
    except (OSError, ValueError) as exc:  # lazy decoders can fail at resize time
        raise ImageReadError(path, str(exc)) from exc


def _try_load(path: Path, size: int, max_pixels: int | None) -> tuple[np.ndarray | None, str]:
    try:
        return load_resized(path, size, max_pixels=max_pixels), ""
    except ImageReadError as exc:
        return None, exc.reason


def _decode(
    files: list[Path], size: int, max_pixels: int | None, num_workers: int | None, progress: bool
) -> Iterator[tuple[Path, tuple[np.ndarray | None, str]]]:
    """Yield ``(path, (array or None, reason))`` in order, decoding on a thread pool."""
    workers = default_num_workers(len(files)) if num_workers is None else num_workers
    load = partial(_try_load, size=size, max_pixels=max_pixels)
    with (
        ThreadPoolExecutor(max(1, workers)) as pool,
        tqdm(total=len(files), desc="decoding", unit="img", disable=not progress) as bar,
    ):
        for start in range(0, len(files), _PREPARE_CHUNK):  # chunks bound the memory held
            chunk = files[start : start + _PREPARE_CHUNK]
            results = list(pool.map(load, chunk)) if workers > 0 else [load(p) for p in chunk]
            yield from zip(chunk, results, strict=True)
            bar.update(len(chunk))


def _warn_unreadable(path: Path, reason: str) -> None:
    warnings.warn(
        f"skipping unreadable image {path}: {reason}", UnreadableImageWarning, stacklevel=3
    )


def default_num_workers(n_items: int, batch_size: int = 1) -> int:
    """Loader workers: ``min(4, cpu_count - 1)``, or 0 when there are under 4 batches."""
    if n_items < 4 * batch_size:
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def prepare_cache(
    source: Source,
    out_dir: str | Path,
    size: int = 256,
    *,
    num_workers: int | None = None,
    progress: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Path:
    """Decode every image of ``source`` once into a memory-mappable uint8 cache.

    Writes ``out_dir/images.npy`` (``(N, size, size, 3)`` uint8, bicubic resize like the
    ``val`` transform) and ``out_dir/cache.json`` (size, count, the source file list, the
    cached files, skipped files with reasons, format version), each atomically
    (:mod:`pixcolor.atomic`). Unreadable files are warned about and skipped. Re-running with
    the same file list and size does nothing.

    Args:
        source: Folder, ``.txt`` list, or sequence of image paths.
        out_dir: Cache folder, created if needed.
        size: Side of the square images, in pixels.
        num_workers: Decoding threads (Pillow releases the GIL); default
            ``default_num_workers``, 0 decodes in the calling thread.
        progress: Show a tqdm progress bar.
        max_pixels: Decompression-bomb limit passed to :func:`pixcolor.imageio.read_image`.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        PixcolorError: ``source`` is a cache, missing or empty, none of its images can be
            read, or the cache cannot be written (the earlier images file is then kept).
    """
    if is_cache(source):
        raise PixcolorError(f"{source} is already a prepared cache")
    files = resolve_files(source)
    sources = [str(p.absolute()) for p in files]
    out = Path(out_dir)
    if _cache_is_current(out, size, sources):
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / CACHE_META).unlink(missing_ok=True)  # any old cache is stale from here on
    with atomic_output(out / CACHE_IMAGES) as tmp:  # raising here keeps the old images file
        kept, skipped = _decode_into(tmp, files, size, max_pixels, num_workers, progress)
        if not kept:
            raise PixcolorError(f"{source}: none of the {len(files)} images could be read")
    meta = {
        "format_version": CACHE_FORMAT_VERSION,
        "size": size,
        "count": len(kept),
        "files": kept,
        "sources": sources,
        "skipped": skipped,
    }
    atomic_write_bytes(out / CACHE_META, json.dumps(meta, indent=1).encode("utf-8"))
    return out


def _cache_is_current(out: Path, size: int, sources: list[str]) -> bool:
    """Whether ``out`` already holds a cache of ``sources`` at ``size``."""
    if not ((out / CACHE_META).is_file() and (out / CACHE_IMAGES).is_file()):
        return False
    try:
        old = load_cache_info(out)
    except PixcolorError:
        return False
    return old.get("size") == size and old.get("sources") == sources


def _decode_into(
    npy_path: Path,
    files: list[Path],
    size: int,
    max_pixels: int | None,
    num_workers: int | None,
    progress: bool,
) -> tuple[list[str], list[dict[str, str]]]:
    """Decode ``files`` into a new ``.npy`` file at ``npy_path``; return (kept, skipped)."""
    # Rows of skipped files stay unused (zero) at the end; ``count`` says how many are valid.
    images = np.lib.format.open_memmap(npy_path, "w+", np.uint8, (len(files), size, size, 3))
    kept: list[str] = []
    skipped: list[dict[str, str]] = []
    for path, (array, reason) in _decode(files, size, max_pixels, num_workers, progress):
        if array is None:
            _warn_unreadable(path, reason)
            skipped.append({"path": str(path), "reason": reason})
        else:
            images[len(kept)] = array
            kept.append(str(path.absolute()))
    images.flush()
    del images  # unmap before the file is fsynced and renamed
    return kept, skipped


class ColorizationDataset(Dataset[dict[str, Tensor]]):
    """Square colour photos as ``{"rgb": (3, size, size) uint8}`` items, for training.

    Each image is resized to ``size x size`` (Pillow bicubic, aspect ratio ignored), or read
    from a prepared cache of that size. Unreadable files are skipped: the item at the next
    index (wrapping around) is returned instead, and an :class:`UnreadableImageWarning`
    naming the file and reason is issued once per file (once per worker process).

    Args:
        source: Folder, ``.txt`` list, sequence of paths, or a cache from :func:`prepare_cache`.
        size: Side of the square output, in pixels; must equal a cache's size.
        limit: Keep only the first ``limit`` files.
        indices: Keep only these positions (after ``limit``), e.g. a distributed rank's shard.
        max_pixels: Decompression-bomb limit for :func:`pixcolor.imageio.read_image`.

    Raises:
        ValueError: On a size that differs from the cache's, or an out-of-range index.
        PixcolorError: If the source is missing or empty.
    """

    def __init__(
        self,
        source: Source,
        size: int = 256,
        *,
        limit: int | None = None,
        indices: Sequence[int] | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size, self.max_pixels = size, max_pixels
        self.cache_dir: Path | None = None
        if is_cache(source):
            self.cache_dir = Path(source)  # type: ignore[arg-type]
            info = load_cache_info(self.cache_dir)
            if info["size"] != size:
                raise ValueError(f"{self.cache_dir} holds {info['size']}px images, not {size}px")
            shape = np.load(self.cache_dir / CACHE_IMAGES, mmap_mode="r").shape
            if shape[0] < info["count"] or shape[1:] != (size, size, 3):
                raise PixcolorError(
                    f"{self.cache_dir}: images.npy has shape {shape}, expected {info['count']}"
                )
            paths = [Path(p) for p in info["files"]]
        else:
            paths = resolve_files(source)
        positions = list(range(len(paths)))[:limit]
        if indices is not None:
            try:
                positions = [positions[i] for i in indices]
            except IndexError:
                raise ValueError(f"indices must be in [0, {len(positions)})") from None
        if not positions:
            raise PixcolorError(f"{source}: no images selected")
        self.paths: list[Path] = [paths[i] for i in positions]
        self._rows = positions  # rows of the cache array
        self._images: np.ndarray | None = None  # memory map, opened lazily in each process
        self._bad: set[int] = set()

    @property
    def is_cached(self) -> bool:
        """Whether items come from a prepared cache (no decoding: loader workers do not pay)."""
        return self.cache_dir is not None

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_images"] = None  # never pickle the memory map's contents into workers
        return state

    def _load(self, i: int) -> np.ndarray:
        """Return item ``i`` as ``(size, size, 3)`` uint8."""
        if self.cache_dir is None:
            return load_resized(self.paths[i], self.size, max_pixels=self.max_pixels)
        if self._images is None:
            self._images = np.load(self.cache_dir / CACHE_IMAGES, mmap_mode="r")
        return np.array(self._images[self._rows[i]])  # copy out of the read-only map

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        for step in range(n):
            i = (index + step) % n
            if i in self._bad:
                continue
            try:
                array = self._load(i)
            except ImageReadError as exc:
                self._bad.add(i)
                _warn_unreadable(self.paths[i], exc.reason)
                continue
            return {"rgb": torch.from_numpy(array).permute(2, 0, 1).contiguous()}
        raise PixcolorError(f"none of the {n} images could be read")
