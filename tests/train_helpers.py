"""The tiny training run shared by the trainer, DDP and robustness tests."""

from __future__ import annotations

from typing import Any

from pixcolor.config import TrainConfig

TINY_UNET = {"base_channels": 8, "num_downs": 5}  # a 5-level U-Net with 8 base channels


def tiny_train_config(**fields: Any) -> TrainConfig:
    """A run of seconds on a CPU: 32 px, the tiny U-Net against an 8-channel PatchGAN, batch 2,
    2 epochs, fp32, no loader workers. ``fields`` (``data`` and ``out`` at least) add to or
    replace these settings."""
    base: dict[str, Any] = dict(
        size=32,
        generator="unet",
        generator_kwargs=dict(TINY_UNET),
        discriminator_kwargs={"base_channels": 8},
        batch_size=2,
        epochs=2,
        precision="fp32",
        num_workers=0,
    )
    return TrainConfig.from_dict(base | fields)
