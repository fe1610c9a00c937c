"""Atomic writes (pixcolor.atomic): one temp naming, mode 0644, no clobbering, cleanup on failure."""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

import pytest
import torch

from pixcolor import atomic, checkpoint
from pixcolor.errors import OutputExistsError, PixcolorError
from pixcolor.models import create_generator


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_bytes_round_trip_mode_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json"
    assert atomic.atomic_write_bytes(target, b"{}") == target
    assert target.read_bytes() == b"{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 & ~umask()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.json"]


def test_temp_names_are_hidden_and_recognised(tmp_path: Path) -> None:
    names = {atomic.temp_name(tmp_path / "out.png").name for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert name.startswith(".out.png.pixcolor-") and name.endswith(".tmp")
        assert atomic.is_temp_name(name)
    assert not atomic.is_temp_name(".out.png.tmp")
    assert not atomic.is_temp_name("out.png")


def test_no_overwrite_refuses_and_keeps_the_file(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="already exists") as info:
        atomic.atomic_write_bytes(target, b"new", overwrite=False)
    assert info.value.path == target
    assert target.read_bytes() == b"precious"
    atomic.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_target_appearing_meanwhile_is_not_clobbered(tmp_path: Path) -> None:
    target = tmp_path / "t.png"

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"new")
        target.write_bytes(b"old")  # another run publishes the same output meanwhile

    with pytest.raises(OutputExistsError):
        atomic.atomic_write(target, write, overwrite=False)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]


def test_full_disk_gives_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "out.bin").write_bytes(b"earlier")

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(PixcolorError) as info:
        atomic.atomic_write(tmp_path / "out.bin", write)
    message = str(info.value)
    assert "\n" not in message and "out.bin" in message and "No space left" in message
    assert "unchanged" in message
    assert (tmp_path / "out.bin").read_bytes() == b"earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_other_errors_propagate_after_cleanup(tmp_path: Path) -> None:
    def write(tmp: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(tmp_path / "out.bin", write)
    assert list(tmp_path.iterdir()) == []


def test_safetensors_checkpoint_is_0644_like_every_file(tmp_path: Path) -> None:
    g = create_generator("unet", base_channels=8, num_downs=5)
    folder = checkpoint.save_model(g, tmp_path / "m", "unet", {"base_channels": 8, "num_downs": 5})
    for name in (checkpoint.MODEL_FILE, checkpoint.MODEL_CONFIG):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644 & ~umask(), name
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_checkpoint_full_disk_is_one_line(tmp_path: Path, monkeypatch) -> None:
    real_write = Path.write_bytes

    def full(self: Path, data: bytes) -> int:
        real_write(self, data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    g = torch.nn.Linear(2, 2)
    with pytest.raises(PixcolorError, match=r"model\.safetensors: cannot write: No space left"):
        checkpoint.save_model(g, tmp_path / "m", "x", {})
    assert list((tmp_path / "m").iterdir()) == []


def test_remove_stale_temps_only_ours_and_only_old(tmp_path: Path) -> None:
    old = atomic.temp_name(tmp_path / "a.png")
    young = atomic.temp_name(tmp_path / "b.png")
    foreign = tmp_path / ".a.png.12345.tmp"  # not our naming pattern
    for p in (old, young, foreign):
        p.write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(foreign, (hour_ago, hour_ago))
    assert atomic.remove_stale_temps(tmp_path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([young.name, foreign.name])
    assert atomic.remove_stale_temps(tmp_path / "missing") == []


def test_make_temp_dir_is_recognised(tmp_path: Path) -> None:
    folder = atomic.make_temp_dir(tmp_path / "ckpt" / "last")
    assert folder.is_dir() and atomic.is_temp_name(folder.name)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755 & ~umask()


def test_atomic_output_publishes_a_folder_whole_and_replaces_one(tmp_path: Path) -> None:
    target = tmp_path / "reel"
    with atomic.atomic_output(target, folder=True) as tmp:
        assert tmp.is_dir() and atomic.is_temp_name(tmp.name) and not target.exists()
        (tmp / "a.png").write_bytes(b"a")
    assert [p.name for p in target.iterdir()] == ["a.png"]
    with atomic.atomic_output(target, folder=True) as tmp:  # replaces a non-empty folder
        (tmp / "b.png").write_bytes(b"b")
    assert [p.name for p in target.iterdir()] == ["b.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["reel"]  # the old one is gone too


def test_atomic_output_failure_removes_the_temp_and_keeps_the_target(tmp_path: Path) -> None:
    target = tmp_path / "reel"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(KeyboardInterrupt), atomic.atomic_output(target, folder=True) as tmp:
        (tmp / "a.png").write_bytes(b"a")
        raise KeyboardInterrupt
    full = atomic.atomic_output(tmp_path / "clip.mp4")
    with pytest.raises(PixcolorError, match="No space left"), full:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    refused = atomic.atomic_output(target, overwrite=False, folder=True)
    with pytest.raises(OutputExistsError), refused:
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["reel"]
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def test_atomic_output_no_overwrite_refuses_a_folder_that_appears_meanwhile(
    tmp_path: Path,
) -> None:
    target = tmp_path / "reel"
    output = atomic.atomic_output(target, overwrite=False, folder=True)
    with pytest.raises(OutputExistsError), output as tmp:
        (tmp / "new.png").write_bytes(b"new")
        target.mkdir()
        (target / "old.png").write_bytes(b"old")  # another run publishes it meanwhile
    assert [p.name for p in tmp_path.iterdir()] == ["reel"]
    assert [p.name for p in target.iterdir()] == ["old.png"]
