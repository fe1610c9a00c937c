"""Several working sizes averaged: a colorizer's colours from more than one look at a photo.

A colorizer sees each photo at its working size (:mod:`pixcolor.working_size`). Seen larger,
the same network resolves finer objects and its colours spread more; averaging the predictions
of two sizes gains more than either alone (the default's six decoders at 224 and 352 px: +0.09
dB at equal colour spread on 200 held-out training photos; MODEL_CARD.md). A model lists its
further sizes in ``config.json`` as ``"extra_sizes": [352]``; :func:`average_sizes` predicts at
each, resamples the ab to the main working size's grid (bilinear) and averages. It applies only
where a caller leaves the working size to the model: an explicit ``size`` is one look.

Example:
    >>> extra_sizes({"size": 224, "extra_sizes": [352]})
    (352,)
    >>> extra_sizes({"size": 224})
    ()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pixcolor.models.model_config import check_extra_sizes

if TYPE_CHECKING:
    from pixcolor.pipeline import Colorizer

__all__ = ["average_sizes", "extra_sizes"]


def extra_sizes(config: Mapping[str, Any]) -> tuple[int, ...]:
    """The further working sizes a model config names (``extra_sizes``; none: ``()``).

    Raises:
        ConfigError: not a list of at most four working sizes (one line, naming the field).
    """
    return tuple(check_extra_sizes(config.get("extra_sizes", []), "model config: extra_sizes"))


def average_sizes(
    model: Colorizer,
    rgbs: Sequence[np.ndarray],
    abs_: Sequence[Tensor],
    *,
    stochastic: bool = False,
) -> list[Tensor]:
    """Each photo's ab averaged with the model's predictions at its ``extra_sizes``.

    Args:
        model: the colorizer (its ``extra_sizes``; none: ``abs_`` comes back as it is).
        rgbs: the photos, ``(H, W, 3)`` uint8; only their luminance is used.
        abs_: ab ``(2, h, w)`` in Lab units that ``model`` predicted for each photo at its main
            working size.
        stochastic: dropout on (models with dropout only), as for the main prediction.

    Returns:
        One ab ``(2, h, w)`` per photo, in Lab units, on the grid of the matching ``abs_``:
        the mean of the main prediction and one per extra size, each resampled bilinearly.
    """
    if len(rgbs) != len(abs_):
        raise ValueError(f"{len(rgbs)} photos for {len(abs_)} predictions")
    if not model.extra_sizes:
        return list(abs_)
    sums = [ab.float().clone() for ab in abs_]
    for size in model.extra_sizes:
        smalls = [model.working_l(rgb, size) for rgb in rgbs]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, small in enumerate(smalls):  # photos of one shape run as one batch
            groups.setdefault(tuple(small.shape[-2:]), []).append(i)
        for idx in groups.values():
            ab = model.predict_ab(torch.cat([smalls[i] for i in idx]), stochastic=stochastic)
            for j, i in enumerate(idx):
                sums[i] += F.interpolate(
                    ab[j : j + 1], size=sums[i].shape[-2:], mode="bilinear", align_corners=False
                )[0]
    return [s / (1 + len(model.extra_sizes)) for s in sums]
