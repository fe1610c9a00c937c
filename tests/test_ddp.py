"""Distributed training (DDP) on CPU: gloo on 127.0.0.1, 2 processes, tiny models, bounded.

Each multi-process test starts its ranks with ``torch.multiprocessing`` (spawn) and waits for
them with a deadline of its own; the ranks write their results to files the test then compares.
The torchrun test launches the real ``torchrun`` and ``python -m pixcolor``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from train_helpers import tiny_train_config

from pixcolor.config import TrainConfig
from pixcolor.distributed import DistContext, init_from_env, shutdown
from pixcolor.errors import ConfigError
from pixcolor.train import Trainer
from pixcolor.train_setup import EpochSampler

# Seconds a job may take before the test kills it and fails (start-up included); generous,
# for a loaded machine: a job takes 5-30 s on two shared cores.
JOB_DEADLINE = 180
# Collective timeout (TrainConfig.dist_timeout) of the failure test; the others wait longer,
# since on a loaded machine a rank may legitimately wait several seconds for rank 0's writes.
DIST_TIMEOUT = 8.0


def _photos(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` distinct 32x32 colour gradients with noise, as PNG files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:32, 0:32]
    for i in range(n):
        base = np.stack([x * 8, y * 8, np.full((32, 32), rng.integers(0, 255))], -1)
        img = np.clip(base + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i:02d}.png")
    return folder


def _config(tmp_path: Path, n_train: int = 8, n_val: int = 5, **kw) -> TrainConfig:
    base = dict(
        data=str(_photos(tmp_path / "train", n_train)),
        val=str(_photos(tmp_path / "val", n_val, seed=1)),
        out=str(tmp_path / "run"),
        device="cpu",
        log_every=1,
        keep_last=1,
        grid_images=2,
        dist_timeout=float(JOB_DEADLINE),
    )
    return tiny_train_config(**(base | kw))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, config: TrainConfig, out: str, opts: dict):
    """One rank: join the group, train as ``opts`` says, save what the test checks."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        GLOO_SOCKET_IFNAME="lo",
    )
    torch.set_num_threads(1)
    if config.device == "cuda":  # fp32 means fp32 for the comparison with one process
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    dist = init_from_env(
        device=config.device, sync_bn=config.sync_bn, timeout_s=config.dist_timeout
    )
    trainer = Trainer(config, dist=dist)
    syncs: list[tuple[str, int]] = []
    if opts.get("count_syncs"):
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        for name, ddp in (("G", trainer._ddp_g), ("D", trainer._ddp_d)):

            def hook(state, bucket, name=name):
                syncs.append((name, trainer.global_step))
                return allreduce_hook(None, bucket)

            ddp.register_comm_hook(None, hook)
    resumed = trainer.resume() if opts.get("resume") else None
    after_resume = (trainer.global_step, trainer.step_in_epoch)
    fail = opts.get("fail")
    if fail and rank == 1:
        step = trainer.train_step

        def failing_step(*args, **kwargs):
            if trainer.global_step == 1:
                Path(out, "failed_at").write_text(str(time.time()))
                if fail == "stall":
                    time.sleep(10 * JOB_DEADLINE)
                raise RuntimeError("injected failure on rank 1")
            return step(*args, **kwargs)

        trainer.train_step = failing_step
    metrics = trainer.fit(stop_at_step=opts.get("stop_at"))
    torch.save(
        {
            "G": trainer.G_raw.state_dict(),
            "D": trainer.D_raw.state_dict(),
            "metrics": metrics,
            "syncs": syncs,
            "resumed": str(resumed),
            "after_resume": after_resume,
            "end": (trainer.epoch, trainer.step_in_epoch, trainer.global_step),
        },
        Path(out) / f"rank{rank}.pt",
    )
    shutdown()


def _start(config: TrainConfig, out: Path, world: int = 2, **opts):
    out.mkdir(parents=True, exist_ok=True)
    # The fork server imports torch once for all jobs; it never runs torch ops before forking.
    mp.set_forkserver_preload(["torch", "pixcolor.train", "numpy", "PIL.Image"])
    args = (world, _free_port(), config, str(out), opts)
    return mp.start_processes(
        _rank_main, args=args, nprocs=world, join=False, start_method="forkserver"
    )


def _wait(ctx, deadline: float = JOB_DEADLINE) -> list[int | None]:
    """Exit codes of every rank; kills the job (and fails) past ``deadline`` seconds."""
    end = time.monotonic() + deadline
    for p in ctx.processes:
        p.join(max(0.0, end - time.monotonic()))
    codes = [p.exitcode for p in ctx.processes]
    for p in ctx.processes:
        if p.is_alive():
            p.kill()
            p.join()
    assert None not in codes, f"ranks still running after {deadline} s: exit codes {codes}"
    return codes


def _run(config: TrainConfig, out: Path, world: int = 2, **opts) -> list[dict]:
    codes = _wait(_start(config, out, world, **opts))
    assert codes == [0] * world, codes
    return [
        torch.load(out / f"rank{r}.pt", map_location="cpu", weights_only=False)
        for r in range(world)
    ]


def _assert_close(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key


# --- the sampler, without processes -------------------------------------------------------
@pytest.mark.parametrize("n", [5, 16])
def test_sampler_shards_cover_the_global_batches(n):
    world, batch = 2, 2
    ranks = [DistContext(rank=r, world_size=world) for r in range(world)]
    one = EpochSampler(n, 3, 1, batch * world).batches
    shards = [EpochSampler(n, 3, 1, batch, dist=d).batches for d in ranks]
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of steps
    for k, global_batch in enumerate(one[: len(shards[0])]):
        assert sorted(global_batch) == sorted(i for s in shards for i in s[k])
    val = [EpochSampler(n, 0, 0, batch, shuffle=False, dist=d).batches for d in ranks]
    seen = sorted(i for shard in val for b in shard for i in b)
    assert seen == list(range(n))  # validation: nothing dropped, nothing repeated


def test_sync_bn_refused_on_cpu(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="sync-bn needs CUDA"):
        init_from_env(device="cpu", sync_bn=True)


# --- 2 processes ------------------------------------------------------------------------
@pytest.mark.timeout(JOB_DEADLINE + 30)
def test_two_ranks_end_identical_and_sync_on_final_micro_steps(tmp_path):
    # 8 images, 2 ranks x batch 2: 2 steps per epoch, 4 steps; grad_accum 2 steps at 1 and 3.
    config = _config(tmp_path, grad_accum=2, val_every=2)
    r0, r1 = _run(config, tmp_path / "job", count_syncs=True)
    init = Trainer(config.replace(out=str(tmp_path / "init")))  # same seed: same initial weights
    for net, module in (("G", init.G_raw), ("D", init.D_raw)):
        _assert_close(r0[net], r1[net], atol=0)
        start = module.state_dict()
        assert any(not torch.equal(start[k], v) for k, v in r0[net].items()), f"{net} unchanged"
    # DDP all-reduced only on the final micro-steps; D (frozen in the G step) never outside them.
    for rank in (r0, r1):
        assert {name for name, _ in rank["syncs"]} == {"G", "D"}
        assert {step for _, step in rank["syncs"]} == {1, 3}, rank["syncs"]
    assert r0["end"] == r1["end"] == (2, 0, 4)
    # Rank 0 alone wrote the run folder: one set of checkpoints, each log row once.
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best", "epoch_0002", "last"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4]


@pytest.mark.timeout(JOB_DEADLINE + 60)
@pytest.mark.parametrize(
    "norm",
    [
        "instance",
        pytest.param(
            "sync_bn",
            marks=[
                pytest.mark.requires_cuda,
                pytest.mark.skipif(
                    torch.cuda.device_count() < 2, reason="SyncBatchNorm needs 2 CUDA devices"
                ),
            ],
        ),
    ],
)
def test_two_ranks_of_4_match_one_process_of_8(tmp_path, norm):
    # fp32, no dropout; 32 images: 4 GAN steps in 1 epoch; val has 5 images (2 + 3).
    # Instance norm on CPU (PyTorch's SyncBatchNorm has no CPU kernel); SyncBN on 2 GPUs.
    kw = {"norm": "instance"} if norm == "instance" else {}
    config = _config(
        tmp_path,
        n_train=32,
        epochs=1,
        batch_size=4,
        generator_kwargs={"base_channels": 8, "num_downs": 5, "dropout": 0.0, **kw},
        discriminator_kwargs={"base_channels": 8, **kw},
        sync_bn=norm == "sync_bn",
        device="cpu" if norm == "instance" else "cuda",
    )
    if norm == "sync_bn":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    r0, r1 = _run(config, tmp_path / "job")
    single = Trainer(config.replace(batch_size=8, out=str(tmp_path / "single")))
    metrics = single.fit()
    _assert_close(r0["G"], r1["G"], atol=0)
    x = {"G": torch.rand(3, 1, 32, 32) * 2 - 1, "D": torch.rand(3, 3, 32, 32) * 2 - 1}
    for net, module in (("G", single.G_raw), ("D", single.D_raw)):
        ref = {k: v.cpu() for k, v in module.state_dict().items()}
        # A conv bias right before InstanceNorm has no effect and a zero gradient, i.e. pure
        # rounding noise, which Adam scales up to ~lr: compare those through the outputs only.
        keep = [k for k in ref if norm != "instance" or not k.endswith(".bias")]
        _assert_close({k: ref[k] for k in keep}, {k: r0[net][k] for k in keep}, atol=2e-5)
        module.eval().cpu()
        with torch.no_grad():
            expected = module(x[net])
            module.load_state_dict(r0[net])
            torch.testing.assert_close(module(x[net]), expected, atol=1e-5, rtol=1e-4)
    # The validation numbers cover all 5 images, not rank 0's 2.
    for key in ("val_l1", "val_psnr"):
        assert r0["metrics"][key] == r1["metrics"][key]
        assert r0["metrics"][key] == pytest.approx(metrics[key], rel=1e-4)


@pytest.mark.timeout(2 * JOB_DEADLINE + 60)
def test_resume_with_another_world_size(tmp_path):
    # 8 images, batch 2: 2 steps per epoch with 2 ranks, 4 with 1.
    config = _config(tmp_path)
    # 2 ranks stop in epoch 2 after 1 of its 2 steps (3 images per rank done); 1 process resumes.
    r0, r1 = _run(config, tmp_path / "job2", stop_at=3)
    assert r0["end"] == r1["end"] == (1, 1, 3)
    one = Trainer(config)
    assert one.resume().name == "last"
    assert (one.global_step, one.step_in_epoch) == (3, 2)  # 4 of 8 images, in batches of 2
    one.fit()
    assert (one.epoch, one.global_step) == (2, 5)
    # And back: 1 process stops in epoch 1 after 2 steps; 2 ranks resume the same checkpoint.
    config_b = config.replace(out=str(tmp_path / "run_b"))
    Trainer(config_b).fit(stop_at_step=2)
    r0, r1 = _run(config_b, tmp_path / "job1", resume=True)
    assert r0["resumed"] == r1["resumed"] == str(tmp_path / "run_b" / "checkpoints" / "last")
    assert r0["after_resume"] == r1["after_resume"] == (2, 1)
    assert r0["end"] == r1["end"] == (2, 0, 5)
    _assert_close(r0["G"], r1["G"], atol=0)


@pytest.mark.timeout(JOB_DEADLINE + 30)
@pytest.mark.parametrize("fail", ["raise", "stall"])
def test_a_failed_rank_ends_the_job(tmp_path, fail):
    # Nobody kills rank 0 here (no torchrun agent): it must give up on its own.
    out = tmp_path / "job"
    ctx = _start(_config(tmp_path, dist_timeout=DIST_TIMEOUT), out, fail=fail)
    rank0, rank1 = ctx.processes
    try:
        rank0.join(JOB_DEADLINE)
        rank0_done = time.time()
        rank1.join(JOB_DEADLINE if fail == "raise" else 0)
        codes = [rank0.exitcode, rank1.exitcode]
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
                p.join()
    assert codes[0] not in (None, 0), codes
    if fail == "raise":
        assert codes[1] not in (None, 0), codes
    failed_at = float((out / "failed_at").read_text())
    # Rank 0 gave up within the collective timeout (plus time to exit on a loaded machine);
    # without it, gloo's default of 30 minutes would have held it past JOB_DEADLINE.
    assert rank0_done - failed_at < DIST_TIMEOUT + 30


# --- torchrun ---------------------------------------------------------------------------
RESTARTED_SCRIPT = """
import os, runpy, sys
from pixcolor.train import Trainer

if os.environ["TORCHELASTIC_RESTART_COUNT"] == "0" and os.environ["RANK"] == "1":
    run_epoch = Trainer._run_epoch

    def fail_in_epoch_2(self, stop_at_step):
        if self.epoch == 1:
            raise RuntimeError("injected failure on rank 1 in epoch 2")
        return run_epoch(self, stop_at_step)

    Trainer._run_epoch = fail_in_epoch_2
sys.argv[0] = "pixcolor"
runpy.run_module("pixcolor", run_name="__main__", alter_sys=True)
"""


@pytest.mark.timeout(2 * JOB_DEADLINE + 30)
def test_torchrun_restart_resumes_from_the_last_checkpoint(tmp_path):
    config = _config(tmp_path)
    script = tmp_path / "launch.py"
    script.write_text(RESTARTED_SCRIPT)
    cmd = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"),
        *("--max-restarts", "1", "--monitor-interval", "0.2"),
        *("--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}"),
        *(str(script), "train", "--preset", "seed", "--data", config.data, "--val", config.val),
        *("--out", config.out),
        *("--size", "32", "--generator", "unet", "--batch-size", "2", "--epochs", "2"),
        *("--generator-kwargs", '{"base_channels": 8, "num_downs": 5}'),
        *("--discriminator-kwargs", '{"base_channels": 8}'),
        *("--device", "cpu", "--num-workers", "0", "--precision", "fp32"),
    ]
    # A restart reusing the rendezvous TCP store can read the previous attempt's addresses
    # (pytorch/pytorch#135712); the README gives the same setting for --max-restarts.
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,  # one process group: agent and workers
    )
    try:
        log, _ = proc.communicate(timeout=2 * JOB_DEADLINE)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the workers too, not only the agent
            proc.wait()
    assert proc.returncode == 0, log[-4000:]
    assert "batch 2 x 2 process(es) x 1 accum = global batch 4" in log
    assert "injected failure on rank 1 in epoch 2" in log
    assert "resumed from" in log and "epoch 2, step 0" in log
    run = Path(config.out)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "val"] == [1, 2]
    assert (run / "checkpoints" / "epoch_0002").is_dir()
