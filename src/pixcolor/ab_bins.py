"""Quantised ab bins for colour classification (Zhang, Isola & Efros 2016).

"Colorful Image Colorization" (ECCV 2016) predicts a distribution over a grid of ab bins instead
of regressing ab directly, reweights rare colours in the loss ("class rebalancing") and decodes
the distribution with the *annealed mean* (a softmax at temperature ``T``, then the mean).

All ab values here are in the model's normalised units, ``ab_norm = ab / 110`` in [-1, 1];
``bin_size`` and ``sigma`` are in Lab units, as in the paper.

Example:
    >>> q = ABQuantizer(bin_size=10.0)
    >>> q.num_bins  # 23 x 23 centres at multiples of 10 from -110 to 110
    529
    >>> ab = torch.zeros(1, 2, 4, 4)
    >>> q.decode(q.one_hot(q.encode(ab)) * 50.0, temperature=0.38).abs().max().item()
    0.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from pixcolor.color import AB_SCALE  # ab_norm = ab / AB_SCALE (110)

__all__ = ["ABQuantizer"]

_CHUNK = 1 << 16  # pixels per block in nearest-centre searches: bounds the (N, Q) distance matrix


def _pixels(ab_norm: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
    """Validate ``(B, 2, H, W)``; return float32 pixels ``(B*H*W, 2)`` and ``(B, H, W)``."""
    if ab_norm.ndim != 4 or ab_norm.shape[1] != 2:
        raise ValueError(f"expected ab_norm of shape (B, 2, H, W), got {tuple(ab_norm.shape)}")
    b, _, h, w = ab_norm.shape
    return ab_norm.permute(0, 2, 3, 1).reshape(-1, 2).float(), (b, h, w)


def annealed_mean(logits: Tensor, centers: Tensor, temperature: float) -> Tensor:
    """``softmax(z / T)``-weighted mean of the bin centres (no checks; export-friendly).

    Args:
        logits: ``(B, Q, H, W)`` unnormalised scores.
        centers: ``(Q, 2)`` bin centres in ab_norm units.
        temperature: ``T > 0``.

    Returns:
        ``(B, 2, H, W)`` float32 ab_norm.
    """
    # log_softmax(z)/T differs from z/T by a per-pixel constant: same softmax.
    p = torch.softmax(logits.float() / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, centers.to(device=logits.device, dtype=p.dtype))


class ABQuantizer:
    """A set of ab bin centres with encoding, decoding and class-rebalancing helpers.

    By default the centres form a full square grid: multiples of ``bin_size`` from ``-n*bin_size``
    to ``+n*bin_size`` on each axis, with ``n`` the smallest count whose cells cover [-110, 110]
    (for 10 Lab units: 23 x 23 = 529 centres, neutral grey included). :meth:`from_data` keeps only
    the bins seen in data (Zhang's 313 "in-gamut" bins for ImageNet).

    Args:
        bin_size: Grid spacing in Lab units.
        centers: Explicit centres ``(Q, 2)`` in ab_norm units; overrides the grid when given.

    Attributes:
        centers: ``(Q, 2)`` float32 centres in ab_norm units, row ``q`` is bin ``q``.
        bin_size: Grid spacing in Lab units.
    """

    def __init__(self, bin_size: float = 10.0, centers: Tensor | None = None) -> None:
        if not bin_size > 0:
            raise ValueError(f"bin_size must be > 0, got {bin_size}")
        self.bin_size = float(bin_size)
        # Grid centres are k * bin_size, |k| <= n, with (n + 1/2) * bin_size >= 110.
        self._n = math.ceil(AB_SCALE / self.bin_size - 0.5)
        k = torch.arange(-self._n, self._n + 1, dtype=torch.float32) * self.bin_size / AB_SCALE
        a, b = torch.meshgrid(k, k, indexing="ij")  # grid bin index = ia * (2n + 1) + ib
        grid = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
        if centers is None:
            centers = grid
        if centers.ndim != 2 or centers.shape[1] != 2 or centers.shape[0] < 1:
            raise ValueError(f"centers must have shape (Q, 2), got {tuple(centers.shape)}")
        self.centers = centers.detach().to(torch.float32)
        # The full grid allows a fast nearest-centre search by rounding.
        self._is_grid = centers.shape == grid.shape and torch.equal(self.centers.cpu(), grid)

    @classmethod
    def from_data(
        cls,
        ab_norm_samples: Tensor | Iterable[Tensor],
        bin_size: float = 10.0,
        min_count: int = 1,
    ) -> ABQuantizer:
        """Keep the grid bins that hold at least ``min_count`` pixels of the samples.

        Args:
            ab_norm_samples: ``(B, 2, H, W)`` ab_norm in [-1, 1], or an iterable of such batches.
            bin_size: Grid spacing in Lab units.
            min_count: Minimum number of pixels for a bin to be kept.

        Returns:
            A quantizer whose centres are the kept grid centres, in grid order.
        """
        grid = cls(bin_size)
        keep = grid.empirical_prior(ab_norm_samples) >= min_count
        if not keep.any():
            raise ValueError(f"no bin holds {min_count} or more pixels of the samples")
        return cls(bin_size, centers=grid.centers[keep])

    @property
    def num_bins(self) -> int:
        """Number of bins ``Q``."""
        return self.centers.shape[0]

    def _sq_dist(self, x: Tensor) -> Tensor:
        """Squared distances ``(N, Q)`` between pixels ``(N, 2)`` and the centres (ab_norm)."""
        c = self.centers.to(x.device)
        return (x.square().sum(1, keepdim=True) - 2.0 * x @ c.T + c.square().sum(1)).clamp_min(0)

    def encode(self, ab_norm: Tensor) -> Tensor:
        """Index of the nearest bin centre of every pixel.

        Args:
            ab_norm: ``(B, 2, H, W)`` ab / 110, nominally in [-1, 1].

        Returns:
            ``(B, H, W)`` int64 bin indices in ``[0, Q)``.
        """
        x, shape = _pixels(ab_norm)
        if self._is_grid:  # nearest on a square grid = per-axis rounding
            k = torch.round(x * (AB_SCALE / self.bin_size)).clamp(-self._n, self._n).long()
            k = k + self._n
            idx = k[:, 0] * (2 * self._n + 1) + k[:, 1]
        else:
            idx = torch.cat([self._sq_dist(c).argmin(1) for c in x.split(_CHUNK)])
        return idx.view(shape)

    def one_hot(self, index: Tensor) -> Tensor:
        """One-hot maps ``(B, Q, H, W)`` float32 of bin indices ``(B, H, W)``."""
        return F.one_hot(index, self.num_bins).permute(0, 3, 1, 2).float()

    def soft_encode(self, ab_norm: Tensor, k: int = 5, sigma: float = 5.0) -> Tensor:
        """Zhang's soft targets: Gaussian weights on the ``k`` nearest centres.

        Args:
            ab_norm: ``(B, 2, H, W)`` ab / 110.
            k: Number of nearest centres that share each pixel's mass.
            sigma: Gaussian width in Lab units.

        Returns:
            ``(B, Q, H, W)`` float32 distributions (each pixel sums to 1).
        """
        x, shape = _pixels(ab_norm)
        k = min(k, self.num_bins)
        out = []
        for chunk in x.split(_CHUNK):
            d2, idx = self._sq_dist(chunk).topk(k, dim=1, largest=False)
            wts = torch.softmax(-d2 * (AB_SCALE**2 / (2.0 * sigma**2)), dim=1)  # normalised
            target = torch.zeros(chunk.shape[0], self.num_bins, device=x.device)
            out.append(target.scatter_(1, idx, wts))
        return torch.cat(out).view(*shape, -1).permute(0, 3, 1, 2)

    def decode(self, logits: Tensor, temperature: float = 0.38) -> Tensor:
        """Annealed mean: ``softmax(log_softmax(z) / T)``-weighted mean of the centres.

        ``T = 1`` gives the mean of the predicted distribution; ``T -> 0`` approaches its mode.
        Zhang et al. use ``T = 0.38``. Computed in float32 (safe under autocast).

        Args:
            logits: ``(B, Q, H, W)`` unnormalised scores.
            temperature: ``T > 0``.

        Returns:
            ``(B, 2, H, W)`` float32 ab_norm, a convex combination of the centres.
        """
        if logits.ndim != 4 or logits.shape[1] != self.num_bins:
            raise ValueError(
                f"expected logits (B, {self.num_bins}, H, W), got {tuple(logits.shape)}"
            )
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        return annealed_mean(logits, self.centers, temperature)

    def empirical_prior(self, ab_norm: Tensor | Iterable[Tensor]) -> Tensor:
        """Pixel counts per bin.

        Args:
            ab_norm: ``(B, 2, H, W)`` ab / 110, or an iterable of such batches.

        Returns:
            ``(Q,)`` float64 counts on the CPU.
        """
        batches = [ab_norm] if isinstance(ab_norm, Tensor) else ab_norm
        counts = torch.zeros(self.num_bins, dtype=torch.float64)
        for batch in batches:
            idx = self.encode(batch).reshape(-1).cpu()
            counts += torch.bincount(idx, minlength=self.num_bins).double()
        return counts

    def smooth_prior(self, prior: Tensor, sigma: float | None = 5.0) -> Tensor:
        """Normalise a prior and optionally blur it with a Gaussian in ab space.

        Each bin's mass is spread over the centres with weights ``exp(-d^2 / 2 sigma^2)``
        normalised per source bin, so the total mass is kept (Zhang smooth with sigma = 5).

        Args:
            prior: ``(Q,)`` non-negative counts or probabilities.
            sigma: Gaussian width in Lab units; ``None`` or 0 skips the blur.

        Returns:
            ``(Q,)`` float64 probabilities ``p~`` summing to 1.
        """
        if prior.shape != (self.num_bins,) or (prior < 0).any() or prior.sum() <= 0:
            raise ValueError(f"prior must be ({self.num_bins},) non-negative with positive sum")
        p = prior.double().cpu()
        p = p / p.sum()
        if sigma:
            c = self.centers.double().cpu() * AB_SCALE  # p is on the CPU
            kernel = torch.exp(-torch.cdist(c, c).square() / (2.0 * sigma**2))  # (Q, Q) symmetric
            p = (kernel / kernel.sum(0, keepdim=True)) @ p  # column j spreads bin j's mass
        return p / p.sum()

    def class_weights(self, prior: Tensor, lam: float = 0.5, sigma: float | None = 5.0) -> Tensor:
        """Zhang's rebalancing weights ``w ∝ ((1 - lam) p~ + lam / Q)^-1`` with ``sum p~ w = 1``.

        Args:
            prior: ``(Q,)`` counts or probabilities, e.g. from :meth:`empirical_prior`.
            lam: Mix with the uniform distribution in [0, 1]; 0.5 in the paper.
            sigma: Gaussian smoothing of the prior in Lab units (see :meth:`smooth_prior`).

        Returns:
            ``(Q,)`` float32 weights, to use as ``weight=`` of a cross-entropy.
        """
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {lam}")
        p = self.smooth_prior(prior, sigma)
        w = 1.0 / ((1.0 - lam) * p + lam / self.num_bins)
        return (w / (p * w).sum()).float()

    def to(self, device: torch.device | str) -> ABQuantizer:
        """Return a quantizer with the same centres on ``device``."""
        return ABQuantizer(self.bin_size, centers=self.centers.to(device))
