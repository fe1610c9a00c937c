"""Tests for pixcolor.ab_bins: quantisation, annealed-mean decoding, class rebalancing."""

from __future__ import annotations

import pytest
import torch

from pixcolor.ab_bins import ABQuantizer


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="module")
def grid() -> ABQuantizer:
    return ABQuantizer(bin_size=10.0)


@pytest.fixture(scope="module")
def subset(grid: ABQuantizer) -> ABQuantizer:
    """A non-grid quantizer: every third grid centre (exercises the generic search)."""
    return ABQuantizer(10.0, centers=grid.centers[::3].clone())


def _centres_as_image(q: ABQuantizer) -> torch.Tensor:
    return q.centers.T.reshape(1, 2, q.num_bins, 1)  # (1, 2, Q, 1)


def test_grid_layout(grid: ABQuantizer) -> None:
    assert grid.num_bins == 23 * 23
    assert grid.centers.shape == (529, 2)
    assert grid.centers.abs().max().item() == pytest.approx(1.0)
    assert (grid.centers == 0).all(dim=1).any(), "neutral grey must be a centre"
    assert ABQuantizer(bin_size=20.0).num_bins == 11 * 11  # (5 + 1/2) * 20 >= 110


@pytest.mark.parametrize("name", ["grid", "subset"])
def test_encode_decode_roundtrip_of_centres(name: str, request: pytest.FixtureRequest) -> None:
    q: ABQuantizer = request.getfixturevalue(name)
    idx = q.encode(_centres_as_image(q))
    assert idx.dtype == torch.int64 and idx.shape == (1, q.num_bins, 1)
    assert torch.equal(idx.flatten(), torch.arange(q.num_bins))
    assert torch.equal(q.centers[idx.flatten()], q.centers)
    ab = q.decode(q.one_hot(idx) * 100.0, temperature=0.38)
    torch.testing.assert_close(ab, _centres_as_image(q), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["grid", "subset"])
def test_encode_is_nearest_centre(name: str, request: pytest.FixtureRequest, gen) -> None:
    q: ABQuantizer = request.getfixturevalue(name)
    ab = torch.rand(2, 2, 8, 8, generator=gen) * 2.2 - 1.1  # a little out of range too
    idx = q.encode(ab)
    pix = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    dist = torch.cdist(pix.double(), q.centers.double())
    chosen = dist.gather(1, idx.reshape(-1, 1)).squeeze(1)
    torch.testing.assert_close(chosen, dist.min(1).values, atol=1e-6, rtol=0)


def test_decode_small_temperature_gives_mode(grid: ABQuantizer, gen) -> None:
    logits = torch.randn(2, grid.num_bins, 3, 5, generator=gen)
    peak = torch.randint(0, grid.num_bins, (2, 3, 5), generator=gen)
    logits = logits + 8.0 * grid.one_hot(peak)  # clearly the most likely bin
    ab = grid.decode(logits, temperature=0.01)
    expected = grid.centers[peak].permute(0, 3, 1, 2)
    torch.testing.assert_close(ab, expected, atol=1e-5, rtol=0)


def test_decode_temperature_one_is_mean(grid: ABQuantizer, gen) -> None:
    logits = torch.randn(2, grid.num_bins, 4, 4, generator=gen) * 3
    p = torch.softmax(logits, dim=1)
    expected = (p.unsqueeze(2) * grid.centers.reshape(1, -1, 2, 1, 1)).sum(1)
    torch.testing.assert_close(grid.decode(logits, temperature=1.0), expected)
    assert grid.decode(logits, temperature=1.0).abs().max() <= 1.0


def test_lower_temperature_moves_towards_mode(grid: ABQuantizer, gen) -> None:
    logits = torch.randn(1, grid.num_bins, 1, 1, generator=gen) * 2
    mode = grid.centers[logits.flatten().argmax()].reshape(1, 2, 1, 1)
    errs = [(grid.decode(logits, t) - mode).norm().item() for t in (1.0, 0.38, 0.1)]
    assert errs[0] > errs[1] > errs[2]


def test_decode_rejects_bad_input(grid: ABQuantizer) -> None:
    with pytest.raises(ValueError, match="logits"):
        grid.decode(torch.zeros(1, 3, 2, 2), 0.38)
    with pytest.raises(ValueError, match="temperature"):
        grid.decode(torch.zeros(1, grid.num_bins, 2, 2), 0.0)
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        grid.encode(torch.zeros(1, 3, 2, 2))


def test_soft_encode(grid: ABQuantizer, gen) -> None:
    ab = torch.rand(2, 2, 4, 4, generator=gen) * 2 - 1
    soft = grid.soft_encode(ab, k=5, sigma=5.0)
    assert soft.shape == (2, grid.num_bins, 4, 4)
    torch.testing.assert_close(soft.sum(1), torch.ones(2, 4, 4))
    assert ((soft > 0).sum(1) <= 5).all()
    assert torch.equal(soft.argmax(1), grid.encode(ab))


def test_empirical_prior_counts(grid: ABQuantizer, gen) -> None:
    batches = [torch.rand(2, 2, 4, 4, generator=gen) * 0.4 - 0.2 for _ in range(3)]
    counts = grid.empirical_prior(batches)
    assert counts.shape == (grid.num_bins,)
    assert counts.sum().item() == 3 * 2 * 4 * 4
    torch.testing.assert_close(counts, sum(grid.empirical_prior(b) for b in batches))


def test_from_data_keeps_seen_bins(grid: ABQuantizer) -> None:
    centres = grid.centers[[10, 264, 300]]  # 264 is neutral grey
    ab = centres.T.reshape(1, 2, 3, 1).repeat(1, 1, 1, 2)  # each seen twice
    ab[0, :, 2, 1] = grid.centers[301]  # bin 300 seen once, bin 301 once
    q = ABQuantizer.from_data(ab, bin_size=10.0, min_count=2)
    torch.testing.assert_close(q.centers, grid.centers[[10, 264]])
    assert ABQuantizer.from_data([ab], bin_size=10.0, min_count=1).num_bins == 4
    with pytest.raises(ValueError, match="no bin"):
        ABQuantizer.from_data(ab, min_count=100)


@pytest.mark.parametrize("sigma", [None, 5.0])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_class_weights_normalised(grid: ABQuantizer, gen, sigma, lam) -> None:
    prior = torch.rand(grid.num_bins, generator=gen).double() * 100 + 1
    p = grid.smooth_prior(prior, sigma)
    w = grid.class_weights(prior, lam=lam, sigma=sigma)
    assert w.shape == (grid.num_bins,) and w.dtype == torch.float32
    assert (p * w.double()).sum().item() == pytest.approx(1.0, abs=1e-5)
    if lam == 1.0:
        torch.testing.assert_close(w, torch.ones_like(w))


def test_class_weights_favour_rare_colours(grid: ABQuantizer) -> None:
    prior = torch.ones(grid.num_bins)
    prior[264] = 1000.0  # grey dominates, as in real photos
    w = grid.class_weights(prior, lam=0.5, sigma=None)
    assert w[264] < w[0]
    with pytest.raises(ValueError, match="lam"):
        grid.class_weights(prior, lam=1.5)


def test_smooth_prior_keeps_mass(grid: ABQuantizer) -> None:
    prior = torch.zeros(grid.num_bins)
    prior[264] = 4.0
    p = grid.smooth_prior(prior, sigma=5.0)
    assert p.sum().item() == pytest.approx(1.0)
    assert p.argmax().item() == 264 and p[264] < 1.0  # spread to the neighbours
    with pytest.raises(ValueError, match="prior"):
        grid.smooth_prior(torch.zeros(grid.num_bins))
