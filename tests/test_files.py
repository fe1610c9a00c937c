"""Tests for pixcolor.files: collecting inputs and mirroring output paths."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pixcolor.files import IMAGE_EXTENSIONS, InputFile, collect_inputs, output_path

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def relatives(files: list[InputFile]) -> list[str]:
    return [f.relative.as_posix() for f in files]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    touch(
        root,
        "b.jpg",
        "a.PNG",
        "notes.txt",
        "2001/summer/beach.jpeg",
        "2001/summer/.hidden.jpg",
        "2001/winter/snow.TIFF",
        "2001/readme.md",
        "z/deep/er/x.webp",
    )
    return root


def test_image_extensions() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"} <= IMAGE_EXTENSIONS


def test_folder_walk_mirrors_tree(tree: Path, tmp_path: Path) -> None:
    files, problems = collect_inputs([tree])
    assert problems == []
    assert relatives(files) == [
        "2001/summer/.hidden.jpg",
        "2001/summer/beach.jpeg",
        "2001/winter/snow.TIFF",
        "a.PNG",
        "b.jpg",
        "z/deep/er/x.webp",
    ]
    assert all(f.path == tree / f.relative for f in files)
    out = tmp_path / "out"
    assert output_path(files[1], out, ".png") == out / "2001/summer/beach.png"
    assert output_path(files[3], out, "png") == out / "a.png"


def test_output_path_keeps_stem(tmp_path: Path) -> None:
    item = InputFile(tmp_path / "scan.v2.final.jpg", Path("scan.v2.final.jpg"))
    assert output_path(item, tmp_path / "out", ".png") == tmp_path / "out" / "scan.v2.final.png"


def test_deterministic(tree: Path) -> None:
    assert collect_inputs([tree]) == collect_inputs([str(tree)])


def test_plain_file_taken_whatever_its_extension(tree: Path) -> None:
    files, problems = collect_inputs([tree / "notes.txt", str(tree / "2001/summer/beach.jpeg")])
    assert problems == []
    assert relatives(files) == ["notes.txt", "beach.jpeg"]


def test_globs(tree: Path) -> None:
    files, problems = collect_inputs([str(tree / "*.jpg"), str(tree / "**" / "*.jp*g")])
    assert problems == []
    # Glob hits are named by file name only; wildcards skip hidden names like glob.glob.
    assert relatives(files) == ["b.jpg", "beach.jpeg"]
    everything, _ = collect_inputs([str(tree / "**")])
    assert sorted(relatives(everything)) == ["a.PNG", "b.jpg", "beach.jpeg", "snow.TIFF", "x.webp"]


def test_relative_glob(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    files, _ = collect_inputs(["**/*.webp", "2001/*/*.jpeg"])
    assert [f.path.as_posix() for f in files] == ["z/deep/er/x.webp", "2001/summer/beach.jpeg"]


def test_problems_reported(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "gone.jpg")
    inputs = [
        str(tmp_path / "missing.jpg"),
        str(tree / "*.gif"),
        str(tree / "*.txt"),
        str(tmp_path / "empty"),
        str(tmp_path / "dangling"),
        str(tree / "b.jpg"),
    ]
    files, problems = collect_inputs(inputs)
    assert relatives(files) == ["b.jpg"]
    assert problems == [
        (inputs[0], "no such file or folder"),
        (inputs[1], "matched nothing"),
        (inputs[2], "matched no image files"),
        (inputs[3], "no image files in this folder"),
        (inputs[4], "broken symbolic link"),
    ]


def test_duplicates_removed(tree: Path) -> None:
    (tree / "link.jpg").symlink_to(tree / "b.jpg")
    files, _ = collect_inputs([tree / "b.jpg", tree, str(tree / "*.jpg"), tree / "b.jpg"])
    paths = [os.path.realpath(f.path) for f in files]
    assert len(paths) == len(set(paths))
    assert files[0] == InputFile(tree / "b.jpg", Path("b.jpg"))


def test_symlink_loops_do_not_hang(tree: Path) -> None:
    (tree / "z" / "loop").symlink_to(tree, target_is_directory=True)
    (tree / "z" / "deep" / "up").symlink_to(tree / "z", target_is_directory=True)
    (tree / "self").symlink_to(".", target_is_directory=True)
    results: list = []
    inputs = [[tree], [str(tree / "**" / "*.webp")]]
    worker = threading.Thread(
        target=lambda: results.extend(map(collect_inputs, inputs)), daemon=True
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "collect_inputs hung on a symlink loop"
    (files, problems), (globbed, _) = results
    assert problems == [] and len(files) == 6
    assert relatives(globbed) == ["x.webp"]


def test_directory_named_like_an_image_is_skipped(tree: Path) -> None:
    (tree / "album.jpg").mkdir()
    touch(tree, "album.jpg/inside.png")
    files, _ = collect_inputs([tree])
    assert "album.jpg" not in relatives(files)
    assert "album.jpg/inside.png" in relatives(files)
    globbed, _ = collect_inputs([str(tree / "*.jpg")])
    assert relatives(globbed) == ["b.jpg"]


def test_non_ascii_and_spaces(tmp_path: Path) -> None:
    touch(tmp_path, "Été 1999/grand-mère à Nice.jpg", "日本/写真 1.png", "with [brackets].png")
    files, problems = collect_inputs([tmp_path])
    assert problems == []
    assert sorted(relatives(files)) == sorted(
        ["Été 1999/grand-mère à Nice.jpg", "日本/写真 1.png", "with [brackets].png"]
    )
    # An existing file is taken literally even when its name looks like a pattern.
    literal, problems = collect_inputs([tmp_path / "with [brackets].png"])
    assert relatives(literal) == ["with [brackets].png"] and problems == []
    item = next(f for f in files if f.relative.name == "grand-mère à Nice.jpg")
    out = output_path(item, tmp_path / "out", ".png")
    assert out == tmp_path / "out" / "Été 1999" / "grand-mère à Nice.png"


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_unreadable_subfolder_reported(tree: Path) -> None:
    locked = tree / "2001"
    locked.chmod(0)
    try:
        files, problems = collect_inputs([tree])
    finally:
        locked.chmod(0o755)
    assert relatives(files) == ["a.PNG", "b.jpg", "z/deep/er/x.webp"]
    assert len(problems) == 1 and "cannot read" in problems[0][1]
