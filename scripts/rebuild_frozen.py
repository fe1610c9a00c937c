"""Pack frozen-encoder checkpoints as decoders alone, and rebuild full checkpoints from them.

A run with ``--freeze-encoder --pretrained-encoder`` never changes its encoder (weights and
BatchNorm statistics: tested in test_train.py), so a GPU session (scripts/gpu_session.sh,
scripts/gpu_twostage.py) sends back the decoder and head alone: :func:`pack` writes them for
several checkpoints of a run into one fp16 file ("e0014.ups.0..."), a third of the size.
Rebuilding puts the ImageNet encoder back (needs the ``pretrained`` extra) and writes one
``OUT/RUN_eNNNN/`` folder (``config.json`` + ``model.safetensors``) per checkpoint, loadable by
``pixcolor.load_model`` and ``pixcolor export``.

    python scripts/rebuild_frozen.py --pack RUN.safetensors CHECKPOINT_FOLDER...
    python scripts/rebuild_frozen.py RUN.safetensors... --out runs/gpu_frozen
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from pixcolor.models import create_generator


def pack(checkpoints: list[Path], out_file: Path) -> list[str]:
    """Save the non-encoder tensors of each checkpoint folder (``epoch_NNNN``) to ``out_file``.

    Floating tensors are stored as fp16, except the bin centres (exact, as the model's grid).
    Returns the tags written (``eNNNN``); writes nothing when there are no checkpoints.
    """
    tensors, configs = {}, {}
    for ck in checkpoints:
        tag = "e" + ck.name.split("_")[1]
        for k, v in load_file(ck / "model.safetensors").items():
            if not k.startswith("encoder."):
                exact = not v.is_floating_point() or k == "bin_centers"
                tensors[f"{tag}.{k}"] = v if exact else v.half()
        configs[tag] = json.loads((ck / "config.json").read_text())
    if tensors:
        save_file(tensors, str(out_file), metadata={"configs": json.dumps(configs)})
    return sorted(configs)


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
    p.add_argument("paths", type=Path, nargs="+", help="RUN.safetensors from a GPU session")
    p.add_argument("--out", type=Path, help="folder for the rebuilt checkpoints")
    p.add_argument("--pack", type=Path, help="instead, pack the checkpoint folders into this file")
    args = p.parse_args()
    if args.pack:
        print(args.pack.name, pack(args.paths, args.pack), flush=True)
        return
    if args.out is None:
        p.error("--out is required unless --pack is given")
    for path in args.paths:
        for dest in rebuild(path, args.out):
            print(dest)


if __name__ == "__main__":
    main()
