"""Join EffUNet colorizers that share one frozen encoder into one ensemble model.

Decoders trained with ``--freeze-encoder`` on the same ImageNet encoder differ only in their
decoder and head. Averaging their ab predictions lowers the variance of single runs (each seed
paints different wrong colours) at the cost of one more decoder pass per member; the encoder
runs once. The result is an :class:`~pixcolor.models.effunet.EffUNet` with ``members=N``.

Example:
    >>> a, b = EffUNet(head="bins"), EffUNet(head="bins")
    >>> b.encoder.load_state_dict(a.encoder.state_dict())
    <All keys matched successfully>
    >>> len(assemble([a, b], {"head": "bins"}).decoders())
    2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from pixcolor.errors import PixcolorError
from pixcolor.models.effunet import EffUNet

__all__ = ["assemble"]


def assemble(
    models: Sequence[EffUNet], kwargs: Mapping[str, Any], names: Sequence[str] | None = None
) -> EffUNet:
    """One ensemble of ``models``, member ``i`` taking the decoder and head of ``models[i]``.

    Args:
        models: two or more single-member EffUNets with bit-identical encoders (and bin
            centres for ``head="bins"``), built with the same ``kwargs``.
        kwargs: their constructor arguments (temperature and chroma gain apply to the ensemble).
        names: what error messages call each model (default ``model 1``, ``model 2``, ...).

    Returns:
        An fp32 ``EffUNet(**kwargs, members=len(models))`` in eval mode, on the CPU.

    Raises:
        PixcolorError: fewer than two models, a model that is already an ensemble or not an
            EffUNet, or an encoder (or bin centres) that differs from the first model's; the
            message names the model.
    """
    if len(models) < 2:
        raise PixcolorError(f"an ensemble needs two or more models, got {len(models)}")
    names = list(names) if names is not None else [f"model {i + 1}" for i in range(len(models))]
    first = models[0]
    for name, model in zip(names, models, strict=True):
        if not isinstance(model, EffUNet) or model.more:
            raise PixcolorError(f"{name}: not a single EffUNet colorizer")
        for what, part in (("encoder weights", _encoder), ("bin centres", _centres)):
            a, b = part(first), part(model)
            if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
                raise PixcolorError(
                    f"{name}: its {what} differ from {names[0]}'s; only decoders trained on "
                    "one frozen encoder (pixcolor train --freeze-encoder) can be joined"
                )
    ensemble = EffUNet(**{**kwargs, "members": len(models)}).float()
    ensemble.encoder.load_state_dict(first.encoder.state_dict())
    if first.output_kind == "bins":
        ensemble.set_bin_centers(first.bin_centers.float())
    for (ups, head), model in zip(ensemble.decoders(), models, strict=True):
        ups.load_state_dict(model.ups.state_dict())
        head.load_state_dict(model.head.state_dict())
    return ensemble.eval()


def _encoder(model: EffUNet) -> dict[str, torch.Tensor]:
    return model.encoder.state_dict()


def _centres(model: EffUNet) -> dict[str, torch.Tensor]:
    return {"bin_centers": model.bin_centers} if model.output_kind == "bins" else {}
