"""Train-step speed: pixcolor's trainer vs a plain fp32 NCHW eager pix2pix loop.

Times full training steps (G forward, D step, G step) of the ``seed`` generator with the 70x70
PatchGAN at 256x256, batch 16, first as the reference pix2pix code runs them (fp32, NCHW, eager,
Lab conversion outside the timed step), then through :class:`pixcolor.train.Trainer` (autocast
bf16 where fast, channels_last, batched device-side Lab conversion and augmentation, optional
torch.compile). Prints img/s for both, FLOPs per step and achieved GFLOP/s; the last line is
``ratio X.XX`` (pixcolor over plain).

    python benchmarks/train_speed.py [--device cpu] [--steps 5] [--compile]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from pixcolor.color import rgb_to_lab_normalized
from pixcolor.config import TrainConfig
from pixcolor.device import resolve_device
from pixcolor.losses import GANLoss
from pixcolor.models import create_discriminator, create_generator
from pixcolor.train import Trainer


def plain_step(G, D, opt_g, opt_d, gan, L, ab):
    """One pix2pix update the way the reference code does it (fp32, NCHW, eager)."""
    fake = G(L)
    D.requires_grad_(True)
    opt_d.zero_grad()
    loss_d = 0.5 * (
        gan(D(torch.cat([L, fake.detach()], 1)), False) + gan(D(torch.cat([L, ab], 1)), True)
    )
    loss_d.backward()
    opt_d.step()
    D.requires_grad_(False)
    opt_g.zero_grad()
    loss_g = gan(D(torch.cat([L, fake], 1)), True) + 100.0 * F.l1_loss(fake, ab)
    loss_g.backward()
    opt_g.step()
    return loss_g


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, steps, warmup, device):
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


def bench_plain(rgb_u8, device, steps, warmup) -> tuple[int, float]:
    """FLOPs of one reference step and its mean time in seconds."""
    G = create_generator("seed").to(device)
    D = create_discriminator("patchgan").to(device)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    gan = GANLoss("vanilla")
    L, ab = rgb_to_lab_normalized(rgb_u8.float().div(255).to(device))
    with FlopCounterMode(display=False) as fc:
        plain_step(G, D, opt_g, opt_d, gan, L, ab)
    seconds = time_it(lambda: plain_step(G, D, opt_g, opt_d, gan, L, ab), steps, warmup, device)
    return fc.get_total_flops(), seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="also torch.compile pixcolor's nets")
    p.add_argument("--precision", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    b, s = args.batch, args.size
    torch.manual_seed(0)
    rgb_u8 = torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8)

    flops, t_plain = bench_plain(rgb_u8, device, args.steps, args.warmup)

    # --- pixcolor trainer ---
    with tempfile.TemporaryDirectory() as tmp:
        folder = tempfile.mkdtemp(dir=tmp)
        from PIL import Image

        for i in range(b):
            Image.fromarray(rgb_u8[i].permute(1, 2, 0).numpy()).save(f"{folder}/{i}.png")
        cfg = TrainConfig(
            data=folder,
            out=f"{tmp}/run",
            size=s,
            batch_size=b,
            device=str(device),
            precision=args.precision,
            compile=args.compile,
            num_workers=0,
        )
        trainer = Trainer(cfg)
        batch = rgb_u8.to(device)

        def pix_step():
            L, ab = trainer._prepare(batch, 0, 0)
            return trainer.train_step(L, ab, gan=True)

        t_pix = time_it(pix_step, args.steps, args.warmup + (2 if args.compile else 0), device)
        prec = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[trainer.amp_dtype]

    print(
        f"device        : {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else torch.get_num_threads()} {'GPU' if device.type == 'cuda' else 'threads'})"
    )
    print(f"model         : seed U-Net (54.4M) + 70x70 PatchGAN (2.8M), {s}x{s}, batch {b}")
    print(f"FLOPs per step: {flops / 1e9:.1f} GFLOP (fp32 reference step, FlopCounterMode)")
    print(f"plain fp32 NCHW eager : {b / t_plain:8.2f} img/s  {flops / t_plain / 1e9:8.1f} GFLOP/s")
    print(
        f"pixcolor ({prec}, channels_last{', compiled' if args.compile else ''}): "
        f"{b / t_pix:8.2f} img/s  {flops / t_pix / 1e9:8.1f} GFLOP/s"
    )
    print(f"ratio {t_plain / t_pix:.2f}")


if __name__ == "__main__":
    main()
