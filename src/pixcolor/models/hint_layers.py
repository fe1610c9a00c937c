"""Layers that let a decoder follow the user's colour hints (Zhang et al. 2017, on a frozen encoder).

A hint map is ``(B, 3, H, W)`` at the working size: the hinted ab_norm times the mask, then the
mask (1 where a hint is, else 0); :func:`pixcolor.hints.render_hints` builds it. Each decoder
stage of a hint-conditioned :class:`~pixcolor.models.effunet.EffUNet` receives six more
channels beside its skip connection:

- the hints pooled to the stage's grid (:func:`pool_hints`): the mask-weighted mean ab of each
  cell and whether the cell holds a hint. Exact where the user clicked, but local.
- the hints spread by :class:`HintPropagation`: every cell attends to the hinted cells whose
  encoder features look like its own, so one click can colour the whole object under it.

Example:
    >>> hints = torch.zeros(1, 3, 64, 64); hints[:, :, 10, 20] = torch.tensor([0.5, -0.2, 1.0])
    >>> pool_hints(hints, (4, 4)).shape
    torch.Size([1, 3, 4, 4])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HINT_FEATURES", "HintPropagation", "pool_hints", "widen_for_hints"]

HINT_FEATURES = 6  # channels each decoder stage receives: 3 pooled + 3 propagated


def pool_hints(hints: Tensor, size: tuple[int, int]) -> Tensor:
    """A hint map pooled to ``size``: mean ab over each cell's hinted pixels, and a 0/1 mask.

    Args:
        hints: ``(B, 3, H, W)``: ab_norm times mask, then the mask in {0, 1}.
        size: ``(h, w)`` of the grid.

    Returns:
        ``(B, 3, h, w)``: ab_norm (0 where no hint) and 1 where the cell holds a hinted pixel.
    """
    pooled = F.adaptive_avg_pool2d(hints.float(), size)
    mass = pooled[:, 2:3]
    has = (mass > 0).to(pooled.dtype)
    ab = pooled[:, :2] / mass.clamp_min(1e-8) * has
    return torch.cat([ab, has], dim=1)


class HintPropagation(nn.Module):
    """Spread pooled hints to the cells that look alike (attention from every cell to the hints).

    Each cell's query meets the keys of the hinted cells only, plus a learnt "no hint" key; the
    output is the attention-weighted hint ab and the weight on hints (0 where nothing matched).
    The cost grows with the number of hinted cells, not with the square of the image.

    Args:
        channels: channels of the features it compares (the decoder's first stage input).
        dim: width of the queries and keys.
    """

    def __init__(self, channels: int, dim: int = 64) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, dim, 1)
        self.key = nn.Conv2d(channels, dim, 1)
        self.no_hint = nn.Parameter(torch.zeros(1))
        self.dim = dim

    def forward(self, features: Tensor, pooled: Tensor) -> Tensor:
        """Propagate ``pooled`` hints over ``features``.

        Args:
            features: ``(B, C, h, w)`` features of the image.
            pooled: ``(B, 3, h, w)`` hints on the same grid (:func:`pool_hints`).

        Returns:
            ``(B, 3, h, w)``: propagated ab_norm and the weight on hints, in [0, 1].
        """
        b, _, h, w = features.shape
        has = pooled[:, 2].flatten(1)  # (B, N)
        count = int(has.sum(1).max().item()) if has.numel() else 0
        if count == 0:
            return torch.zeros(b, 3, h, w, dtype=features.dtype, device=features.device)
        order = torch.topk(has, count, dim=1).indices  # (B, K) hinted cells first
        valid = torch.gather(has, 1, order) > 0  # (B, K)
        q = self.query(features).flatten(2)  # (B, D, N)
        k = torch.gather(self.key(features).flatten(2), 2, order[:, None].expand(-1, self.dim, -1))
        ab = torch.gather(pooled[:, :2].flatten(2), 2, order[:, None].expand(-1, 2, -1))
        logits = torch.einsum("bdn,bdk->bnk", q.float(), k.float()) / math.sqrt(self.dim)
        logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
        null = self.no_hint.float().expand(b, logits.shape[1], 1)
        weights = torch.softmax(torch.cat([logits, null], dim=2), dim=2)
        spread = torch.einsum("bnk,bck->bcn", weights[..., :-1], ab.float())  # (B, 2, N)
        out = torch.cat([spread, 1.0 - weights[..., -1:].transpose(1, 2)], dim=1)
        return out.view(b, 3, h, w).to(features.dtype)


def widen_for_hints(model: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict for the hint-conditioned ``model`` from an unhinted model's ``state``.

    ``model`` is an :class:`~pixcolor.models.effunet.EffUNet` built with ``hints=True``.
    Every weight of ``state`` is kept; the hint input channels of each stage's first conv are
    zero and the propagation layer keeps ``model``'s own initial weights, so the widened model
    colours exactly as the unhinted one until it is trained with hints.

    Raises:
        ValueError: ``model`` takes no hints, or ``state`` does not fit it otherwise.
    """
    if not getattr(model, "takes_hints", False):
        raise ValueError("widen_for_hints needs a model built with hints=True")
    out = {}
    for key, own in model.state_dict().items():
        theirs = state.get(key)
        if theirs is None and key.startswith("hint_propagation."):
            out[key] = own
        elif theirs is not None and theirs.shape == own.shape:
            out[key] = theirs
        elif (
            theirs is not None
            and theirs.shape[1:] != own.shape[1:]
            and theirs.ndim == 4
            and (theirs.shape[1] + HINT_FEATURES == own.shape[1])
        ):
            out[key] = torch.cat([theirs, theirs.new_zeros(own.shape[0], HINT_FEATURES,
                                                           *own.shape[2:])], 1)  # fmt: skip
        else:
            found = "missing" if theirs is None else f"shape {tuple(theirs.shape)}"
            raise ValueError(f"{key}: {found}, the hint model needs {tuple(own.shape)}")
    return out
