"""The run folder both trainers share: the metrics log on resume, signals, process-wide state."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from train_helpers import TINY_UNET, tiny_train_config

from pixcolor import atomic, run_folder, tensorboard_log, visualize
from pixcolor import checkpoint as ckpt
from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.errors import CheckpointError
from pixcolor.interrupt import GracefulInterrupt
from pixcolor.models import create_generator
from pixcolor.run_folder import RunFolder
from pixcolor.sr_train import SRTrainConfig, SRTrainer
from pixcolor.train import Trainer
from pixcolor.train_setup import EpochSampler, make_train_loader

HALF_LINE = '{"kind": "train", "epoch": 1, "st'  # what a kill mid-write leaves


def _images(folder: Path, n: int, side: int) -> str:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    for i in range(n):
        y, x = np.mgrid[0:side, 0:side]
        base = np.stack([x * 255 / side, y * 255 / side, np.full((side, side), 40 * i)], -1)
        img = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i}.png")
    return str(folder)


def _colorizer(tmp_path: Path) -> Trainer:
    data = tmp_path / "data"
    source = str(data) if data.exists() else _images(data, 4, 32)
    return Trainer(tiny_train_config(data=source, out=str(tmp_path / "run"), log_every=1))


def _srcnn(tmp_path: Path) -> SRTrainer:
    data = tmp_path / "data"
    source = str(data) if data.exists() else _images(data, 2, 40)
    config = SRTrainConfig(
        data=source, out=str(tmp_path / "run"), scale=2, patch=16, stride=8, batch_size=8,
        epochs=2, device="cpu", log_every=1, keep_last=1, f1=8, f2=4,
    )  # fmt: skip
    return SRTrainer(config)


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("make", [_colorizer, _srcnn], ids=["colorizer", "srcnn"])
def test_resume_drops_a_half_written_log_line(tmp_path, make):
    """A kill mid-write leaves a broken last line; resuming drops it (and rows after the
    checkpoint) in both trainers, and the finished log has each step once."""
    make(tmp_path).fit(stop_at_step=3)
    log = tmp_path / "run" / "metrics.jsonl"
    with open(log, "a") as fh:
        fh.write('{"kind": "train", "epoch": 1, "step": 4, "loss": 0.1}\n' + HALF_LINE)
    resumed = make(tmp_path)
    resumed.resume()
    assert [r["step"] for r in _rows(tmp_path / "run")] == [1, 2, 3]
    resumed.fit()
    steps = [r["step"] for r in _rows(tmp_path / "run") if r["kind"] == "train"]
    assert steps == list(range(1, resumed.global_step + 1))


def test_trim_log_keeps_rows_up_to_the_step(tmp_path):
    folder = RunFolder(tmp_path)
    rows = [{"step": s} for s in (1, 2, 3)]
    folder.metrics.write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + "\n[1, 2]\n" + HALF_LINE
    )
    folder.trim_log(2)
    assert folder.metrics.read_text() == '{"step": 1}\n{"step": 2}\n'


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_save_a_checkpoint(tmp_path, signum):
    """SIGTERM (SLURM, Kubernetes, ``timeout``) stops training like Ctrl-C: the step finishes,
    ``last`` holds it, the previous handlers are back and the run resumes from there."""
    trainer = _colorizer(tmp_path)
    step = trainer.train_step

    def step_then_signal(*args, **kwargs):
        losses = step(*args, **kwargs)
        if trainer.global_step == 1:  # the counter moves on after train_step
            os.kill(os.getpid(), signum)
        return losses

    trainer.train_step = step_then_signal
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    trainer.fit()
    assert trainer.global_step == 2
    assert {s: signal.getsignal(s) for s in before} == before
    again = _colorizer(tmp_path)
    assert again.resume().name == "last" and again.global_step == 2


def test_a_second_signal_aborts():
    with pytest.raises(KeyboardInterrupt), GracefulInterrupt() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("make", [_colorizer, _srcnn], ids=["colorizer", "srcnn"])
def test_training_leaves_process_wide_state_alone(tmp_path, make):
    """The trainers draw from their own random stream and restore cuDNN's setting."""
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    benchmark = torch.backends.cudnn.benchmark
    trainer = make(tmp_path)
    trainer.fit(stop_at_step=2)
    assert torch.equal(torch.rand(4), expected)
    assert torch.backends.cudnn.benchmark == benchmark


def test_same_seed_same_weights_whatever_the_callers_stream(tmp_path):
    torch.manual_seed(1)
    a = _colorizer(tmp_path / "a").G_raw.state_dict()
    torch.manual_seed(2)
    b = _colorizer(tmp_path / "b").G_raw.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- an earlier run is never destroyed; full disks and bad files give one line ---------------


def _train_args(tmp_path: Path, *extra: str) -> list[str]:
    data = tmp_path / "data"
    source = str(data) if data.exists() else _images(data, 4, 32)
    return [
        "train", "--preset", "seed", "--data", source, "--out", str(tmp_path / "run"), "--size", "32",
        "--generator", "unet", "--generator-kwargs", json.dumps(TINY_UNET),
        "--discriminator-kwargs", '{"base_channels": 8}', "--batch-size", "2", "--epochs", "1",
        "--num-workers", "0", "--precision", "fp32", *extra,
    ]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_existing_run_is_refused_and_overwrite_moves_it_aside(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train_args(tmp_path)) == 0
    before = _snapshot(run)
    capsys.readouterr()
    assert main(_train_args(tmp_path, "--epochs", "2")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a training run" in err[0], err
    assert "--resume" in err[0] and "--out" in err[0] and "--overwrite" in err[0]
    assert _snapshot(run) == before  # untouched
    assert main(_train_args(tmp_path, "--overwrite")) == 0
    (old,) = tmp_path.glob("run.old-*")
    assert _snapshot(old) == before  # moved aside whole, never deleted
    assert (run / "checkpoints" / "last").is_dir()


def _disk_full(path: Path) -> None:
    path.write_bytes(b"half")
    raise OSError(errno.ENOSPC, "No space left on device")


def _torch_save_on_full_disk(path: Path) -> None:
    path.write_bytes(b"half")
    raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 123 vs 456")


@pytest.mark.parametrize("failure", [_disk_full, _torch_save_on_full_disk])
def test_checkpoint_on_a_full_disk_is_one_line_and_keeps_the_previous(
    tmp_path, monkeypatch, failure
):
    trainer = _colorizer(tmp_path)
    last = trainer.save_checkpoint("last")
    before = _snapshot(last)
    monkeypatch.setattr(ckpt, "save_torch_state", lambda state, path: failure(path))
    with pytest.raises(CheckpointError) as info:
        trainer.save_checkpoint("last")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{last}: cannot write the checkpoint (")
    assert "the previous one is intact" in message and "MiB free" in message
    assert ("No space left on device" if failure is _disk_full else "unexpected pos") in message
    ckpt.verify_checkpoint_dir(last)
    assert _snapshot(last) == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["last"]  # no temp folder left


def test_log_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    def full_disk_open(path, mode="r", *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folder, "open", full_disk_open, raising=False)
    assert main(_train_args(tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "metrics.jsonl: cannot write the training log (No space left on device)" in err
    assert "are intact" in err and "Traceback" not in err


def test_refused_training_state_on_resume_is_one_line(tmp_path, capsys):
    assert main(_train_args(tmp_path)) == 0
    last = tmp_path / "run" / "checkpoints" / "last"
    torch.save({"epoch": 1, "opt_g": Payload(tmp_path / "pwned")}, last / "state.pt")
    files = {p.name: (lambda dst, src=p: dst.write_bytes(src.read_bytes())) for p in last.iterdir()}
    files.pop("manifest.json")
    ckpt.write_checkpoint_dir(last, files)  # a valid manifest over the evil state.pt
    for old in last.parent.glob("epoch_*"):
        shutil.rmtree(old)
    shutil.rmtree(last.parent / "best", ignore_errors=True)
    capsys.readouterr()
    assert main([*_train_args(tmp_path, "--epochs", "2"), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "state.pt: refused training state (" in err[0] and "weights_only" not in err[0]
    assert not (tmp_path / "pwned").exists()


class Payload:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_export_on_a_full_disk_is_one_line_and_keeps_the_previous(tmp_path, monkeypatch, capsys):
    source = save_model(create_generator("unet", **TINY_UNET), tmp_path / "ckpt", "unet", TINY_UNET)
    out = tmp_path / "release"
    assert main(["export", str(source), "-o", str(out)]) == 0
    before = _snapshot(out)

    def write_then_disk_full(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "fsync_file", write_then_disk_full)
    capsys.readouterr()
    assert main(["export", str(source), "-o", str(out), "--note", "again"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.safetensors: cannot write: No space left on device" in err[0]
    assert "unchanged" in err[0]
    assert _snapshot(out) == before  # the earlier export intact, no temp file left


# --- TensorBoard and curves ---------------------------------------------------------------------


def _validated_run(tmp_path: Path) -> Trainer:
    source = _images(tmp_path / "data", 4, 32)
    config = tiny_train_config(
        data=source, val=source, out=str(tmp_path / "run"), epochs=1, log_every=1, grid_images=2
    )
    return Trainer(config)


def test_tensorboard_scalars_and_grid_beside_the_log(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _validated_run(tmp_path).fit()
    run = tmp_path / "run"
    assert list(run.glob("events.out.tfevents.*"))  # beside metrics.jsonl
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    scalars, images = set(events.Tags()["scalars"]), events.Tags()["images"]
    assert {"train/loss_l1", "train/loss_d", "speed/img_per_s", "lr/lr_g"} <= scalars
    assert {"val/val_psnr", "val/val_l1", "val/val_spread"} <= scalars
    assert images == ["val/grid"]
    (val,) = [r for r in _rows(run) if r["kind"] == "val"]
    (psnr,) = events.Scalars("val/val_psnr")
    assert psnr.step == val["step"] and psnr.value == pytest.approx(val["val_psnr"], rel=1e-6)
    train_steps = [e.step for e in events.Scalars("train/loss_l1")]
    assert train_steps == [r["step"] for r in _rows(run) if r["kind"] == "train"]


def test_without_tensorboard_only_the_log_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorboard_log, "available", lambda: False)
    _validated_run(tmp_path).fit()
    run = tmp_path / "run"
    assert not list(run.glob("events.out.tfevents.*"))
    assert {r["kind"] for r in _rows(run)} == {"train", "val"}


def test_curves_mark_each_point_of_a_short_run(tmp_path, monkeypatch):
    rows = [{"kind": "train", "step": s, "epoch": 1, "loss_l1": 1 / s} for s in (1, 2)]
    rows.append({"kind": "val", "step": 2, "epoch": 1, "val_psnr": 20.0})
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    figures = []
    monkeypatch.setattr(visualize, "save_figure", lambda fig, out: figures.append(fig) or out)
    visualize.plot_curves(log, tmp_path / "curves.png")
    lines = [line for ax in figures[0].axes for line in ax.get_lines()]
    assert len(lines) == 2 and all(line.get_marker() == "o" for line in lines)
    assert [len(line.get_xdata()) for line in lines] == [2, 1]  # the lone val point is drawn


def test_checkpoint_files_are_readable_by_all_like_every_other_file(tmp_path):
    last = _colorizer(tmp_path).save_checkpoint("last")
    modes = {p.name: p.stat().st_mode & 0o777 for p in last.iterdir()}
    assert set(modes.values()) == {0o644}, modes  # model.safetensors included
    assert last.stat().st_mode & 0o777 == 0o755


class _WorkerSignals(torch.utils.data.Dataset):
    """Items report how the loader worker that made them handles SIGINT and SIGTERM."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ignored = [signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)]
        return {"ignored": torch.tensor(ignored)}


def test_loader_workers_leave_stop_signals_to_the_trainer(tmp_path):
    """SLURM and a terminal signal every process of the job. Workers that died of it would
    fail the batch the trainer waits for; they ignore it, and the trainer checkpoints."""
    config = tiny_train_config(data=str(tmp_path), num_workers=2)
    sampler = EpochSampler(4, seed=0, epoch=0, batch_size=2)
    loader = make_train_loader(_WorkerSignals(), sampler, config, torch.device("cpu"))
    batches = [batch["ignored"] for batch in loader]
    assert len(batches) == 2 and all(bool(b.all()) for b in batches)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the main process keeps its own
