"""Layers that let a decoder follow the user's colour hints (Zhang et al. 2017, on a frozen encoder).

A hint map is ``(B, 3, H, W)`` at the working size: the hinted ab_norm times the mask, then the
mask (1 where a hint is, else 0); :func:`pixcolor.hints.render_hints` builds it. Each decoder
stage of a hint-conditioned :class:`~pixcolor.models.effunet.EffUNet` receives six more
channels beside its skip connection:

- the hints pooled to the stage's grid (:func:`pixcolor.hints.pool_hints`): the mask-weighted
  mean ab of each cell and whether the cell holds a hint. Exact where the user clicked, but
  local.
- the hints spread by :class:`HintPropagation`: every cell attends to the hinted cells whose
  encoder features look like its own, so one click can colour the whole object under it.

Then :class:`HintHead` adds a direct path to the bin logits at the decoder's last grid: the
hinted colour (where a cell holds a hint) or the colour spread from the hints whose decoder
features match the cell's, as logits peaked at that colour's bin, times a learnt gate. The
network then has only to learn where to trust a hint, not how to turn ab into one of 529
bins, which the few hinted pixels of a training batch teach slowly.

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

from pixcolor.hints import pool_hints

__all__ = ["HINT_FEATURES", "HintHead", "HintPropagation", "widen_for_hints"]

HINT_FEATURES = 6  # channels each decoder stage receives: 3 pooled + 3 propagated


class HintPropagation(nn.Module):
    """Spread pooled hints to the cells that look alike (attention from every cell to the hints).

    Each cell's query meets the keys of the hinted cells only, plus a learnt "no hint" key; the
    output is the attention-weighted hint ab and the weight on hints (0 where nothing matched).
    The cost grows with the number of hinted cells, not with the square of the image.

    Args:
        channels: channels of the features it compares (the decoder's first stage input).
        dim: width of the queries and keys.
    """

    def __init__(
        self, channels: int, dim: int = 64, no_hint: float = 0.0, cosine: bool = False
    ) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, dim, 1)
        self.key = nn.Conv2d(channels, dim, 1)
        self.no_hint = nn.Parameter(torch.full((1,), float(no_hint)))
        self.dim = dim
        self.cosine = cosine
        if cosine:  # logits = scale * cos(q, k); "no hint" = scale * no_hint, a cosine
            self.log_scale = nn.Parameter(torch.tensor(math.log(20.0)))
            with torch.no_grad():
                for conv in (self.query, self.key):
                    conv.weight.zero_()
                    conv.weight[:, :, 0, 0].copy_(torch.eye(dim, channels))
                    conv.bias.zero_()

    def forward(self, features: Tensor, pooled: Tensor) -> Tensor:
        """Propagate ``pooled`` hints over ``features``.

        Args:
            features: ``(B, C, h, w)`` features of the image.
            pooled: ``(B, 3, h, w)`` hints on the same grid (:func:`pixcolor.hints.pool_hints`).

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
        q, k = q.float(), k.float()
        if self.cosine:
            q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
            scale = self.log_scale.float().exp()
        else:
            scale = 1.0 / math.sqrt(self.dim)
        logits = torch.einsum("bdn,bdk->bnk", q, k) * scale
        logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
        null = (self.no_hint.float() * (scale if self.cosine else 1.0)).expand(
            b, logits.shape[1], 1
        )
        weights = torch.softmax(torch.cat([logits, null], dim=2), dim=2)
        spread = torch.einsum("bnk,bck->bcn", weights[..., :-1], ab.float())  # (B, 2, N)
        out = torch.cat([spread, 1.0 - weights[..., -1:].transpose(1, 2)], dim=1)
        return out.view(b, 3, h, w).to(features.dtype)


class HintHead(nn.Module):
    """Hint colours added to the bin logits where a learnt gate trusts them.

    Args:
        channels: channels of the decoder features at the logits' grid.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Cosine similarity of the decoder's own features, from identity projections: at
        # first a hint reaches the cells whose features are within cosine 0.8 of its cell's
        # (the same stuff, as the trained decoder sees it); the gate starts open
        # (softplus(0) = 0.69).
        self.propagation = HintPropagation(channels, channels, no_hint=0.8, cosine=True)
        self.gate = nn.Conv2d(channels + 2, 1, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.log_width = nn.Parameter(torch.tensor(math.log(0.1)))  # ab_norm, ~11 Lab units

    def forward(self, features: Tensor, logits: Tensor, hints: Tensor, centers: Tensor) -> Tensor:
        """``logits (B, Q, h, w)`` plus the hints' own, on the grid of ``features (B, C, h, w)``.

        Args:
            features: decoder features at the logits' grid.
            logits: the bin logits there.
            hints: ``(B, 3, H, W)`` hint map at the working size.
            centers: ``(Q, 2)`` bin centres in ab_norm.
        """
        pooled = pool_hints(hints, tuple(logits.shape[-2:])).to(features.dtype)
        spread = self.propagation(features, pooled).float()
        has = pooled[:, 2:3].float()
        ab = has * pooled[:, :2].float() + (1 - has) * spread[:, :2]  # (B, 2, h, w)
        trust = torch.maximum(has, spread[:, 2:3])
        gate = F.softplus(self.gate(torch.cat([features.float(), trust, has], 1)))  # (B,1,h,w)
        d2 = (ab[:, None] - centers.float()[None, :, :, None, None]).pow(2).sum(2)  # (B,Q,h,w)
        width = self.log_width.exp()
        peaked = -d2 / (2 * width * width)
        return logits + (gate * trust * peaked.clamp_min(-50.0)).to(logits.dtype)


def widen_for_hints(model: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict for the hint-conditioned ``model`` from an unhinted model's ``state``.

    ``model`` is an :class:`~pixcolor.models.effunet.EffUNet` built with ``hints=True``.
    Every weight of ``state`` is kept; the hint input channels of each stage's first conv are
    zero and the hint layers keep ``model``'s own initial weights, so without hints the widened
    model colours as the unhinted one did, and with hints it starts by pulling the hinted cells
    to their colours.

    Raises:
        ValueError: ``model`` takes no hints, or ``state`` does not fit it otherwise.
    """
    if not getattr(model, "takes_hints", False):
        raise ValueError("widen_for_hints needs a model built with hints=True")
    out = {}
    for key, own in model.state_dict().items():
        theirs = state.get(key)
        if theirs is None and key.startswith(("hint_propagation.", "hint_head.")):
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
