"""Tests for EffUNet ensembles (``members > 1``), pixcolor.models.ensemble and ``export A B``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.errors import PixcolorError
from pixcolor.models.effunet import EffUNet
from pixcolor.models.ensemble import assemble
from pixcolor.pipeline import load_model

SMALL = {"decoder_channels": (16, 16, 8, 8, 8)}


def _members(head: str, n: int = 3) -> list[EffUNet]:
    """``n`` single models on one encoder, with different decoders and non-trivial BN stats."""
    torch.manual_seed(0)
    models = [EffUNet(head=head, **SMALL) for _ in range(n)]
    with torch.no_grad():
        for m in models[0].modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    for m in models[1:]:
        m.encoder.load_state_dict(models[0].encoder.state_dict())
    return [m.eval() for m in models]


@pytest.mark.parametrize("head", ["bins", "tanh"])
def test_ensemble_output_is_the_mean_of_its_members(head: str) -> None:
    members = _members(head)
    ensemble = assemble(members, {"head": head, **SMALL, "chroma_gain": 1.5})
    assert len(ensemble.decoders()) == 3
    l_norm = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        each = torch.stack([m(l_norm) for m in members])
        got = ensemble(l_norm)
    assert got.shape == (2, 2, 64, 96)
    torch.testing.assert_close(got, 1.5 * each.mean(0), rtol=0, atol=1e-5)
    assert float((each[0] - each[1]).abs().mean()) > 1e-3  # the members do differ


def test_single_model_keys_are_unchanged_and_members_add_more() -> None:
    single, triple = EffUNet(head="bins", **SMALL), EffUNet(head="bins", **SMALL, members=3)
    assert not any(k.startswith("more.") for k in single.state_dict())
    extra = set(triple.state_dict()) - set(single.state_dict())
    assert {k.split(".")[1] for k in extra} == {"0", "1"}
    assert "more.1.head.weight" in extra


def test_ensemble_is_not_trained_as_one() -> None:
    with pytest.raises(RuntimeError, match="train each member alone"):
        EffUNet(head="bins", **SMALL, members=2).forward_logits(torch.zeros(1, 1, 32, 32))


def test_assemble_refuses_other_encoders_and_bad_inputs() -> None:
    a, b, c = _members("bins")
    with torch.no_grad():
        c.encoder.stem_conv.weight[0, 0, 0, 0] += 1e-3
    with pytest.raises(PixcolorError, match=r"^c: its encoder weights differ from a's"):
        assemble([a, b, c], {"head": "bins", **SMALL}, names=["a", "b", "c"])
    with pytest.raises(PixcolorError, match="two or more"):
        assemble([a], {"head": "bins", **SMALL})
    joined = assemble([a, b], {"head": "bins", **SMALL})
    with pytest.raises(PixcolorError, match="model 2: not a single"):
        assemble([a, joined], {"head": "bins", **SMALL})


def test_export_joins_checkpoints(tmp_path: Path, capsys) -> None:
    members = _members("bins", 2)
    kwargs = {"head": "bins", **SMALL}
    paths = [save_model(m, tmp_path / f"m{i}", "effunet", kwargs) for i, m in enumerate(members)]
    out = tmp_path / "ens"
    assert main(["export", *map(str, paths), "-o", str(out), "--size", "64",
                 "--chroma-gain", "1.2"]) == 0  # fmt: skip
    assert "members" in capsys.readouterr().out
    ens = load_model(out, device="cpu")
    assert ens.model.more and ens.size == 64
    L = torch.rand(1, 1, 64, 64) * 100
    singles = [load_model(p, device="cpu").predict_ab(L) for p in paths]
    torch.testing.assert_close(ens.predict_ab(L), 1.2 * sum(singles) / 2, rtol=0, atol=1e-4)

    with torch.no_grad():
        members[1].encoder.stem_bn.running_mean += 0.01
    other = save_model(members[1], tmp_path / "other", "effunet", kwargs)
    assert main(["export", str(paths[0]), str(other), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"{other}: its encoder weights differ" in err and "Traceback" not in err
    assert main(["export", str(paths[0]), str(paths[1]), "-o", "x.onnx", "--onnx"]) == 2
    assert "--onnx takes one model" in capsys.readouterr().err
