"""Building blocks of a training run: data sets, data order, loaders and networks."""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from pixcolor.augment import batch_generator, random_flip, random_resized_crop, resize
from pixcolor.color import denormalize_ab, lab_normalized_to_rgb, rgb_to_lab_normalized
from pixcolor.config import TrainConfig
from pixcolor.data import ColorizationDataset
from pixcolor.device import fast_bf16
from pixcolor.distributed import DistContext
from pixcolor.errors import ConfigError, PixcolorError
from pixcolor.metrics import ab_l1, colour_spread, psnr
from pixcolor.models import create_discriminator, create_generator
from pixcolor.visualize import comparison_grid

# Images used to estimate the ab prior for class rebalancing (head="bins").
PRIOR_IMAGES = 512


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Map ``auto|bf16|fp16|fp32`` to an autocast dtype (``None`` = fp32) for ``device``."""
    if precision == "fp32" or device.type == "mps":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if fast_bf16(device) else None


class BinLogits(nn.Module):
    """Forward = ``generator.forward_logits``: DDP all-reduces only what runs through forward."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, L: Tensor, hints: Tensor | None = None) -> Tensor:
        return self.generator.forward_logits(L, hints)


def no_sync(*modules: nn.Module | None) -> ExitStack:
    """Enter ``no_sync`` of each DDP module given (None skipped): no gradient all-reduce."""
    stack = ExitStack()
    for ddp in modules:
        if ddp is not None:
            stack.enter_context(ddp.no_sync())
    return stack


def build_datasets(config: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """Return (train, val) data sets yielding ``{"rgb": (3, S, S) uint8}``.

    Augmentation (flip, crops) happens later, batched on the device (see ``augment.py``).
    """
    size = config.load_size or config.size
    train = ColorizationDataset(config.data, size=size, limit=config.limit)
    if len(train) == 0:
        raise PixcolorError(f"{config.data}: no training images found")
    val = None
    if config.val:
        val = ColorizationDataset(config.val, size=config.size, limit=config.val_limit)
    return train, val


def build_models(config: TrainConfig, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """Create G and D from the registry, initialised, on ``device`` (channels_last if asked)."""
    kwargs = dict(config.generator_kwargs)
    if config.pretrained_encoder:
        kwargs["pretrained"] = True
    generator = create_generator(config.generator, **kwargs)
    if config.freeze_encoder:
        encoder_of(generator).requires_grad_(False)
    discriminator = create_discriminator(config.discriminator, **config.discriminator_kwargs)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    return (
        generator.to(device=device, memory_format=fmt),
        discriminator.to(device=device, memory_format=fmt),
    )


def encoder_of(generator: nn.Module) -> nn.Module:
    """The ``encoder`` submodule of ``generator`` (``freeze_encoder`` needs one).

    Raises:
        ConfigError: for a generator without an ``encoder`` module (e.g. the seed U-Net).
    """
    encoder = getattr(generator, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise ConfigError(
            f"freeze_encoder needs a generator with an encoder (effunet); "
            f"{type(generator).__name__} has none"
        )
    return encoder


def load_init_weights(generator: nn.Module, config: TrainConfig) -> None:
    """Copy the generator weights of ``config.init_from`` (a checkpoint or model folder).

    Raises:
        ConfigError: the folder is missing, or holds another architecture.
        CheckpointError: the weights are unreadable or do not fit.
    """
    from pixcolor.models import hub  # the one loader of weights

    path = Path(config.init_from or "")
    if not path.exists():
        raise ConfigError(f"--init-from {path}: no such checkpoint folder or weights file")
    weights, model_config = hub.read_config(path)
    post_hoc = ("temperature", "chroma_gain", "cast_gain")  # they change no weight
    want_kwargs = {k: v for k, v in generator_kwargs(config).items() if k not in post_hoc}
    have_kwargs = {k: v for k, v in model_config.get("kwargs", {}).items() if k not in post_hoc}
    widen = want_kwargs.get("hints") is True and not have_kwargs.get("hints")
    if widen:  # an unhinted model learns hints: it starts out colouring as before
        have_kwargs["hints"] = True
    want = {"arch": config.generator, "kwargs": want_kwargs}
    have = {"arch": model_config.get("arch"), "kwargs": have_kwargs}
    if have != want:
        raise ConfigError(
            f"--init-from {path}: holds {have['arch']} {have['kwargs']}, but this run trains "
            f"{want['arch']} {want['kwargs']}"
        )
    if not widen:
        hub.load_weights(generator, weights)
        return
    from pixcolor.models.effunet import EffUNet
    from pixcolor.models.hint_layers import widen_for_hints

    unhinted = hub.load_weights(EffUNet(**{**have_kwargs, "hints": False}), weights)
    generator.load_state_dict(widen_for_hints(generator, unhinted.state_dict()))


def checkpoint_megabytes(
    generator: nn.Module, discriminator: nn.Module, *, gan: bool = True
) -> tuple[float, float]:
    """Sizes in MB of a full checkpoint and of a generator-only one, as they will be written.

    A full one holds G, D and Adam's two fp32 moments of every parameter that trains (D's only
    with a GAN loss: without one its optimiser never steps and keeps no state).
    """

    def nbytes(tensors) -> int:
        return sum(t.numel() * t.element_size() for t in tensors)

    g = nbytes(generator.state_dict().values())
    d = nbytes(discriminator.state_dict().values())
    trained = [p for p in generator.parameters() if p.requires_grad]
    if gan:
        trained += [p for p in discriminator.parameters() if p.requires_grad]
    adam = 2 * sum(p.numel() * 4 for p in trained)  # exp_avg and exp_avg_sq
    return (g + d + adam) / 1e6, g / 1e6


def generator_kwargs(config: TrainConfig) -> dict:
    """Constructor kwargs to store with saved generator weights (never ``pretrained``)."""
    kwargs = dict(config.generator_kwargs)
    kwargs.pop("pretrained", None)
    return kwargs


class EpochSampler(Sampler[list[int]]):
    """Batches of indices in an order fixed by ``(seed, epoch)``; this rank's share only.

    Every rank draws the same permutation (cut to a multiple of ``world_size``) and takes every
    ``world_size``-th element, so the shards are disjoint, all ranks run the same number of
    steps, and step k's global batch is the k-th batch of one process with a batch of
    ``batch_size * world_size``. Incomplete final batches are dropped when at least one full
    batch exists (training), kept otherwise (tiny sets). ``start_batch`` skips batches already
    done (mid-epoch resume). Without ``shuffle`` (validation) each rank gets a contiguous block
    and every index appears exactly once over all ranks.
    """

    def __init__(
        self,
        n: int,
        seed: int,
        epoch: int,
        batch_size: int,
        *,
        start_batch: int = 0,
        shuffle: bool = True,
        dist: DistContext | None = None,
        drop_last: bool = True,
    ) -> None:
        dist = dist or DistContext.single()
        if shuffle:
            g = torch.Generator().manual_seed(seed * 7919 + epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        if shuffle:
            if dist.world_size > 1:
                order = order[: (n // dist.world_size) * dist.world_size] or order
            mine = order[dist.rank :: dist.world_size]
        else:  # validation: nothing dropped, nothing repeated
            mine = order[n * dist.rank // dist.world_size : n * (dist.rank + 1) // dist.world_size]
        batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
        if drop_last and shuffle and len(batches) > 1 and len(batches[-1]) < batch_size:
            batches.pop()
        self.batches = batches
        self.num_batches = len(batches)
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches[self.start_batch :])

    def __len__(self) -> int:
        return self.num_batches - self.start_batch


def _collate(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def make_train_loader(
    dataset: Dataset, sampler: EpochSampler, config: TrainConfig, device: torch.device
) -> DataLoader:
    """A loader over ``sampler``'s batches; workers decode, the device does the rest."""
    workers = config.num_workers
    if workers is None:
        cached = getattr(dataset, "is_cached", False)
        workers = 0 if cached or len(dataset) < 64 else max(1, min(4, (os.cpu_count() or 2) - 1))
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        collate_fn=_collate,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        worker_init_fn=_leave_stop_signals_to_the_trainer if workers else None,
    )


def _leave_stop_signals_to_the_trainer(worker_id: int) -> None:
    """Loader workers ignore Ctrl-C and SIGTERM, which reach the whole process group (a
    terminal, SLURM): the trainer finishes its step and checkpoints, then stops them."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def prepare_batch(
    rgb_u8: Tensor,
    config: TrainConfig,
    device: torch.device,
    dist: DistContext,
    epoch: int,
    step: int,
) -> tuple[Tensor, Tensor]:
    """Augment a batch on ``device`` and convert it to the networks' Lab.

    Args:
        rgb_u8: ``(B, 3, h, w)`` uint8 RGB, this rank's share of the global batch.
        config: ``augment``, ``size``, ``crop_min_scale``, ``seed``, ``channels_last``.
        device: where the work happens.
        dist: this rank's place; the random draws cover the global batch.
        epoch: seeds the draws with ``step`` (see :func:`~pixcolor.augment.batch_generator`).
        step: the step in the epoch.

    Returns:
        ``L (B, 1, S, S)`` and ``ab (B, 2, S, S)``, normalised to about [-1, 1].
    """
    gen = batch_generator(config.seed, epoch, step)
    rank, world = dist.rank, dist.world_size
    rgb = rgb_u8.to(device, non_blocking=True).float().div_(255.0)
    if config.augment == "crop":
        rgb = random_resized_crop(
            rgb, config.size, gen, min_scale=config.crop_min_scale, rank=rank, world_size=world
        )
    else:
        rgb = resize(rgb, config.size, config.size).clamp_(0, 1)
    rgb = random_flip(rgb, gen, rank=rank, world_size=world)
    if config.channels_last:
        rgb = rgb.contiguous(memory_format=torch.channels_last)
    return rgb_to_lab_normalized(rgb)


@torch.no_grad()
def class_weights_for(generator: nn.Module, dataset: Dataset, config: TrainConfig) -> Tensor:
    """Zhang et al.'s rebalancing weights for the generator's ab bins, from the training prior."""
    quantizer = generator.quantizer
    device = quantizer.centers.device
    counts = None
    step = max(1, len(dataset) // PRIOR_IMAGES)
    for i in range(0, len(dataset), step):
        rgb = dataset[i]["rgb"].to(device).float().div(255.0)[None]
        rgb = torch.nn.functional.interpolate(rgb, scale_factor=0.25, mode="area")
        _, ab = rgb_to_lab_normalized(rgb)
        c = quantizer.empirical_prior(ab)
        counts = c if counts is None else counts + c
    prior = counts / counts.sum()
    return quantizer.class_weights(prior, lam=config.bins_rebalance).to(device)


def load_teacher(name: str, student: nn.Module, device: torch.device) -> nn.Module:
    """The frozen ``--teacher`` colorizer (a shipped name or folder) for distilling ``student``.

    Raises:
        ConfigError: the student or the teacher has no ab-bin head, or their bin grids differ.
    """
    from pixcolor.models.hub import load_network

    teacher, _ = load_network(name, "colorizer")
    if getattr(student, "output_kind", None) != "bins" or not hasattr(teacher, "member_probs"):
        raise ConfigError(f"teacher {name}: distillation needs effunet ab-bin models on both sides")
    if getattr(teacher, "output_kind", None) != "bins" or not torch.allclose(
        teacher.bin_centers,
        student.bin_centers.cpu(),
        atol=1e-3,  # release folders exported before buffers stayed fp32 rounded them
    ):
        raise ConfigError(f"teacher {name}: its ab bins differ from the student's")
    return teacher.to(device).eval().requires_grad_(False)


class ValidationScores:
    """Sums of the validation metrics over batches, and the first images for the grid.

    Args:
        grid_images: how many images the comparison grid shows (gray, prediction, truth).
    """

    def __init__(self, grid_images: int) -> None:
        self.sums = torch.zeros(5, dtype=torch.float64)  # L1, PSNR, spread out, truth, images
        self.columns: list[list[Tensor]] = [[], [], []]
        self.grid_images = grid_images

    def add(self, L: Tensor, ab: Tensor, pred: Tensor, rgb: Tensor) -> None:
        """Score a batch: ``L (B,1,S,S)``, true and predicted ``ab (B,2,S,S)`` (normalised),
        true ``rgb (B,3,S,S)`` in [0, 1]."""
        out = lab_normalized_to_rgb(L, pred)
        self.sums[0] += ab_l1(denormalize_ab(pred), denormalize_ab(ab)).sum().item()
        self.sums[1] += psnr(out, rgb).sum().item()
        self.sums[2] += colour_spread(out * 255).sum().item()
        self.sums[3] += colour_spread(rgb * 255).sum().item()
        self.sums[4] += rgb.shape[0]
        take = self.grid_images - sum(t.shape[0] for t in self.columns[0])
        if take > 0:
            gray = lab_normalized_to_rgb(L[:take], torch.zeros_like(ab[:take]))
            for col, t in zip(self.columns, (gray, out[:take], rgb[:take]), strict=True):
                col.append(t.cpu())

    def result(self, dist: DistContext) -> dict[str, float]:
        """``val_l1`` (ab, Lab units), ``val_psnr`` (dB, 8-bit RGB) and ``val_spread`` (the
        outputs' colour spread as a fraction of the truths'), over every rank's images."""
        l1, psnr_sum, spread, truth, n = dist.all_reduce_sum(self.sums.float()).tolist()
        return {
            "val_l1": l1 / max(n, 1),
            "val_psnr": psnr_sum / max(n, 1),
            "val_spread": spread / max(truth, 1e-9),
        }

    def grid(self) -> Image.Image | None:
        """The comparison grid of the first images (None without any)."""
        if not self.columns[0]:
            return None
        return comparison_grid([torch.cat(c) for c in self.columns], ["gray", "pixcolor", "truth"])


def num_steps(n: int, batch_size: int, world_size: int = 1) -> int:
    """Steps per epoch for ``n`` images (see :class:`EpochSampler`)."""
    per_rank = n // world_size if n >= world_size else n
    full = per_rank // batch_size
    return full if full else math.ceil(per_rank / batch_size)


def simulated_hints(
    generator: nn.Module, ab: Tensor, seed: int, epoch: int, step: int, rank: int = 0
) -> Tensor | None:
    """Training hints from the truth ``ab (B, 2, S, S)`` for a hint-conditioned generator
    (:func:`pixcolor.hints.random_hint_maps`), else ``None``.

    Drawn from ``(seed, epoch, step, rank)`` only, so a resumed run draws the same ones.
    """
    if not getattr(generator, "takes_hints", False):
        return None
    from pixcolor.hints import random_hint_maps

    return random_hint_maps(ab, batch_generator(seed + 7919 * (rank + 1), epoch, step))
