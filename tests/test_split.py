"""The tutorial's seeded train/val selection, the list files, and ``pixcolor data split``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixcolor.cli import main
from pixcolor.datasets.split import read_file_list, seed_split, write_split


@pytest.fixture
def fake_paths() -> list[Path]:
    """6000 paths that need not exist, deliberately not in sorted order."""
    return [Path(f"/coco/{i:06d}.jpg") for i in reversed(range(6000))]


def test_seed_split_sizes_disjoint_reproducible(fake_paths: list[Path]) -> None:
    train, val = seed_split(fake_paths)
    assert (len(train), len(val)) == (4000, 1000)
    assert not set(train) & set(val)
    assert set(train) | set(val) <= set(fake_paths)
    assert seed_split(fake_paths) == (train, val)
    assert seed_split(list(reversed(fake_paths))) == (train, val)  # input order is irrelevant
    other_train, other_val = seed_split(fake_paths, seed=2)
    assert other_train != train and other_val != val


def test_seed_split_matches_the_tutorials_global_seed_code(fake_paths: list[Path]) -> None:
    saved = np.random.get_state()
    try:  # the tutorial's exact calls, on the sorted list
        np.random.seed(1)
        chosen = np.random.choice(np.array(sorted(map(str, fake_paths))), 5000, replace=False)
        perm = np.random.permutation(5000)
        expected_train, expected_val = chosen[perm[:4000]], chosen[perm[4000:]]
    finally:
        np.random.set_state(saved)
    train, val = seed_split(fake_paths, n=5000, n_val=1000, seed=1)
    assert [str(p) for p in train] == expected_train.tolist()
    assert [str(p) for p in val] == expected_val.tolist()


@pytest.mark.parametrize(("n", "n_val"), [(6001, 1000), (100, 100), (100, -1), (0, 0)])
def test_seed_split_rejects_bad_sizes(fake_paths: list[Path], n: int, n_val: int) -> None:
    with pytest.raises(ValueError, match="must be in"):
        seed_split(fake_paths, n=n, n_val=n_val)


def test_write_split_round_trips(tmp_path: Path, fake_paths: list[Path]) -> None:
    train, val = seed_split(fake_paths, n=50, n_val=10)
    train_txt, val_txt = write_split(train, val, tmp_path / "splits")
    assert (train_txt.name, val_txt.name) == ("train.txt", "val.txt")
    assert read_file_list(train_txt) == train
    assert read_file_list(val_txt) == val
    assert not [
        p for p in (tmp_path / "splits").iterdir() if p.name not in {"train.txt", "val.txt"}
    ]


def test_cli_split_writes_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "all.txt"
    source.write_text("# sixty fake photos\n" + "".join(f"img{i:02d}.jpg\n" for i in range(60)))
    out = tmp_path / "try"
    code = main(
        ["data", "split", str(source), "--n", "50", "--val", "10", "--seed", "1", "--out", str(out)]
    )
    assert code == 0
    train, val = read_file_list(out / "train.txt"), read_file_list(out / "val.txt")
    assert (len(train), len(val)) == (40, 10)
    assert all(p.is_absolute() and p.parent == tmp_path for p in train + val)
    assert "train.txt" in capsys.readouterr().out


def test_cli_split_too_many_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "few.txt"
    source.write_text("a.jpg\nb.jpg\n")
    assert main(["data", "split", str(source), "--out", str(tmp_path / "x")]) == 2
    assert "n must be in [1, 2]" in capsys.readouterr().err
