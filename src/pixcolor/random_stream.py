"""A trainer's private random stream: training draws from it, never from the caller's."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch


class PrivateRNG:
    """A trainer's own random stream, so that training never changes the caller's.

    Inside :meth:`active`, the CPU generator (and, for a CUDA device, that device's generator)
    runs on this stream; on leaving, the stream's state is kept here and the caller's state is
    back, as :func:`torch.random.fork_rng` restores it. Dropout and data loader seeds draw
    from it, so a run is a function of its seed, and its state travels in checkpoints.
    """

    def __init__(self, seed: int, device: torch.device) -> None:
        self.cpu = torch.Generator().manual_seed(seed)
        self.cuda: torch.Generator | None = None
        if device.type == "cuda":
            self.cuda = torch.Generator(device=device).manual_seed(seed)
        self._depth = 0

    def _devices(self) -> list[int]:
        return [self.cuda.device.index or 0] if self.cuda is not None else []

    @contextmanager
    def active(self) -> Iterator[None]:
        """Run the block on this stream (re-entrant)."""
        if self._depth:
            yield
            return
        with torch.random.fork_rng(devices=self._devices()):
            self._set_global(self.cpu.get_state(), self.cuda.get_state() if self.cuda else None)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                self.cpu.set_state(torch.get_rng_state())
                if self.cuda is not None:
                    self.cuda.set_state(torch.cuda.get_rng_state(self._devices()[0]))

    def _set_global(self, cpu: torch.Tensor, cuda: torch.Tensor | None) -> None:
        torch.set_rng_state(cpu)
        if cuda is not None and self.cuda is not None:
            torch.cuda.set_rng_state(cuda, self._devices()[0])

    def reseed(self, seed: int) -> None:
        """Seed the stream anew (inside :meth:`active`: the generators in use)."""
        if self._depth:
            torch.default_generator.manual_seed(seed)
            if self.cuda is not None:
                with torch.cuda.device(self._devices()[0]):
                    torch.cuda.manual_seed(seed)
        else:
            self.cpu.manual_seed(seed)
            if self.cuda is not None:
                self.cuda.manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        """``{"rng_cpu": ByteTensor, "rng_cuda": [ByteTensor] or []}``, as checkpoints store it."""
        if self._depth:
            cpu = torch.get_rng_state()
            cuda = [torch.cuda.get_rng_state(self._devices()[0])] if self.cuda else []
        else:
            cpu, cuda = self.cpu.get_state(), [self.cuda.get_state()] if self.cuda else []
        return {"rng_cpu": cpu, "rng_cuda": cuda}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a CUDA state is used only on a CUDA device."""
        cpu, cuda = state["rng_cpu"], state.get("rng_cuda") or []
        cuda_state = cuda[0] if cuda and self.cuda is not None else None
        if self._depth:
            self._set_global(cpu, cuda_state)
            return
        self.cpu.set_state(cpu)
        if cuda_state is not None and self.cuda is not None:
            self.cuda.set_state(cuda_state)
