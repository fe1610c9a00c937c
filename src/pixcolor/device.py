"""Device selection and the environment check behind ``pixcolor info``.

No global state: callers pass the device they want down explicitly; :func:`resolve_device`
only turns ``None``/``"auto"`` into the best available one.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

# CPU feature flags (Linux /proc/cpuinfo names) that make bf16 matrix work fast on a CPU.
FAST_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def available_devices() -> list[str]:
    """The device types usable here, e.g. ``["cuda", "cpu"]`` (with ``cuda:N`` for N > 0)."""
    found = []
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        found += ["cuda"] + [f"cuda:{i}" for i in range(1, count)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """Return a torch device: ``name`` as given, or cuda > mps > cpu when ``None``/``"auto"``.

    Raises:
        PixcolorError: ``name`` is not a device name, or that device is not usable here (one
            line: what was asked, what is available).
    """
    if isinstance(name, torch.device):
        return name
    if name not in (None, "auto"):
        return _checked_device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _checked_device(name: str) -> torch.device:
    """``torch.device(name)``, if it names a device this machine has."""
    from pixcolor.errors import PixcolorError

    usable = ", ".join(available_devices())
    try:
        device = torch.device(str(name).strip())
    except (RuntimeError, ValueError):
        msg = f"device {name!r} is not a device name; available: {usable}"
        raise PixcolorError(msg) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch has no CUDA" if torch.version.cuda is None else "no CUDA GPU found"
            raise PixcolorError(f"device {str(name)!r} asked for, but {why}; available: {usable}")
        if (device.index or 0) >= torch.cuda.device_count():
            raise PixcolorError(f"device {str(name)!r}: no such GPU; available: {usable}")
    elif device.type == "mps" and "mps" not in available_devices():
        raise PixcolorError(f"device {str(name)!r}: MPS is not available; available: {usable}")
    return device


def cpu_flags() -> set[str]:
    """Return the CPU feature flags of this machine (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def fast_bf16(device: torch.device) -> bool:
    """True when bf16 autocast is expected to beat fp32 on ``device``.

    On CUDA this is hardware bf16 support (Ampere or newer); on CPU it needs AMX or
    AVX512-BF16, without which PyTorch emulates bf16 and runs slower than fp32.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return any(flag in cpu_flags() for flag in FAST_BF16_CPU_FLAGS)
    return False


def memory_bytes() -> tuple[int | None, int | None]:
    """Return (total, available) RAM in bytes, ``None`` where the OS does not say."""
    total = available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "MemTotal":
                total = int(value.split()[0]) * 1024
            elif key == "MemAvailable":
                available = int(value.split()[0]) * 1024
    except OSError:
        pass
    if total is None and hasattr(os, "sysconf"):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            total = None
    return total, available


@dataclass(frozen=True)
class EnvironmentInfo:
    """What ``pixcolor info`` reports."""

    pixcolor_version: str  # package version
    torch_version: str  # torch.__version__
    python_version: str  # platform.python_version()
    device: str  # the device pixcolor would use: cuda / mps / cpu
    gpu_name: str | None  # CUDA device name, if any
    gpu_memory_bytes: int | None  # total memory of that GPU
    cpu_model: str  # processor description
    cpu_cores: int  # logical cores usable by this process
    torch_threads: int  # torch intra-op threads
    ram_total_bytes: int | None  # physical memory
    ram_available_bytes: int | None  # memory available now
    bf16_fast: bool  # bf16 autocast expected faster than fp32 on `device`
    bf16_reason: str  # why (flags found, or GPU capability)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        return asdict(self)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info(device: str | None = None) -> EnvironmentInfo:
    """Collect the environment check for ``device`` (default: the best available)."""
    from pixcolor._version import __version__

    dev = resolve_device(device)
    gpu_name = gpu_mem = None
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        gpu_name, gpu_mem = props.name, int(props.total_memory)
    fast = fast_bf16(dev)
    if dev.type == "cpu":
        found = sorted(set(FAST_BF16_CPU_FLAGS) & cpu_flags())
        reason = f"CPU flags {', '.join(found)}" if found else "no AMX or AVX512-BF16 on this CPU"
    elif dev.type == "cuda":
        cap = torch.cuda.get_device_capability(dev)
        reason = f"CUDA compute capability {cap[0]}.{cap[1]}"
    else:
        reason = f"{dev.type}: bf16 autocast not assumed fast"
    total, available = memory_bytes()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return EnvironmentInfo(
        pixcolor_version=__version__,
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        device=dev.type,
        gpu_name=gpu_name,
        gpu_memory_bytes=gpu_mem,
        cpu_model=_cpu_model(),
        cpu_cores=int(cores or 1),
        torch_threads=torch.get_num_threads(),
        ram_total_bytes=total,
        ram_available_bytes=available,
        bf16_fast=fast,
        bf16_reason=reason,
    )
