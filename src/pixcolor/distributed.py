"""Process-group context for ``torchrun``: rank, world size, DDP wrapping and reductions.

A plain ``pixcolor train`` gets :meth:`DistContext.single`, whose methods are no-ops, so the
single-process path pays nothing. Under ``torchrun`` (or any launcher that sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), :func:`init_from_env` joins the job's
process group: NCCL on CUDA, gloo on CPU, with a timeout on every collective so that a rank
that died or stalled ends the job instead of hanging it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from pixcolor.errors import ConfigError

# Set by torchrun: how many times the agent restarted the workers (--max-restarts).
RESTART_COUNT_ENV = "TORCHELASTIC_RESTART_COUNT"


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0  # global rank
    local_rank: int = 0  # rank on this node (selects the GPU)
    world_size: int = 1  # number of processes
    device: torch.device | None = None  # device of this rank (None: choose from config)
    sync_bn: bool = False  # convert BatchNorm to SyncBatchNorm when wrapping

    @classmethod
    def single(cls) -> DistContext:
        """The single-process context."""
        return cls()

    @property
    def is_main(self) -> bool:
        """True on rank 0, which alone logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when running under an initialised process group with several processes."""
        return self.world_size > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """Wrap in DistributedDataParallel (after optional SyncBatchNorm) when distributed.

        ``find_unused_parameters`` stays off: the trainer freezes D with ``requires_grad_(False)``
        for the generator step, so D's parameters are simply not part of that backward pass.
        Buffers (BatchNorm running statistics) are broadcast from rank 0 before every forward,
        DDP's default.
        """
        if not self.enabled or not any(p.requires_grad for p in module.parameters()):
            return module
        if self.sync_bn:
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        ids = (
            [self.device.index] if self.device is not None and self.device.type == "cuda" else None
        )
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def broadcast_buffers(self, *modules: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics; no-op when single).

        Each rank updates them in its own last forward; this makes validation and the
        checkpoint use one set, the one DDP would broadcast before the next forward anyway.
        """
        if not self.enabled:
            return
        for module in modules:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """Sum ``tensor`` over all ranks (returned on the CPU); identity when single-process."""
        if not self.enabled:
            return tensor
        device = self.device if self.device is not None and self.device.type == "cuda" else "cpu"
        t = tensor.to(device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu()

    def broadcast_object(self, obj: Any) -> Any:
        """Return rank 0's ``obj`` on every rank (picklable objects; identity when single)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank (no-op when single-process)."""
        if self.enabled:
            dist.barrier()


def init_from_env(
    *, device: str | None = None, sync_bn: bool = False, timeout_s: float = 600.0
) -> DistContext:
    """Initialise the process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

    Uses NCCL on CUDA and gloo on CPU, with ``timeout_s`` on collectives so that a failed rank
    ends the job instead of hanging it. Without those variables (or with one process), returns
    the single context and starts nothing.

    Raises:
        ConfigError: For ``sync_bn`` on CPU, which PyTorch's SyncBatchNorm does not support.
    """
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistContext.single()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in (None, "auto", "cuda")
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if sync_bn and not use_cuda:
        raise ConfigError(
            "--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU kernel); on CPU "
            'use instance norm instead: --generator-kwargs \'{"norm": "instance"}\''
        )
    if use_cuda:
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return DistContext(
        rank=rank, local_rank=local_rank, world_size=world, device=dev, sync_bn=sync_bn
    )


def shutdown() -> None:
    """Destroy the process group, if one was started (call once training has ended)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def restart_count() -> int:
    """How many times torchrun restarted this job's workers (0 on the first attempt)."""
    return int(os.environ.get(RESTART_COUNT_ENV, "0") or 0)
