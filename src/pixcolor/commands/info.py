"""``pixcolor info``: the environment check (torch, device, GPU, RAM, cores, bf16)."""

from __future__ import annotations

import argparse
import json


def _gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 2**30:.1f} GiB"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand."""
    p = sub.add_parser("info", help="show torch, device, GPU, RAM and bf16 support")
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    p.add_argument("--device", default=None, help="device to check (default: best available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the environment check."""
    from pixcolor.device import environment_info

    info = environment_info(args.device)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    gpu = "none" if info.gpu_name is None else f"{info.gpu_name} ({_gib(info.gpu_memory_bytes)})"
    rows = [
        ("pixcolor", info.pixcolor_version),
        ("torch", info.torch_version),
        ("python", info.python_version),
        ("device", info.device),
        ("gpu", gpu),
        ("cpu", f"{info.cpu_model}, {info.cpu_cores} cores, {info.torch_threads} torch threads"),
        ("ram", f"{_gib(info.ram_total_bytes)} total, {_gib(info.ram_available_bytes)} available"),
        ("bf16 fast", f"{'yes' if info.bf16_fast else 'no'} ({info.bf16_reason})"),
    ]
    for key, value in rows:
        print(f"{key:>10}: {value}")
    return 0
