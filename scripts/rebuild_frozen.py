"""Rebuild full checkpoints from the decoder-only snapshots that scripts/gpu_session.sh returns.

A run with ``--freeze-encoder --pretrained-encoder`` never changes its encoder (weights and
BatchNorm statistics: tested in test_train.py), so the GPU session sends back the decoder and
head alone. This script puts the ImageNet encoder back (needs the ``pretrained`` extra) and
writes one ``OUT/RUN_eNNNN/`` folder (``config.json`` + ``model.safetensors``) per snapshot,
loadable by ``pixcolor.load_model`` and ``pixcolor export``.

    python scripts/rebuild_frozen.py RUN.safetensors... --out runs/gpu_frozen
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from pixcolor.models import create_generator


def rebuild(path: Path, out: Path) -> list[Path]:
    """Write one checkpoint folder per snapshot in ``path``; returns the folders."""
    with safe_open(str(path), "pt") as f:
        configs = json.loads(f.metadata()["configs"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    written = []
    for tag, config in sorted(configs.items()):
        model = create_generator(config["arch"], **config["kwargs"], pretrained=True)
        state = model.state_dict()
        decoder = {k[len(tag) + 1 :]: v for k, v in tensors.items() if k.startswith(tag + ".")}
        missing = [k for k in state if k not in decoder and not k.startswith("encoder.")]
        if missing or any(k not in state for k in decoder):
            raise SystemExit(f"{path}: {tag} does not fit {config['kwargs']}: {missing[:3]}")
        for k, v in decoder.items():
            if k == "bin_centers" and v.dtype == torch.float16:  # packed in fp16 by mistake once
                if not torch.allclose(v.float(), state[k], atol=1e-3):
                    raise SystemExit(f"{path}: {tag} has bin centres other than the default grid")
                continue  # keep the exact default grid, as the training run had
            state[k] = v.to(state[k].dtype)
        dest = out / f"{path.stem}_{tag}"
        dest.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in state.items()}, str(dest / "model.safetensors"))
        (dest / "config.json").write_text(json.dumps(config, indent=1))
        written.append(dest)
    return written


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("snapshots", type=Path, nargs="+", help="RUN.safetensors from the GPU session")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    for path in args.snapshots:
        for dest in rebuild(path, args.out):
            print(dest)


if __name__ == "__main__":
    main()
