"""Run several training jobs side by side so that each finishes its schedule by a deadline.

Used for short, fixed-length GPU sessions, where the speed of each job is not known in advance.
Phase 1 starts every job with a huge epoch count (the learning rate stays at its base value) and
measures its steps per second. Each job is then stopped with SIGINT (which saves a checkpoint)
and resumed with the epoch count that ends its schedule (linear decay or cosine) at the deadline.
Colorizer jobs also get snapshots of their generator at chosen fractions of the run.

    python scripts/timed_runs.py PLAN.json --deadline 400 --probe 60

PLAN.json is a list of jobs: ``{"name", "kind": "color"|"sr", "argv": [...], "out": DIR,
"steps_per_epoch": N or null (read from the SR log), "decay_frac": 0.5,
"snapshots": [0.4, 0.7, 1.0], "max_epochs": N or null (a cap: the job may end before the
deadline)}``. ``argv`` is the full command without ``--epochs``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

BIG_EPOCHS = 10000


def last_step(out: Path) -> int | None:
    """Global step of the newest train row in ``out/metrics.jsonl``."""
    try:
        lines = (out / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("kind") == "train":
            return int(row["step"])
    return None


def saved_step(out: Path) -> int:
    """Global step of ``out/checkpoints/last`` (0 when there is none)."""
    try:
        return int(json.loads((out / "checkpoints" / "last" / "config.json").read_text())["step"])
    except (OSError, ValueError, KeyError):
        return 0


def start(job: dict, epochs: int, resume: bool) -> subprocess.Popen:
    argv = [*job["argv"], "--epochs", str(epochs)]
    if job["kind"] == "color":
        argv += ["--decay-epochs", str(0 if epochs == BIG_EPOCHS else job["decay"])]
    if resume:
        argv.append("--resume")
    with open(Path(job["out"]).with_suffix(".log"), "a") as log:  # the child keeps its own copy
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


def stop(procs: list[subprocess.Popen], grace: float) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    end = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(1.0, end - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()


def snapshot(job: dict) -> None:
    """Copy the generator of ``checkpoints/last`` once it has passed each snapshot epoch."""
    last = Path(job["out"]) / "checkpoints" / "last"
    try:
        config = json.loads((last / "config.json").read_text())
        epoch = int(config["epoch"])
        for target in job["snap_epochs"]:
            dest = Path(job["out"]) / "snaps" / f"epoch_{target:04d}"
            if epoch >= target and not dest.exists():
                tmp = dest.with_suffix(".tmp")
                tmp.mkdir(parents=True, exist_ok=True)
                shutil.copy(last / "model.safetensors", tmp / "model.safetensors")
                (tmp / "config.json").write_text(json.dumps(config))
                tmp.rename(dest)
    except (OSError, ValueError, KeyError):
        pass  # the trainer was replacing "last": try again at the next poll


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("plan", type=Path)
    p.add_argument("--deadline", type=float, required=True, help="seconds from now")
    p.add_argument("--probe", type=float, default=60.0, help="seconds of phase 1")
    p.add_argument("--margin", type=float, default=0.88, help="fraction of the rate to plan on")
    args = p.parse_args()
    t0 = time.time()
    jobs = json.loads(args.plan.read_text())
    procs = [start(job, BIG_EPOCHS, resume=False) for job in jobs]
    time.sleep(max(1.0, args.probe - 25))
    s1, t1 = [last_step(Path(j["out"])) for j in jobs], time.time()
    time.sleep(25)
    s2, t2 = [last_step(Path(j["out"])) for j in jobs], time.time()
    stop(procs, grace=60)
    restart = time.time()
    live = []
    for job, a, b in zip(jobs, s1, s2, strict=True):
        b = b or saved_step(Path(job["out"]))
        if not b:
            print(f"{job['name']}: no training progress in the probe; dropped", flush=True)
            continue
        live.append(job)
        rate = (b - a) / (t2 - t1) if a is not None and b > a else b / (t2 - t0 - 15)
        spe = job.get("steps_per_epoch")
        if not spe:  # the SR trainer prints "N steps/epoch"
            text = Path(job["out"]).with_suffix(".log").read_text()
            spe = int(re.search(r"(\d+) steps/epoch", text).group(1))
        remaining = args.deadline - (restart - t0) - 20
        total = max(b, saved_step(Path(job["out"]))) + rate * remaining * args.margin
        epochs = min(max(2, round(total / spe)), job.get("max_epochs") or BIG_EPOCHS)
        job.update(rate=rate, steps_per_epoch=spe, epochs=epochs)
        job["decay"] = max(1, round(epochs * job.get("decay_frac", 0.5)))
        job["snap_epochs"] = sorted({max(1, round(f * epochs)) for f in job.get("snapshots", [])})
        print(
            f"{job['name']}: {rate:.1f} steps/s, {spe} steps/epoch -> {epochs} epochs", flush=True
        )
    jobs = live
    procs = [start(job, job["epochs"], resume=True) for job in jobs]
    while any(p.poll() is None for p in procs) and time.time() - t0 < args.deadline:
        for job in jobs:
            if job["kind"] == "color":
                snapshot(job)
        time.sleep(1.0)
    stop(procs, grace=45)
    for job in jobs:
        if job["kind"] == "color":
            snapshot(job)
    for job, proc in zip(jobs, procs, strict=True):
        job["exit"] = proc.returncode
        print(f"{job['name']}: exit {proc.returncode}", flush=True)
    summary = Path(jobs[0]["out"]).parent / "timed_runs.json"
    summary.write_text(json.dumps({"elapsed_s": time.time() - t0, "jobs": jobs}, indent=1))


if __name__ == "__main__":
    main()
