"""Average the generator weights of several checkpoints (stochastic weight averaging, post hoc).

Float tensors (weights and BatchNorm running statistics) are averaged; integer tensors such as
``num_batches_tracked`` are taken from the last checkpoint, as is ``config.json``.

    python scripts/average_checkpoints.py CKPT... -o OUT_FOLDER
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file, save_file


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args()
    states = [load_file(c / "model.safetensors") for c in args.checkpoints]
    avg = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            avg[key] = sum(s[key].double() for s in states).div(len(states)).to(last.dtype)
        else:
            avg[key] = last
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(avg, str(args.out / "model.safetensors"))
    config = json.loads((args.checkpoints[-1] / "config.json").read_text())
    config["averaged"] = [str(c) for c in args.checkpoints]
    (args.out / "config.json").write_text(json.dumps(config, indent=2))
    print(f"averaged {len(states)} checkpoints into {args.out}")


if __name__ == "__main__":
    main()
