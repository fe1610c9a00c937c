"""Train the default's two-stage frozen-encoder recipe with several seeds at once (GPU session).

Each seed runs scripts/train_default.sh's recipe: stage 1 on 128 px crops of a 160 px cache,
stopped at epoch 10 of its 14-epoch schedule, then stage 2 resumed from epoch 10 on 224 px crops
of a 240 px cache up to epoch 16. At the deadline every job still running is stopped. The decoder
and head of epochs 12, 14 and 16 come back in OUT/SEED.safetensors (see rebuild_frozen.py).

    OUT=/some/dir python scripts/gpu_twostage.py --seeds 11 12 13 14 --deadline 200
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from rebuild_frozen import pack  # scripts/ is on sys.path when this runs as a script

STAGE1_STOP, STAGE2_EPOCHS = 10, 16


def pix(*args: str) -> list[str]:
    return [sys.executable, "-m", "pixcolor", *args]


def stage1(seed: int, crop: float, r: Path, dev: str, nw: str, extra: list[str]) -> list[str]:
    return pix(
        "train", "--data", str(r / "cache160"), "--load-size", "160", "--size", "128",
        "--val", ".gpu/sel32", "--val-limit", "32", "--val-every", "2",
        "--out", str(r / f"s{seed}_s1"), "--generator", "effunet",
        "--generator-kwargs", '{"head": "bins"}', "--pretrained-encoder", "--freeze-encoder",
        "--gan-mode", "none", "--lambda-l1", "10", "--bins-rebalance", "1.0",
        "--augment", "crop", "--crop-min-scale", str(crop), "--epochs", "14",
        "--decay-epochs", "7", "--batch-size", "16", "--keep-last", "30", "--log-every", "20",
        "--num-workers", nw, "--seed", str(seed), "--device", dev, *extra,
    )  # fmt: skip


def stage2(seed: int, r: Path, nw: str) -> list[str]:
    return pix(
        "train", "--resume", "--out", str(r / f"s{seed}_ft"), "--data", str(r / "cache240"),
        "--load-size", "240", "--size", "224", "--no-pretrained-encoder",
        "--epochs", str(STAGE2_EPOCHS), "--decay-epochs", "6", "--num-workers", nw,
    )  # fmt: skip


def launch(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "a") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--crops", type=float, nargs="+", default=[0.5, 0.25], help="cycled")
    p.add_argument("--deadline", type=float, required=True, help="seconds from now")
    p.add_argument("--runs", type=Path, default=Path("/tmp/pixruns2"))
    p.add_argument("--smoke", action="store_true", help="tiny CPU trial")
    args = p.parse_args()
    t0, r, out = time.time(), args.runs, Path(os.environ["OUT"])
    r.mkdir(parents=True, exist_ok=True)
    dev, nw = ("cpu", "0") if args.smoke else ("cuda", "3")
    extra = ["--limit", "16", "--val-limit", "2"] if args.smoke else []
    for size in (160, 240):
        subprocess.run(pix("data", "prepare", ".gpu/train240", "--out", str(r / f"cache{size}"),
                           "--size", str(size)), check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    crops = [args.crops[i % len(args.crops)] for i in range(len(args.seeds))]
    procs = {s: launch(stage1(s, c, r, dev, nw, extra), r / f"s{s}.log")
             for s, c in zip(args.seeds, crops, strict=True)}  # fmt: skip
    stage = dict.fromkeys(args.seeds, 1)
    while time.time() - t0 < args.deadline and any(p.poll() is None for p in procs.values()):
        for s in args.seeds:
            ck = r / f"s{s}_s1" / "checkpoints" / f"epoch_{STAGE1_STOP:04d}"
            if stage[s] == 1 and ck.exists():
                procs[s].send_signal(signal.SIGINT)
                procs[s].wait(timeout=60)
                ft = r / f"s{s}_ft"
                (ft / "checkpoints").mkdir(parents=True, exist_ok=True)
                shutil.copytree(ck, ft / "checkpoints" / ck.name)
                shutil.copy(r / f"s{s}_s1" / "config.json", ft / "config.json")
                procs[s] = launch(stage2(s, r, nw), r / f"s{s}.log")
                stage[s] = 2
                print(f"seed {s}: stage 2 from {time.time() - t0:.0f} s", flush=True)
        time.sleep(1.0)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs.values():
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"stopped at {time.time() - t0:.0f} s; stages {stage}", flush=True)
    for s in args.seeds:
        cks = [r / f"s{s}_ft" / "checkpoints" / f"epoch_{e:04d}" for e in (12, 14, 16)]
        tags = pack([c for c in cks if c.is_dir()], out / f"s{s}.safetensors")
        print(f"seed {s}: packed {tags}", flush=True)


if __name__ == "__main__":
    main()
