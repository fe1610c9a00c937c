"""Resumable download against a local HTTP server, checksums, and safe archive extraction."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pixcolor.datasets.download import coco_sample, download, safe_extract
from pixcolor.errors import DownloadError


@dataclass
class FakeServer:
    """What the handler serves, and the Range header of every request it saw."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    ranges: list[str | None] = field(default_factory=list)
    cut_first_after: int | None = None  # drop the first response after this many bytes
    ignore_range: bool = False


class _Handler(BaseHTTPRequestHandler):
    state: FakeServer

    def do_GET(self) -> None:
        state = self.state
        data = state.files.get(self.path)
        state.ranges.append(self.headers.get("Range"))
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match and not state.ignore_range else 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if state.cut_first_after is not None and len(state.ranges) == 1:
            body = body[: state.cut_first_after]  # then the connection closes mid-file
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def payload() -> bytes:
    """A ~200 KB .tgz of incompressible bytes, so a cut-off lands mid-file."""
    return _tgz({f"pack/{i}.bin": bytes(range(256)) * 97 + i.to_bytes(2, "big") for i in range(8)})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_verifies_and_is_idempotent(
    server: FakeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/a.tgz"] = payload
    dest = tmp_path / "dl" / "a.tgz"
    got = download(
        f"{server.url}/a.tgz", dest, sha256=_sha256(payload), size=len(payload), progress=False
    )
    assert got == dest and dest.read_bytes() == payload
    assert not dest.with_name("a.tgz.part").exists()
    download(f"{server.url}/a.tgz", dest, sha256=_sha256(payload), progress=False)
    assert len(server.ranges) == 1  # the second call found a good file and fetched nothing


def test_broken_download_resumes_with_range(
    server: FakeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/a.tgz"] = payload
    server.cut_first_after = cut = len(payload) // 3
    dest = tmp_path / "a.tgz"
    url = f"{server.url}/a.tgz"
    with pytest.raises(DownloadError, match="run again to resume"):
        download(url, dest, sha256=_sha256(payload), progress=False, chunk_size=4096, retries=0)
    assert not dest.exists()
    assert dest.with_name("a.tgz.part").stat().st_size == cut
    download(url, dest, sha256=_sha256(payload), progress=False, chunk_size=4096, retries=0)
    assert server.ranges == [None, f"bytes={cut}-"]
    assert _sha256(dest.read_bytes()) == _sha256(payload)


def test_broken_download_retries_automatically(
    server: FakeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/a.tgz"] = payload
    server.cut_first_after = 1000
    dest = download(f"{server.url}/a.tgz", tmp_path / "a.tgz", size=len(payload), progress=False)
    assert server.ranges == [None, "bytes=1000-"] and dest.read_bytes() == payload


def test_server_ignoring_range_restarts(server: FakeServer, payload: bytes, tmp_path: Path) -> None:
    server.files["/a.tgz"] = payload
    server.ignore_range = True
    dest = tmp_path / "a.tgz"
    dest.with_name("a.tgz.part").write_bytes(b"stale bytes from elsewhere")
    download(f"{server.url}/a.tgz", dest, sha256=_sha256(payload), progress=False)
    assert server.ranges == ["bytes=26-"] and dest.read_bytes() == payload


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"sha256": "0" * 64}, "sha256 mismatch: expected 0000"),
        ({"md5": "f" * 32}, "md5 mismatch: expected ffff"),
        ({"md5_head": "e" * 32}, "md5 of the first 1048576 bytes mismatch"),
        ({"size": 12345}, "size mismatch: expected 12345 bytes, got"),
    ],
)
def test_bad_checksum_raises_and_leaves_nothing(
    server: FakeServer, payload: bytes, tmp_path: Path, check: dict, message: str
) -> None:
    server.files["/a.tgz"] = payload
    dest = tmp_path / "a.tgz"
    with pytest.raises(DownloadError, match=message):
        download(f"{server.url}/a.tgz", dest, progress=False, **check)
    assert list(tmp_path.iterdir()) == []


def test_md5_checks_pass(server: FakeServer, payload: bytes, tmp_path: Path) -> None:
    big = payload * (2**20 // len(payload) + 2)  # over 1 MiB: the head MD5 differs
    server.files["/a.tgz"] = big
    md5 = hashlib.md5(big).hexdigest()
    head = hashlib.md5(big[: 2**20]).hexdigest()
    assert head != md5
    out = download(f"{server.url}/a.tgz", tmp_path / "a.tgz", md5=md5, md5_head=head,
                   progress=False)  # fmt: skip
    assert out == tmp_path / "a.tgz" and out.read_bytes() == big
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tgz"]


def test_http_error_is_a_download_error(server: FakeServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.url}/missing.tgz", tmp_path / "m.tgz", progress=False)


def test_safe_extract_and_idempotence(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tgz"
    archive.write_bytes(_tgz({"top/a.txt": b"a", "top/sub/b.txt": b"bb"}))
    root = tmp_path / "root"
    files = safe_extract(archive, root)
    assert [f.relative_to(root.resolve()).as_posix() for f in files] == [
        "top/a.txt",
        "top/sub/b.txt",
    ]
    assert (root / "top/sub/b.txt").read_bytes() == b"bb"
    (root / "top/a.txt").unlink()
    assert safe_extract(archive, root) == files  # the marker short-cuts a second extraction
    assert not (root / "top/a.txt").exists()


def _evil_tar(path: Path, kind: str, outside: Path) -> None:
    info = tarfile.TarInfo("x")
    if kind in ("traversal", "absolute"):
        info.name = "ok/../../evil.txt" if kind == "traversal" else str(outside / "abs.txt")
        info.size = 4
    elif kind in ("symlink", "hardlink"):
        info.name = "link"
        info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
        info.linkname = "../outside/target.txt"
    elif kind == "device":
        info.type = tarfile.CHRTYPE
    with tarfile.open(path, "w") as tar:
        good = tarfile.TarInfo("good.txt")
        good.size = 4
        tar.addfile(good, io.BytesIO(b"good"))
        tar.addfile(info, io.BytesIO(b"evil") if info.isfile() else None)


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink", "hardlink", "device"])
def test_unsafe_tar_members_are_refused(tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "evil.tar"
    _evil_tar(archive, kind, outside)
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="unsafe archive member"):
        safe_extract(archive, root)
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil.txt").exists()
    assert not root.exists() or list(root.iterdir()) == []  # checked before writing anything


def test_zip_traversal_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", b"ok")
        zf.writestr("../evil.txt", b"evil")
    with pytest.raises(DownloadError, match="path traversal"):
        safe_extract(archive, tmp_path / "root")
    assert not (tmp_path / "evil.txt").exists()


def test_zip_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("d/fine.txt", b"ok")
    assert [p.name for p in safe_extract(archive, tmp_path / "root")] == ["fine.txt"]


def test_coco_sample_from_a_local_mirror(server: FakeServer, tmp_path: Path) -> None:
    archive = _tgz({f"coco_sample/train_sample/{i:03d}.jpg": b"jpeg" for i in range(5)})
    server.files["/coco_sample.tgz"] = archive
    kwargs = {"sha256": _sha256(archive), "md5_head": None, "size": len(archive), "progress": False}
    images = coco_sample(tmp_path, url=f"{server.url}/coco_sample.tgz", **kwargs)
    assert images == (tmp_path / "coco_sample" / "train_sample").resolve()
    assert len(list(images.glob("*.jpg"))) == 5
    (tmp_path / "coco_sample.tgz").unlink()  # users may delete the archive after extraction
    assert coco_sample(tmp_path, url=f"{server.url}/coco_sample.tgz", **kwargs) == images
    assert len(server.ranges) == 1
