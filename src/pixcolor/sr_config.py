"""The settings of an SRCNN training run (``pixcolor train-sr``), without importing torch.

:class:`SRTrainConfig` is saved as ``train_config.json`` in the run folder; each field's help
text is the ``train-sr`` flag's ``--help``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pixcolor.config import option
from pixcolor.errors import ConfigError


@dataclass(frozen=True)
class SRTrainConfig:
    """Everything an SRCNN run depends on; saved as ``train_config.json`` in the run folder."""

    data: str = option("", "training images folder (the paper: T91)")
    val: str | None = option(None, "validation HR images (Set5), paper protocol each epoch")
    extra: str | None = option(None, "optional folder of more photos, cut into sub-images too")
    extra_limit: int | None = option(None, "use at most N extra photos")
    out: str = option("runs/srcnn-x3", "run folder: checkpoints, metrics.jsonl, curves.png")
    export: str | None = option(None, "exported weights folder at the end (none: <out>/export)")
    export_from: Literal["last", "best"] = option("last", "which checkpoint is exported")
    init: str | None = option(None, "start from these weights (folder or srcnn-xN; fine-tuning)")
    scale: int = option(3, "upscaling factor (2, 3, 4)")
    patch: int = option(33, "sub-image side (paper: 33)")
    stride: int = option(14, "sub-image stride (paper: 14)")
    variant: Literal["955", "915"] = option("955", "SRCNN kernel sizes")
    f1: int = option(64, "filters of the first layer (paper: 64)")
    f2: int = option(32, "filters of the second layer (paper: 32)")
    augment: bool = option(True, "random flips and 90-degree rotations of each sub-image")
    loss_margin: int = option(0, "border of each sub-image left out of the loss (paper-like: 8)")
    epochs: int = option(20, "passes over the ~22k T91 sub-images (CPU ~2 min each, GPU ~0.5 s)")
    batch_size: int = option(128, "sub-images per step (paper: 128)")
    lr: float = option(
        6e-4, "Adam base lr, last layer lr / 10 (paper: SGD 1e-4); 6e-4 best of 3e-4..1e-3"
    )
    schedule: Literal["cosine", "constant"] = option("cosine", "per-step lr decay to 0, or none")
    seed: int = option(0, "seeds weights, data order and augmentation")
    device: str | None = option(None, "cuda, mps or cpu; none = the best available")
    channels_last: bool = option(True, "NHWC convolutions (about 2x faster on CPU)")
    cudnn_benchmark: bool = option(
        False, "let cuDNN time convolution algorithms (CUDA: faster, runs not bit-exact)"
    )
    log_every: int = option(20, "steps between metrics.jsonl rows")
    keep_last: int = option(2, "keep checkpoints of the last N epochs (plus last and best)")

    def __post_init__(self) -> None:
        checks = [
            (self.scale >= 2, "scale must be >= 2"),
            (self.patch >= 8 and self.stride >= 1, "patch must be >= 8 and stride >= 1"),
            (self.f1 >= 1 and self.f2 >= 1, "f1 and f2 must be >= 1"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (0 < self.lr < 1, "lr must be in (0, 1)"),
            (self.log_every >= 1 and self.keep_last >= 0, "log_every >= 1, keep_last >= 0"),
            (self.extra_limit is None or self.extra_limit > 0, "extra_limit must be positive"),
            (
                0 <= 2 * self.loss_margin < self.patch,
                "loss_margin must leave part of the patch (0 <= 2 x margin < patch)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid SR config: {message}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> SRTrainConfig:
        """Return a copy with ``changes``, refusing unknown keys."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown SR config key(s) {unknown}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(cls, path: Path) -> SRTrainConfig:
        """Read a config saved by :meth:`save`."""
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read SR config ({exc})") from None
        return cls().replace(**values)
