"""Tests for SRCNN super-resolution: YCbCr, MATLAB imresize, the paper protocol, training,
resume, the ``upscale`` API and the ``upscale`` / ``evaluate-sr`` commands.

Everything runs on generated images and tiny networks; only the Set5 bicubic check needs
$PIXCOLOR_DATA (default ../shared/data; skipped without it).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixcolor import color, matlab, sr, sr_eval
from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.errors import ConfigError, PixcolorError
from pixcolor.interrupt import GracefulInterrupt
from pixcolor.models import hub
from pixcolor.models.srcnn import SRCNN
from pixcolor.sr_train import PatchSet, SRTrainConfig, SRTrainer

TINY = {"variant": "955", "channels": 1, "f1": 8, "f2": 4}


def make_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour gradients plus a few hard-edged rectangles, ``(h, w, 3)`` uint8."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([yy, xx, 1 - 0.5 * (xx + yy)], axis=-1) * 200 + 20
    for _ in range(4):
        y0, x0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
        dy, dx = rng.integers(2, max(3, h // 2)), rng.integers(2, max(3, w // 2))
        img[y0 : y0 + dy, x0 : x0 + dx] = rng.integers(0, 256, 3)
    return img.clip(0, 255).astype(np.uint8)


def write_images(folder: Path, rng: np.random.Generator, n: int, size: int = 40) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        Image.fromarray(make_image(rng, size, size + 4 * i)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    """An untrained small SRCNN exported like a release (scale 3)."""
    return save_model(
        SRCNN(channels=1, f1=8, f2=4),
        tmp_path / "w",
        "srcnn",
        TINY,
        dtype=torch.float32,
        extra={"scale": 3},
    )


# --- colour and resize -------------------------------------------------------------------------


def test_srcnn_size_and_shape() -> None:
    net = SRCNN()
    assert sum(p.numel() for p in net.parameters()) == 57_281
    assert net(torch.zeros(2, 1, 21, 17)).shape == (2, 1, 21, 17)
    assert sr.receptive_radius(net) == 8


def test_ycbcr_known_values() -> None:
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128]]], np.uint8)
    ycc = color.rgb_to_ycbcr(rgb)[0]
    np.testing.assert_allclose(ycc[:, 0], [235.0, 16.0, 81.481, 16 + 219 * 128 / 255], atol=1e-9)
    np.testing.assert_allclose(ycc[[0, 1, 3], 1:], 128.0, atol=1e-9)  # greys: no chroma
    np.testing.assert_allclose(ycc[2, 1:], [90.203, 240.0], atol=1e-9)  # red: Cb, Cr (MATLAB)
    np.testing.assert_allclose(color.rgb_to_y(rgb), color.rgb_to_ycbcr(rgb)[..., 0])
    np.testing.assert_allclose(color.rgb_to_ycbcr(rgb / 255.0), ycc[None])


def test_ycbcr_round_trip(rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    back = color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb))
    np.testing.assert_allclose(back * 255.0, rgb, atol=1e-9)


def test_imresize_hand_computed() -> None:
    # Up x2 of [0, 1]: weights 1.09375/-0.09375 and 0.796875/0.203125 with mirrored borders.
    row = matlab.imresize(np.array([[0.0, 1.0]]), 2)
    np.testing.assert_allclose(row, [[-0.09375, 0.203125, 0.796875, 1.09375]] * 2)
    np.testing.assert_allclose(matlab.imresize(np.array([[0.0], [1.0]]), 2), row.T)
    # Down x0.5 of a ramp 0..7: kernel 0.5 * cubic(0.5 x), 8 taps, mirrored at the border.
    np.testing.assert_allclose(
        matlab.imresize(np.arange(8.0)[None], 0.5),
        [[0.44921875, 2.48828125, 4.51171875, 6.55078125]],
    )


def test_imresize_ramp_interior_and_constant() -> None:
    ramp = matlab.imresize(np.tile(np.arange(32.0), (3, 1)), 0.5)[1]
    np.testing.assert_allclose(ramp[2:14], 2 * np.arange(2, 14) + 0.5)  # linear kept inside
    const = np.full((10, 12, 2), 7.25)
    for scale in (2, 3, 4, 1 / 2, 1 / 3):
        out = matlab.imresize(const, scale)
        assert out.shape[:2] == (int(np.ceil(10 * scale)), int(np.ceil(12 * scale)))
        np.testing.assert_allclose(out, 7.25, atol=1e-12)
    assert matlab.imresize(const, output_shape=(5, 36)).shape == (5, 36, 2)
    with pytest.raises(ValueError, match="exactly one"):
        matlab.imresize(const, 2, output_shape=(4, 4))


def test_imresize_matches_pillow_away_from_borders(rng: np.random.Generator) -> None:
    # Pillow's BICUBIC is the same kernel (a=-0.5, widened when shrinking); only its border
    # rule differs (it renormalises instead of mirroring), so interiors must agree.
    img = rng.random((48, 60)) * 255

    def pil(shape: tuple[int, int]) -> np.ndarray:
        f = Image.fromarray(img.astype(np.float32), mode="F")
        return np.asarray(f.resize(shape[::-1], Image.BICUBIC), dtype=np.float64)

    down, up = matlab.imresize(img, 1 / 3), matlab.imresize(img, 3)
    np.testing.assert_allclose(down[3:-3, 3:-3], pil(down.shape)[3:-3, 3:-3], atol=1e-3)
    np.testing.assert_allclose(up[6:-6, 6:-6], pil(up.shape)[6:-6, 6:-6], atol=1e-3)


def test_quantize_and_psnr() -> None:
    np.testing.assert_array_equal(matlab.quantize(np.array([2.5, -1, 300, 3.49])), [3, 0, 255, 3])
    a = np.full((10, 10), 100.0)
    assert sr_eval.psnr_y(a, a, 2) == float("inf")
    assert sr_eval.psnr_y(a, a + 1, 2) == pytest.approx(20 * np.log10(255), abs=1e-9)


def test_run_srcnn_tiles_match_whole(rng: np.random.Generator) -> None:
    net = SRCNN(f1=8, f2=4)
    y = rng.random((40, 50))
    whole = net(torch.from_numpy(y).float()[None, None])[0, 0].detach().numpy()
    np.testing.assert_allclose(sr.run_srcnn(net, y, tile=16), whole, atol=1e-5)


def test_set5_bicubic_matches_paper(shared_data: Path) -> None:
    paths = sorted((shared_data / "sr" / "Set5").glob("*.png"))
    if len(paths) != 5:
        pytest.skip("Set5 not in $PIXCOLOR_DATA/sr")
    for scale, paper in ((2, 33.66), (3, 30.39), (4, 28.42)):
        assert sr_eval.evaluate_sr(paths, scale)["bicubic"] == pytest.approx(paper, abs=0.02)


# --- training --------------------------------------------------------------------------------


def tiny_config(tmp_path: Path, rng: np.random.Generator, **kw) -> SRTrainConfig:
    data, val = tmp_path / "train", tmp_path / "val"
    if not data.exists():
        write_images(data, rng, 3, 40)
        write_images(val, rng, 2, 30)
    base = {
        "data": str(data),
        "val": str(val),
        "out": str(tmp_path / "run"),
        "scale": 2,
        "patch": 16,
        "stride": 8,
        "batch_size": 8,
        "epochs": 2,
        "lr": 1e-3,
        "device": "cpu",
        "log_every": 2,
        "keep_last": 1,
        "f1": 16,
        "f2": 8,
    }
    return SRTrainConfig().replace(**(base | kw))


def test_patch_set_gathers_sub_images(rng: np.random.Generator) -> None:
    inp, tgt = rng.random((20, 23)) * 255, rng.random((20, 23)) * 255
    ps = PatchSet([(inp, tgt)], patch=8, stride=6, device=torch.device("cpu"))
    assert len(ps) == 3 * 3
    x, y = ps.batch(torch.tensor([4, 4, 4]), torch.tensor([0, 1, 3]))  # (row 6, col 6)
    ref = torch.from_numpy(inp[6:14, 6:14] / 255).float()
    torch.testing.assert_close(x[0, 0], ref)
    torch.testing.assert_close(x[1, 0], ref.flip(1))
    torch.testing.assert_close(x[2, 0], ref.flip(0).flip(1))
    torch.testing.assert_close(y[0, 0], torch.from_numpy(tgt[6:14, 6:14] / 255).float())


def test_training_lowers_the_loss(tmp_path: Path, rng: np.random.Generator) -> None:
    trainer = SRTrainer(tiny_config(tmp_path, rng, epochs=30, schedule="constant"))
    index, transform = torch.arange(8), torch.zeros(8, dtype=torch.long)

    def loss() -> float:
        with torch.no_grad():
            x, y = trainer.patches.batch(index, transform)
            return float(torch.nn.functional.mse_loss(trainer.model(x), y))

    before = loss()
    trainer.fit(stop_at_step=30)
    assert loss() < 0.2 * before


def test_loss_margin_leaves_the_border_out(tmp_path: Path, rng: np.random.Generator) -> None:
    """With a margin of 4, targets that differ only in their 4-pixel border train alike."""
    a = SRTrainer(tiny_config(tmp_path, rng, loss_margin=4, out=str(tmp_path / "a")))
    b = SRTrainer(tiny_config(tmp_path, rng, loss_margin=4, out=str(tmp_path / "b")))
    index, transform = torch.arange(2), torch.zeros(2, dtype=torch.long)
    x, y = a.patches.batch(index, transform)  # (2, 1, 16, 16)
    y_zero, y_one = y.clone(), y.clone()
    y_zero[..., :4, :], y_one[..., :4, :] = 0.0, 1.0
    a.patches.batch = lambda index, transform: (x, y_zero)
    b.patches.batch = lambda index, transform: (x, y_one)
    assert float(a.train_step(index, transform)) == float(b.train_step(index, transform))
    for (key, va), vb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=key)
    whole = SRTrainer(tiny_config(tmp_path, rng, out=str(tmp_path / "c")))  # margin 0
    whole.patches.batch = lambda index, transform: (x, y_one)
    assert float(whole.train_step(index, transform)) != float(a.train_step(index, transform))
    with pytest.raises(ConfigError, match="loss_margin"):
        tiny_config(tmp_path, rng, loss_margin=8)


def test_resume_continues_exactly(tmp_path: Path, rng: np.random.Generator) -> None:
    full = SRTrainer(tiny_config(tmp_path, rng, out=str(tmp_path / "full")))
    full.fit()
    steps = full.global_step
    part = SRTrainer(tiny_config(tmp_path, rng, out=str(tmp_path / "part")))
    part.fit(stop_at_step=steps // 2 + 1)  # stops mid-epoch 2
    resumed = SRTrainer(tiny_config(tmp_path, rng, out=str(tmp_path / "part")))
    resumed.resume()
    assert resumed.global_step == steps // 2 + 1
    resumed.fit()
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").open()]
    rows_resumed = [json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [r["step"] for r in rows_resumed]
    assert [r for r in rows if r["kind"] == "val"] == [
        r for r in rows_resumed if r["kind"] == "val"
    ]
    run = tmp_path / "full"
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"last", "best", "epoch_0002"}
    assert (run / "curves.png").is_file()
    config = json.loads((run / "export" / "config.json").read_text())
    assert config["arch"] == "srcnn" and config["scale"] == 2
    assert config["set5_psnr"] == pytest.approx(rows[-1]["val_psnr"])
    assert config["set5_bicubic"] == pytest.approx(rows[-1]["val_psnr_bicubic"])
    # A corrupt "last" is refused; the newest epoch checkpoint is used instead.
    (run / "checkpoints" / "last" / "state.pt").write_bytes(b"garbage")
    again = SRTrainer(tiny_config(tmp_path, rng, out=str(run)))
    assert again.resume().name == "epoch_0002"


def test_init_fine_tunes_from_given_weights(tmp_path: Path, rng: np.random.Generator) -> None:
    kwargs = {"variant": "955", "channels": 1, "f1": 16, "f2": 8}  # as tiny_config
    start = save_model(SRCNN(**kwargs), tmp_path / "start", "srcnn", kwargs, dtype=torch.float32)
    trainer = SRTrainer(tiny_config(tmp_path, rng, init=str(start)))
    loaded = SRCNN(**kwargs)
    hub.load_weights(loaded, start / "model.safetensors")
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(trainer.model.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="--init needs SRCNN weights"):
        SRTrainer(tiny_config(tmp_path, rng, init=str(start), f1=8))


def test_ctrl_c_checkpoints_and_resumes_exactly(tmp_path: Path, rng: np.random.Generator) -> None:
    full = SRTrainer(tiny_config(tmp_path, rng, out=str(tmp_path / "full")))
    full.fit()
    part = SRTrainer(tiny_config(tmp_path, rng, out=str(tmp_path / "part")))
    step = part.train_step

    def step_then_ctrl_c(index: torch.Tensor, transform: torch.Tensor) -> torch.Tensor:
        loss = step(index, transform)
        if part.global_step == 2:  # during the third step
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    part.train_step = step_then_ctrl_c
    part.fit()
    assert part.global_step == 3 and not (tmp_path / "part" / "export").exists()
    resumed = SRTrainer(tiny_config(tmp_path, rng, out=str(tmp_path / "part")))
    resumed.resume()
    assert resumed.global_step == 3
    resumed.fit()
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)


def test_second_ctrl_c_aborts_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with GracefulInterrupt() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    with GracefulInterrupt(enabled=False) as off:  # installs nothing (e.g. under torchrun)
        assert signal.getsignal(signal.SIGINT) is before and not off.requested


# --- API and CLI -----------------------------------------------------------------------------


def test_upscale_api_sizes_and_inputs(tiny_weights: Path, rng: np.random.Generator) -> None:
    rgb = make_image(rng, 13, 17)
    up = sr.load_upscaler(tiny_weights, device="cpu")
    assert up.scale == 3
    for image in (rgb, Image.fromarray(rgb), torch.from_numpy(rgb).permute(2, 0, 1)):
        assert up.upscale(image).size == (51, 39)
    out = sr.upscale(rgb[..., 0], 2, model=tiny_weights, device="cpu")  # grey stays grey
    assert out.size == (34, 26)
    pixels = np.asarray(out).astype(int)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() <= 1
    assert sr.upscale(rgb, 4, model=up.model).size == (68, 52)


def test_upscale_without_shipped_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(hub, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(PixcolorError, match="srcnn-x4: no such model folder, file or shipped"):
        sr.upscale(np.zeros((4, 4, 3), np.uint8), 4)


def test_upscale_cli(
    tiny_weights: Path, tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    (src / "b" / "c").mkdir(parents=True)
    Image.fromarray(make_image(rng, 10, 12)).save(src / "a" / "x.png")
    Image.fromarray(make_image(rng, 9, 7)).save(src / "b" / "c" / "y.jpg")
    (src / "bad.png").write_bytes(b"not an image")
    argv = [
        "upscale",
        str(src),
        "-o",
        str(out),
        "--scale",
        "3",
        "--model",
        str(tiny_weights),
        "--device",
        "cpu",
    ]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert f"{src / 'bad.png'}: not an image file" in captured.err.splitlines()
    assert "upscaled 2, skipped 0, failed 1" in captured.out
    assert Image.open(out / "a" / "x.png").size == (36, 30)
    assert Image.open(out / "b" / "c" / "y.png").size == (21, 27)
    assert not (out / "bad.png").exists()
    assert main(argv) == 1  # again: both outputs exist and are kept
    text = capsys.readouterr().out
    assert "upscaled 0, skipped 2 (already there; use --overwrite to replace them)" in text
    one = ["upscale", str(src / "a"), "--model", str(tiny_weights), "--device", "cpu"]
    assert main([*one, "-o", str(out / "a"), "--overwrite"]) == 0  # x2 replaces x3
    assert Image.open(out / "a" / "x.png").size == (24, 20)
    assert main([*one, "-o", str(out / "a"), "--format", "jpg"]) == 0
    assert Image.open(out / "a" / "x.jpg").format == "JPEG"
    before = (src / "a" / "x.png").read_bytes()
    assert main([*one, "-o", str(src / "a"), "--overwrite"]) == 2  # never onto an input
    assert "the output folder is the input folder" in capsys.readouterr().err
    assert (src / "a" / "x.png").read_bytes() == before


def test_evaluate_sr_cli(
    tiny_weights: Path, tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_images(tmp_path / "hr", rng, 2, 30)
    assert (
        main(
            [
                "evaluate-sr",
                str(tmp_path / "hr"),
                "--scale",
                "3",
                "--model",
                str(tiny_weights),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["image", "bicubic", "SRCNN"]
    assert [line.split()[0] for line in lines[2:]] == ["img0.png", "img1.png", "mean"]
    assert all(len(line.split()) == 3 for line in lines[2:])


def test_self_ensemble_averages_the_eight_symmetries(rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    model = SRCNN(channels=1, f1=8, f2=4).eval()
    y = rng.random((13, 17))  # not square: rotations change the shape
    expected = np.zeros_like(y)
    for k in range(4):
        for flip in (False, True):
            t = np.rot90(y, k)
            t = t[:, ::-1] if flip else t
            out = sr.run_srcnn(model, np.ascontiguousarray(t))
            expected += np.rot90(out[:, ::-1] if flip else out, -k)
    got = sr.run_srcnn_x8(model, y)
    assert got.shape == y.shape
    np.testing.assert_allclose(got, expected / 8, rtol=0, atol=1e-12)
    # a random network is not equivariant, so the ensemble differs from one pass
    assert np.abs(got - sr.run_srcnn(model, y)).max() > 1e-4


def test_self_ensemble_cli(
    tiny_weights: Path, tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_images(tmp_path / "hr", rng, 1, 30)
    args = ["--scale", "3", "--model", str(tiny_weights), "--device", "cpu"]
    assert main(["evaluate-sr", str(tmp_path / "hr"), *args, "--self-ensemble"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["image", "bicubic", "SRCNN", "x8"]
    assert lines[-1].split()[0] == "mean" and len(lines[-1].split()) == 3
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "hr"), "-o", str(out), *args, "--self-ensemble"]) == 0
    assert Image.open(out / "img0.png").size == (90, 90)
