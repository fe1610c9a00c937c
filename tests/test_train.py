"""Trainer: tiny overfit, exact resume, checkpoints, config round trip, CLI end to end."""

from __future__ import annotations

import json
import logging
import os
import re
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from train_helpers import tiny_train_config

from pixcolor.checkpoint import save_model
from pixcolor.cli import build_parser, main
from pixcolor.config import TrainConfig, load_preset, presets_dir
from pixcolor.errors import CheckpointError, ConfigError
from pixcolor.models import create_generator
from pixcolor.train import Trainer
from pixcolor.train_setup import checkpoint_megabytes


def _photos(folder, n=6, size=(40, 48), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = size
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), rng.integers(0, 255))], -1)
        img = np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
    return folder


def _tiny(tmp_path, **kw) -> TrainConfig:
    data = str(_photos(tmp_path / "data"))
    run = dict(data=data, val=data, out=str(tmp_path / "run"))
    return tiny_train_config(**(run | dict(log_every=1, keep_last=2, grid_images=2) | kw))


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    g = {f"G.{k}": v.clone() for k, v in trainer.G_raw.state_dict().items()}
    d = {f"D.{k}": v.clone() for k, v in trainer.D_raw.state_dict().items()}
    return g | d


def test_tiny_overfit(tmp_path):
    data = _photos(tmp_path / "two", n=2, size=(32, 32))
    cfg = TrainConfig.from_dict(
        dict(
            data=str(data),
            out=str(tmp_path / "run"),
            size=32,
            generator="unet",
            generator_kwargs={"base_channels": 8, "num_downs": 5, "dropout": 0.0},
            gan_mode="none",
            batch_size=2,
            epochs=100,
            precision="fp32",
            num_workers=0,
            log_every=100,
            keep_last=0,
            lr_g=2e-3,
        )
    )
    trainer = Trainer(cfg)
    start = None
    for step in range(100):
        losses = trainer.train_step(
            *trainer._prepare(
                torch.stack([trainer.train_set[i]["rgb"] for i in range(2)]), 0, step
            ),
            gan=False,
        )
        start = start if start is not None else float(losses["loss_l1"])
    end = float(losses["loss_l1"])
    assert end < 0.35 * start, (start, end)


@pytest.mark.parametrize("term, weight", [("spread", 3.0), ("cast", 2.0)])
def test_extra_term_adds_to_the_generator_loss(tmp_path, term, weight):
    trainer = Trainer(_tiny(tmp_path, gan_mode="none", **{f"lambda_{term}": weight}))
    batch = torch.stack([trainer.train_set[i]["rgb"] for i in range(2)])
    losses = trainer.train_step(*trainer._prepare(batch, 0, 0), gan=False)
    expected = 100.0 * losses["loss_l1"] + weight * losses[f"loss_{term}"]
    assert float(losses[f"loss_{term}"]) > 0
    assert torch.allclose(losses["loss_g"], expected, rtol=1e-5)


def test_teacher_distribution_is_the_bins_target(tmp_path):
    small = {"head": "bins", "decoder_channels": [16, 16, 16, 8, 8]}
    torch.manual_seed(1)
    teacher = create_generator("effunet", **small, members=2).eval()
    folder = save_model(teacher, tmp_path / "teacher", "effunet", {**small, "members": 2})
    cfg = _tiny(tmp_path, generator="effunet", generator_kwargs=small, gan_mode="none",
                lambda_l1=0.0, teacher=str(folder))  # fmt: skip
    trainer = Trainer(cfg)
    batch = torch.stack([trainer.train_set[i]["rgb"] for i in range(2)])
    L, ab = trainer._prepare(batch, 0, 0)
    with torch.no_grad():
        target = teacher.member_probs(L)
        torch.testing.assert_close(target.sum(1), torch.ones_like(target[:, 0]))
        trainer.G_raw.train()
        logits = trainer.G_raw.forward_logits(L)  # the same batch statistics as the step's
    expected = F.cross_entropy(logits, target, weight=trainer.bins_weights)
    losses = trainer.train_step(L, ab, gan=False)
    torch.testing.assert_close(losses["loss_bins"], expected, rtol=1e-4, atol=1e-5)
    hard = F.cross_entropy(
        logits,
        trainer.G_raw.quantizer.encode(F.interpolate(ab, size=logits.shape[-2:], mode="area")),
        weight=trainer.bins_weights,
    )
    assert abs(float(hard) - float(expected)) > 1e-2  # the teacher, not the truth, was the target
    with pytest.raises(ConfigError, match="ab-bin models on both sides"):
        Trainer(_tiny(tmp_path / "u", gan_mode="none", teacher=str(folder)))


def test_freeze_encoder_trains_the_decoder_only(tmp_path):
    small = {"head": "bins", "decoder_channels": [16, 16, 16, 8, 8]}
    cfg = _tiny(
        tmp_path,
        generator="effunet",
        generator_kwargs=small,
        gan_mode="none",
        freeze_encoder=True,
        epochs=1,
    )
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.G_raw.state_dict().items()}
    trainer.fit()
    after = trainer.G_raw.state_dict()
    encoder = [k for k in before if k.startswith("encoder.")]
    decoder = [k for k in before if k.startswith(("ups.", "head.")) and "weight" in k]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)  # weights and BN statistics
    assert all(not torch.equal(before[k], after[k]) for k in decoder)
    assert not trainer.G_raw.encoder.training and trainer.G_raw.ups.training
    with pytest.raises(ConfigError, match="freeze_encoder needs a generator with an encoder"):
        Trainer(_tiny(tmp_path / "seed", freeze_encoder=True))


@pytest.mark.parametrize("stop_at", [4, 3])  # epoch boundary (3 steps/epoch) and mid-epoch
def test_resume_is_bitwise_exact(tmp_path, stop_at):
    cfg = _tiny(tmp_path / "a")
    full = Trainer(cfg)
    full.fit()
    cfg_b = cfg.replace(out=str(tmp_path / "b"))
    part = Trainer(cfg_b)
    part.fit(stop_at_step=stop_at)
    resumed = Trainer(cfg_b)
    resumed.resume()
    assert resumed.global_step == stop_at
    resumed.fit()
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("stop_at", [2, 3])  # mid-epoch, and on an epoch's last step
def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path, stop_at):
    """A real SIGINT during a step: the step finishes, checkpoints/last is written, fit()
    returns, the previous handler is back, and --resume ends bit for bit like a full run."""
    cfg = _tiny(tmp_path / "a")
    full = Trainer(cfg)
    full.fit()
    cfg_b = cfg.replace(out=str(tmp_path / "b"))
    part = Trainer(cfg_b)
    step = part.train_step

    def step_then_ctrl_c(*args, **kwargs):
        losses = step(*args, **kwargs)
        if part.global_step == stop_at - 1:  # the step counter moves on after train_step
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    part.train_step = step_then_ctrl_c
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    part.fit()
    assert part.global_step == stop_at
    assert signal.getsignal(signal.SIGINT) is before
    resumed = Trainer(cfg_b)
    resumed.resume()
    assert resumed.global_step == stop_at
    resumed.fit()
    a, b = _weights(full), _weights(resumed)
    for key in a:
        assert torch.equal(a[key], b[key]), key


GENERATOR_FILES = ["config.json", "manifest.json", "model.safetensors", "train_config.json"]


def test_run_folder_contents_and_generator_only_epochs(tmp_path):
    cfg = _tiny(tmp_path, epochs=3)
    Trainer(cfg).fit()
    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    names = sorted(p.name for p in checkpoints.iterdir())
    assert names == ["best", "epoch_0002", "epoch_0003", "last"]  # keep_last=2 pruned epoch 1
    full = [*GENERATOR_FILES, "discriminator.safetensors", "state.pt"]
    assert sorted(os.listdir(checkpoints / "last")) == sorted(full)
    for name in ("best", "epoch_0002", "epoch_0003"):  # the generator alone
        assert sorted(os.listdir(checkpoints / name)) == GENERATOR_FILES
    last, epoch3 = (
        load_file(checkpoints / n / "model.safetensors") for n in ("last", "epoch_0003")
    )
    assert all(torch.equal(last[k], epoch3[k]) for k in last)
    assert json.loads((checkpoints / "epoch_0002" / "config.json").read_text())["epoch"] == 2
    assert (run / "curves.png").stat().st_size > 0
    assert (run / "grids" / "epoch_0003.png").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "val"} <= {r["kind"] for r in rows}
    assert all(np.isfinite(r["val_psnr"]) for r in rows if r["kind"] == "val")
    # A corrupt "last": no other checkpoint holds a training state; the error says what to do.
    state = checkpoints / "last" / "model.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"holds the generator only.*--init-from"):
        Trainer(cfg).resume()


def test_old_run_folders_with_full_epoch_checkpoints_resume_and_export(tmp_path):
    cfg = _tiny(tmp_path, epochs=2)
    old = Trainer(cfg)
    old.full_state_everywhere = True  # the layout before generator-only epoch checkpoints
    old.fit()
    checkpoints = tmp_path / "run" / "checkpoints"
    assert "state.pt" in os.listdir(checkpoints / "epoch_0002")
    state = checkpoints / "last" / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    t = Trainer(cfg)
    assert t.resume().name == "epoch_0002" and t.epoch == 2
    assert main(["export", str(checkpoints / "epoch_0002"), "-o", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "model.safetensors").is_file()


def test_init_from_starts_a_new_run_from_generator_weights(tmp_path):
    cfg = _tiny(tmp_path, epochs=1)
    first = Trainer(cfg)
    first.fit()
    best = tmp_path / "run" / "checkpoints" / "best"
    stage2 = cfg.replace(out=str(tmp_path / "stage2"), init_from=str(best), epochs=2, seed=5)
    second = Trainer(stage2)
    weights = load_file(best / "model.safetensors")
    assert all(torch.equal(second.G_raw.state_dict()[k], v) for k, v in weights.items())
    assert second.global_step == 0 and not second.opt_g.state  # new optimizer, new schedule
    second.fit()
    assert second.global_step == 6
    other = stage2.replace(generator_kwargs={"base_channels": 4, "num_downs": 5})
    with pytest.raises(ConfigError, match=r"--init-from .* holds unet"):
        Trainer(other)
    with pytest.raises(ConfigError, match="no such checkpoint"):
        Trainer(stage2.replace(init_from=str(tmp_path / "nope")))


def _cli_config(*argv: str) -> TrainConfig:
    from pixcolor.commands.train import config_from_args

    return config_from_args(build_parser(["train"]).parse_args(["train", *argv]))


def test_presets_config_files_and_flags(tmp_path):
    default = _cli_config("--data", "x")
    assert default == load_preset("default").replace(data="x")
    assert (default.generator, default.generator_kwargs) == ("effunet", {"head": "bins"})
    assert default.freeze_encoder and default.gan_mode == "none" and default.size == 128
    assert (default.load_size, default.augment, default.crop_min_scale) == (160, "crop", 0.5)
    seed = _cli_config("--preset", "seed", "--data", "x", "--size", "64")
    assert seed == TrainConfig(data="x", size=64)  # the write-up's recipe, one flag over it
    recipe = tmp_path / "r.toml"
    recipe.write_text("size = 96\nepochs = 8\n")
    over = _cli_config("--preset", "default", "--config", str(recipe), "--data", "x")
    assert (over.size, over.epochs, over.generator) == (96, 8, "effunet")
    alone = _cli_config("--config", str(recipe), "--data", "x")  # a file without a preset
    assert alone == TrainConfig(data="x", size=96, epochs=8)
    assert {p.stem for p in presets_dir().glob("*.toml")} == {"default", "seed"}


def test_resume_without_checkpoint_is_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer(_tiny(tmp_path)).resume()


def test_config_round_trip(tmp_path):
    cfg = _tiny(tmp_path)
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == cfg
    (tmp_path / "c.toml").write_text(
        'epochs = 7\naugment = "crop"\n[generator_kwargs]\nbase_channels = 4\n'
    )
    loaded = TrainConfig.load(tmp_path / "c.toml")
    assert loaded.epochs == 7 and loaded.augment == "crop"
    assert loaded.generator_kwargs == {"base_channels": 4}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"epochz": 1}, "unknown key"),
        ({"epochs": "3"}, "must be int"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"precision": "fp8"}, "must be one of"),
        ({"lr_g": 2.0}, "learning rates"),
        ({"lambda_spread": -1.0}, "lambda_spread must be >= 0"),
        ({"lambda_cast": -1.0}, "lambda_cast must be >= 0"),
    ],
)
def test_config_validation(bad, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(bad)


def test_cli_train_end_to_end_and_resume(tmp_path, caplog):
    data = _photos(tmp_path / "data", n=5)
    args = [
        "train",
        "--preset",
        "seed",
        "--data",
        str(data),
        "--val",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--size",
        "32",
        "--generator",
        "unet",
        "--generator-kwargs",
        '{"base_channels": 8, "num_downs": 5}',
        "--discriminator-kwargs",
        '{"base_channels": 8}',
        "--batch-size",
        "2",
        "--epochs",
        "1",
        "--num-workers",
        "0",
    ]
    with caplog.at_level(logging.INFO, logger="pixcolor"):
        assert main(args) == 0
    assert re.search(r"each checkpoint writes: last \d+ MB .*best and epoch_N \d+ MB", caplog.text)
    assert main([*args[:-4], "--epochs", "2", "--resume"]) == 0
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert max(r["epoch"] for r in rows) == 2
    saved = TrainConfig.load(tmp_path / "run" / "config.json")
    assert saved.epochs == 2 and saved.generator_kwargs == {"base_channels": 8, "num_downs": 5}


def test_cli_reports_bad_config(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--batch-size", "0"]) == 2
    assert "batch_size must be >= 1" in capsys.readouterr().err


def test_train_help_is_plain_text_with_defaults(capsys, monkeypatch):
    """Help texts come from the config's field metadata: no source files needed, no reST."""
    import inspect

    def no_source(*args, **kwargs):
        raise OSError("could not get source code")

    monkeypatch.setattr(inspect, "getsource", no_source)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":class:" not in out and ":func:" not in out
    assert re.search(r"--augment \{flip,crop\}\s+flip: horizontal flips", out)
    assert re.search(r"--batch-size INT\s+images per step \(per process\) \(default: \d+\)", out)
    assert re.search(r"--channels-last, --no-channels-last\s+NHWC.*?\(default: on\)", out, re.S)


def test_printed_checkpoint_sizes_match_what_is_written(tmp_path):
    trainer = Trainer(_tiny(tmp_path, epochs=1))
    full, generator = checkpoint_megabytes(trainer.G_raw, trainer.D_raw, gan=True)  # as printed
    trainer.fit()

    def megabytes(folder):
        return sum(p.stat().st_size for p in folder.iterdir()) / 1e6

    checkpoints = tmp_path / "run" / "checkpoints"
    assert megabytes(checkpoints / "last") == pytest.approx(full, rel=0.02)
    assert megabytes(checkpoints / "best") == pytest.approx(generator, rel=0.02)
    assert generator < full / 2


def test_every_train_and_train_sr_flag_has_help():
    from dataclasses import fields

    from pixcolor.sr_config import SRTrainConfig

    for cls in (TrainConfig, SRTrainConfig):
        assert [f.name for f in fields(cls) if not f.metadata.get("help")] == [], cls
