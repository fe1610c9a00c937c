"""Score colorizer checkpoints over annealing temperatures and working sizes on held-out photos.

For each (checkpoint, T, size) it prints the mean PSNR gain over the gray baseline and the mean
colour spread as a fraction of the truth's, the two figures of the quality target, and writes
them as JSON lines. Use a selection set that is neither trained on nor the reported val set.
With ``--ensemble`` the checkpoints are scored once, as one model: the mean of their ab
predictions (all at the same T).

    python scripts/sweep_checkpoints.py CKPT... --images DIR [--temps 0.6 0.8 1.0]
        [--sizes 160 224] [--gains 1.0 1.2] [--cast-gains 1.0 1.15] [--flips 0 1]
        [--ensemble] [--limit N]
        [--out sweep.jsonl] [--device cuda]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from pixcolor import metrics
from pixcolor.color import apply_gains, gray_uint8
from pixcolor.files import collect_inputs
from pixcolor.imageio import read_image
from pixcolor.pipeline import load_model


def scaled(predict, gain: float, cast: float | None, flip: bool, L, **kw):
    """``predict(L)`` with ab multiplied by ``gain`` (a chroma gain), or, given a ``cast`` gain,
    each image's mean ab times ``cast`` and the variation around it times ``gain`` (as
    ``EffUNet(cast_gain=...)``); with ``flip``, the mean of the predictions for L and its mirror
    image (test-time augmentation)."""
    ab = predict(L, **kw)
    if flip:
        ab = 0.5 * (ab + predict(L.flip(-1), **kw).flip(-1))
    return apply_gains(ab, gain, cast)


def averaged(predicts: list, L, **kw):
    """The mean of several colorizers' ab predictions (their ``predict_ab``) for the same ``L``."""
    return torch.stack([predict(L, **kw) for predict in predicts]).mean(0)


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--images", required=True)
    p.add_argument("--temps", nargs="+", type=float, default=[0.6, 0.8, 1.0, 1.2])
    p.add_argument("--sizes", nargs="+", type=int, default=[160, 224])
    p.add_argument("--gains", nargs="+", type=float, default=[1.0], help="chroma gains on ab")
    p.add_argument(
        "--cast-gains", nargs="+", type=float, default=[None], help="gains on the mean ab"
    )
    p.add_argument("--flips", nargs="+", type=int, default=[0], help="1: mirror-image TTA")
    p.add_argument("--ensemble", action="store_true", help="score the mean of all checkpoints")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args()


def main() -> None:
    """Score every (checkpoint group, size, T, gains, flip) and print one JSON row each."""
    args = parse_args()
    found, _ = collect_inputs([args.images])
    truths = [np.asarray(read_image(f.path)) for f in found[: args.limit]]
    grays = [gray_uint8(t) for t in truths]

    def t_of(images: list[np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None] for a in images]

    truth_t = t_of(truths)
    gray_psnr = np.mean(
        [float(metrics.psnr(g, t)[0]) for g, t in zip(t_of(grays), truth_t, strict=True)]
    )
    truth_spread = np.mean([float(metrics.colour_spread(t)[0]) for t in truth_t])
    print(f"{len(truths)} photos: gray {gray_psnr:.2f} dB, truth spread {truth_spread:.2f}")
    out = args.out.open("a") if args.out else None
    groups = [args.checkpoints] if args.ensemble else [[c] for c in args.checkpoints]
    for group in groups:
        members = [load_model(c, device=args.device) for c in group]
        model, ckpt = members[0], "+".join(group)
        temps = args.temps if all(hasattr(m.model, "temperature") for m in members) else [None]
        predict = functools.partial(averaged, [m.predict_ab for m in members])
        grid = itertools.product(args.sizes, temps, args.gains, args.cast_gains, args.flips)
        for size, temp, gain_ab, cast, flip in grid:
            if temp is not None:
                for m in members:
                    m.model.temperature = temp
            model.predict_ab = functools.partial(scaled, predict, gain_ab, cast, bool(flip))
            outs = [np.asarray(model.colorize(g, size=size)) for g in grays]
            o_t = t_of(outs)
            gain = np.mean(
                [float(metrics.psnr(o, t)[0]) for o, t in zip(o_t, truth_t, strict=True)]
            )
            spread = np.mean([float(metrics.colour_spread(o)[0]) for o in o_t])
            row = {
                "ckpt": ckpt,
                "size": size,
                "T": temp,
                "chroma_gain": gain_ab,
                "cast_gain": cast,
                "flip_tta": bool(flip),
                "gain_db": gain - gray_psnr,
                "spread_ratio": spread / truth_spread,
            }
            print(json.dumps(row), flush=True)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()


if __name__ == "__main__":
    main()
