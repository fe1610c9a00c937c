"""Resumable downloads with checksums, safe archive extraction, and the fastai COCO sample.

Only the standard library does the network work (``urllib``). A download streams into
``dest.part``; if the connection breaks, the next call (or the automatic retry) asks the server
for the rest with an HTTP ``Range`` request. Archives are checked member by member before
anything is written, so a hostile archive cannot write outside its root.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from http.client import HTTPException, HTTPResponse
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from tqdm import tqdm

from pixcolor._version import __version__
from pixcolor.atomic import atomic_write_bytes
from pixcolor.errors import DownloadError

logger = logging.getLogger(__name__)

# The fastai COCO sample (COCO train2017 images; the colorization tutorial draws its 10,000
# training/validation images from it). Size and checksum come from fastai's
# ``fastai/data/checks.txt``, which records the MD5 of the *first MiB* only (``_check_file``:
# ``hashlib.md5(f.read(2**20))``). No SHA-256 of the whole file is published, so the archive
# is verified by size + head MD5.
COCO_SAMPLE_URL = "https://s3.amazonaws.com/fast-ai-coco/coco_sample.tgz"
COCO_SAMPLE_SIZE = 3_245_877_008
COCO_SAMPLE_MD5_HEAD = "006cd55d633d94b36ecaf661467830ec"
COCO_SAMPLE_SHA256: str | None = None
# How many bytes ``md5_head`` covers (fastai's convention).
MD5_HEAD_BYTES = 1 << 20

_USER_AGENT = f"pixcolor/{__version__} (+urllib)"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# What a broken connection can raise (``URLError`` and ``TimeoutError`` are ``OSError``s).
_NETWORK_ERRORS = (OSError, HTTPException)


def _digest(path: Path, algorithm: str, limit: int | None = None) -> str:
    """Hex digest of the file, or of its first ``limit`` bytes."""
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        if limit is not None:
            h.update(f.read(limit))
        else:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _check(
    path: Path, *, size: int | None, sha256: str | None, md5: str | None, md5_head: str | None
) -> str | None:
    """Return ``None`` if ``path`` matches every given expectation, else what differs."""
    got_size = path.stat().st_size
    if size is not None and got_size != size:
        return f"size mismatch: expected {size} bytes, got {got_size}"
    checks = (("sha256", sha256, None), ("md5", md5, None), ("md5", md5_head, MD5_HEAD_BYTES))
    for algorithm, expected, limit in checks:
        if expected is not None:
            got = _digest(path, algorithm, limit)
            if got != expected.lower():
                what = f"{algorithm} of the first {limit} bytes" if limit else algorithm
                return f"{what} mismatch: expected {expected.lower()}, got {got}"
    return None


class _TransferBrokenError(Exception):
    """A transfer that stopped early; ``restart`` says the ``.part`` file is unusable."""

    def __init__(self, message: str, *, restart: bool = False) -> None:
        super().__init__(message)
        self.restart = restart


def _open(url: str, offset: int, timeout: float) -> tuple[HTTPResponse, int, int | None] | None:
    """Open ``url`` from byte ``offset``; return ``(response, offset, total)`` or ``None``.

    ``None`` means the server says the bytes before ``offset`` are already the whole file.
    The returned offset is 0 when the server ignored the ``Range`` header (answered 200).
    """
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # "range not satisfiable": complete already, or stale
            match = re.fullmatch(r"bytes \*/(\d+)", exc.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == offset:
                return None
            raise _TransferBrokenError(
                f"server refused to resume at byte {offset}", restart=True
            ) from exc
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            response.close()
            raise _TransferBrokenError("server answered with the wrong range", restart=True)
        return response, offset, None if match.group(3) == "*" else int(match.group(3))
    if offset:  # 200 to a range request: the server ignores Range, so start over
        logger.info("%s: server ignored the Range request; restarting from byte 0", url)
    length = response.headers.get("Content-Length", "")
    return response, 0, int(length) if length.isdigit() else None


def _fetch_once(url: str, part: Path, *, progress: bool, chunk_size: int, timeout: float) -> None:
    """Append the rest of ``url`` to ``part``; raise ``_TransferBrokenError`` if the stream breaks."""
    opened = _open(url, part.stat().st_size if part.exists() else 0, timeout)
    if opened is None:
        return
    response, offset, total = opened
    bar = tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=part.name.removesuffix(".part"),
        disable=not progress,
        leave=False,
    )
    with response, bar, part.open("ab" if offset else "wb") as f:
        got = offset
        while True:
            try:
                chunk = response.read(chunk_size)
            except _NETWORK_ERRORS as exc:
                raise _TransferBrokenError(f"connection broke after {got} bytes: {exc}") from exc
            if not chunk:
                break
            f.write(chunk)
            got += len(chunk)
            bar.update(len(chunk))
    if total is not None and got < total:
        raise _TransferBrokenError(f"connection closed after {got} of {total} bytes")


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    md5_head: str | None = None,
    size: int | None = None,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    timeout: float = 60,
    retries: int = 2,
) -> Path:
    """Download ``url`` to ``dest``, resuming a broken transfer and verifying the result.

    Bytes go to ``dest.part`` first; a later call resumes it with ``Range: bytes=N-`` (a server
    that answers ``200`` instead of ``206`` is handled by starting over). When the transfer is
    complete the file is checked against every expectation given, and renamed to ``dest``
    atomically. If ``dest`` already exists and matches, nothing is downloaded.

    Args:
        url: ``http(s)://`` address to fetch.
        dest: Final file path; its folder is created if needed.
        sha256: Expected SHA-256 of the whole file (hex).
        md5: Expected MD5 of the whole file (hex).
        md5_head: Expected MD5 of the first 1 MiB (fastai's ``checks.txt`` convention).
        size: Expected size in bytes.
        progress: Show a tqdm progress bar.
        chunk_size: Bytes read per network call.
        timeout: Socket timeout in seconds.
        retries: Automatic resumptions after a broken connection before giving up.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: On HTTP errors, a transfer that keeps breaking (``dest.part`` is kept
            so the next call resumes it), or a size/checksum mismatch (the partial file is
            deleted; the message gives expected vs got).
    """
    dest = Path(dest)
    expect = {"size": size, "sha256": sha256, "md5": md5, "md5_head": md5_head}
    if dest.is_file():
        problem = _check(dest, **expect)
        if problem is None:
            return dest
        logger.warning("%s exists but does not match (%s); downloading again", dest, problem)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if size is not None and part.exists() and part.stat().st_size > size:
        part.unlink()
    _fetch(url, part, size, retries, progress=progress, chunk_size=chunk_size, timeout=timeout)
    problem = _check(part, **expect)
    if problem is not None:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: {problem}")
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, size: int | None, retries: int, **fetch_options: Any) -> None:
    """Fill ``part`` from ``url``, resuming after a broken transfer up to ``retries`` times.

    Raises:
        DownloadError: a network error, or still broken after the retries (``part`` is kept,
            so a later run resumes).
    """
    for attempt in range(retries + 1):
        if size is not None and part.exists() and part.stat().st_size == size:
            return
        try:
            _fetch_once(url, part, **fetch_options)
            return
        except _TransferBrokenError as exc:
            if exc.restart:
                part.unlink(missing_ok=True)
            if attempt == retries:
                raise DownloadError(
                    f"{url}: download interrupted ({exc}); run again to resume {part}"
                ) from exc
            logger.warning("%s: %s; resuming (attempt %d)", url, exc, attempt + 2)
        except _NETWORK_ERRORS as exc:
            raise DownloadError(f"{url}: {exc}; run again to resume {part}") from exc


def _member_problem(name: str, root: Path) -> str | None:
    """Why archive member ``name`` may not be extracted under ``root`` (``None`` if it may)."""
    if not name or "\x00" in name:
        return "empty or NUL in name"
    if (
        PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or name[:1] in "/\\"
    ):
        return "absolute path"
    if PureWindowsPath(name).drive:
        return "drive letter"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "'..' path traversal"
    return None


def _inside(root: Path, target: str) -> bool:
    """Whether ``target`` (relative to ``root``, normalised lexically) stays inside ``root``."""
    full = os.path.normpath(os.path.join(root, target))
    return full == str(root) or full.startswith(str(root) + os.sep)


def _climbs(target: str) -> bool:
    """Whether a link target is absolute or has a ``..`` component.

    Checking the normalised target alone is not enough: with ``s -> .`` in the archive,
    ``t -> s/..`` normalises to ``.`` but leads to the root's parent. Links without ``..``
    only ever point into their own folder's subtree, so no chain of them can leave the root.
    """
    return (
        os.path.isabs(target)
        or PureWindowsPath(target).is_absolute()
        or ".." in PurePosixPath(target.replace("\\", "/")).parts
    )


def _check_tar(tar: tarfile.TarFile, root: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        problem = _member_problem(m.name, root)
        if problem is None and (m.ischr() or m.isblk() or m.isfifo() or m.isdev()):
            problem = "device or FIFO"
        elif problem is None and m.issym():
            link = os.path.join(os.path.dirname(m.name), m.linkname)
            if _climbs(m.linkname) or not _inside(root, link):
                problem = f"symlink pointing outside the root ({m.linkname})"
        elif problem is None and m.islnk():
            if _climbs(m.linkname) or not _inside(root, m.linkname):
                problem = f"hard link pointing outside the root ({m.linkname})"
        elif problem is None and not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            problem = "unsupported member type"
        if problem is not None:
            raise DownloadError(f"unsafe archive member {m.name!r}: {problem}")
    return members


def _check_zip(zf: zipfile.ZipFile, root: Path) -> list[zipfile.ZipInfo]:
    members = zf.infolist()
    for info in members:
        problem = _member_problem(info.filename, root)
        if problem is None and stat.S_ISLNK(info.external_attr >> 16):
            problem = "symlinks in zip archives are not supported"
        if problem is None and not _inside(root, info.filename):
            problem = "path outside the root"
        if problem is not None:
            raise DownloadError(f"unsafe archive member {info.filename!r}: {problem}")
    return members


def _marker(archive: Path, root: Path) -> Path:
    return root / f".{archive.name}.extracted"


def safe_extract(archive: str | Path, root: str | Path) -> list[Path]:
    """Extract a ``.tar``/``.tgz``/``.tar.gz``/``.zip`` archive under ``root``, safely.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    symlinks or hard links that point outside ``root``, and device files make the whole
    archive refused. Tar archives are additionally extracted with ``filter="data"`` where the
    running Python has extraction filters (3.12+, and 3.10/3.11 security releases).
    A marker file ``root/.<archive name>.extracted`` records success, so a second call with
    the same archive returns at once.

    Returns:
        The regular files extracted (absolute paths), in archive order.

    Raises:
        DownloadError: If the archive is unsafe, corrupt or of an unknown type.
    """
    archive, root = Path(archive), Path(root).resolve()
    marker = _marker(archive, root)
    stamp = {"archive": archive.name, "size": archive.stat().st_size if archive.exists() else None}
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        if recorded.get("archive") == stamp["archive"] and (
            stamp["size"] is None or recorded.get("size") == stamp["size"]
        ):
            return [root / f for f in recorded["files"]]
    root.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                infos = _check_zip(zf, root)
                zf.extractall(root, members=infos)
                files = [i.filename for i in infos if not i.is_dir()]
        elif name.endswith((".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")):
            with tarfile.open(archive, "r:*") as tar:
                members = _check_tar(tar, root)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(root, members=members, filter="data")
                else:  # pragma: no cover - Python without extraction filters
                    tar.extractall(root, members=members)
                files = [m.name for m in members if m.isfile()]
        else:
            raise DownloadError(f"{archive}: unknown archive type (expected .tar, .tgz or .zip)")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        # ``FilterError`` (a ``TarError``) is the data filter's own refusal.
        unsafe = isinstance(exc, getattr(tarfile, "FilterError", ()))
        raise DownloadError(
            f"{archive}: {'unsafe' if unsafe else 'corrupt'} archive ({exc})"
        ) from exc
    atomic_write_bytes(marker, json.dumps({**stamp, "files": files}).encode("utf-8"))
    return [root / f for f in files]


def coco_sample(
    root: str | Path,
    *,
    url: str = COCO_SAMPLE_URL,
    sha256: str | None = COCO_SAMPLE_SHA256,
    md5_head: str | None = COCO_SAMPLE_MD5_HEAD,
    size: int | None = COCO_SAMPLE_SIZE,
    progress: bool = True,
) -> Path:
    """Download and extract the fastai COCO sample (about 3.3 GB) under ``root``.

    The archive is kept as ``root/coco_sample.tgz``; delete it after extraction to save
    space (a later call still returns at once thanks to the extraction marker).

    Returns:
        The folder of JPEGs, ``root/coco_sample/train_sample``.
    """
    root = Path(root)
    archive = root / url.rsplit("/", 1)[-1]
    images = root.resolve() / "coco_sample" / "train_sample"
    if _marker(archive, root.resolve()).is_file() and images.is_dir():
        return images
    download(url, archive, sha256=sha256, md5_head=md5_head, size=size, progress=progress)
    safe_extract(archive, root)
    if not images.is_dir():
        raise DownloadError(f"{archive}: extracted, but {images} is missing")
    return images
