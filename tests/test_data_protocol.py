"""The missing-rate protocol drops exactly int(L * rate) points per channel, reproducibly."""

import numpy as np
import pytest
import torch

from neuralsde.data import IrregularBatch, drop_points, stratified_split


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 0.7])
def test_drop_points_removes_exactly_int_l_rate_per_channel(rate):
    values = torch.randn(6, 37, 4, generator=torch.Generator().manual_seed(0))
    out = drop_points(values, rate, seed=1)
    per_channel = torch.isnan(out).sum(dim=1)
    assert torch.equal(per_channel, torch.full((6, 4), int(37 * rate)))
    kept = ~torch.isnan(out)
    assert torch.equal(out[kept], values[kept])  # observed values are untouched


def test_same_seed_drops_same_points_and_other_seeds_differ():
    values = torch.zeros(5, 50, 3)
    a = torch.isnan(drop_points(values, 0.5, seed=7))
    b = torch.isnan(drop_points(values, 0.5, seed=7))
    c = torch.isnan(drop_points(values, 0.5, seed=8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(
        torch.isnan(drop_points(values, 0.3, generator=g1)),
        torch.isnan(drop_points(values, 0.3, generator=g2)),
    )


def test_same_points_across_channels_option_and_ragged_lengths():
    b = IrregularBatch.from_arrays(
        [np.arange(10.0), np.arange(4.0)], [np.ones((10, 2)), np.ones((4, 2))]
    )
    dropped = b.drop(0.5, per_channel=False, seed=0)
    miss = torch.isnan(dropped.values)
    assert miss[0].sum(0).tolist() == [5, 5] and torch.equal(miss[0, :, 0], miss[0, :, 1])
    assert miss[1, :4].sum(0).tolist() == [2, 2]  # int(4 * 0.5) within the series' own length


def test_dropped_positions_are_uniform_over_time():
    # each position is dropped with probability rate; check with a binomial standard error
    hits = torch.isnan(drop_points(torch.zeros(4000, 10, 1), 0.3, seed=0)).float().mean(0)[:, 0]
    se = np.sqrt(0.3 * 0.7 / 4000)
    assert (hits - 0.3).abs().max().item() < 4.5 * se


def test_stratified_split_keeps_class_proportions():
    labels = np.repeat([0, 1, 2], [100, 60, 40])
    tr, va, te = stratified_split(labels, seed=0)
    assert (len(tr), len(va), len(te)) == (140, 30, 30)
    assert np.intersect1d(tr, te).size == 0 and np.union1d(np.union1d(tr, va), te).size == 200
    for part in (tr, va, te):
        frac = np.bincount(labels[part], minlength=3) / len(part)
        np.testing.assert_allclose(frac, [0.5, 0.3, 0.2], atol=0.04)
    again = stratified_split(labels, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip((tr, va, te), again, strict=True))


def test_protocol_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"rate must lie in \[0, 1\), got 1.0"):
        drop_points(torch.zeros(1, 3, 1), 1.0)
    with pytest.raises(ValueError, match=r"values must be a tensor of shape \(B, L, C\)"):
        drop_points(torch.zeros(3, 1), 0.1)
    with pytest.raises(ValueError, match=r"fractions must be 3 non-negative numbers summing to 1"):
        stratified_split(10, fractions=(0.5, 0.5, 0.5))
