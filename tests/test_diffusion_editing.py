"""SDEdit (issue 16, item 2): with the exact score of Gaussian data the edits have the closed-form
law of ``x_0`` given the guide noised to ``t0``; masked edits keep the unmasked region; bad
input is named."""

import math

import pytest
import torch

from neuralsde.diffusion import VPSDE, GaussianMixture
from neuralsde.diffusion.editing import edit

SDE = VPSDE()
M = torch.tensor([1.0, -0.5], dtype=torch.float64)
S = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
DATA = GaussianMixture([1.0], [M.tolist()], [S.tolist()])
GUIDE = torch.tensor([[2.0, 2.0]], dtype=torch.float64)


def _exact_law(t0):
    """Edits of ``GUIDE``: ``x_t0 ~ N(alpha g, sigma^2 I)``, then ``x_0 | x_t0`` exactly, so
    ``x_0 ~ N(m + a^2 S Sig^-1 (g - m), S - a^2 S Sig^-1 S + a^2 s^2 S Sig^-2 S)`` with
    ``Sig = a^2 S + s^2 I``."""
    t = torch.tensor(t0, dtype=torch.float64)
    a, s = SDE.alpha(t), SDE.sigma(t)
    inv = torch.linalg.inv(a**2 * S + s**2 * torch.eye(2, dtype=torch.float64))
    mean = M + a**2 * S @ inv @ (GUIDE[0] - M)
    cov = S - a**2 * S @ inv @ S + a**2 * s**2 * S @ inv @ inv @ S
    return mean, cov


@pytest.mark.parametrize("t0", [0.2, 0.5, 0.9])
def test_edits_of_gaussian_data_have_the_closed_form_law(t0):
    n = 4000
    out = edit(DATA.score_fn(SDE), SDE, GUIDE, t0, repeats=n, steps=800,
               generator=torch.Generator().manual_seed(0))[:, 0]  # fmt: skip
    mean, cov = _exact_law(t0)
    se = (cov.diagonal() / n).sqrt()
    assert bool(((out.mean(0) - mean).abs() < 4 * se).all()), (out.mean(0), mean)
    cov_se = cov.diagonal().max() * math.sqrt(2 / n)
    assert float((torch.cov(out.T) - cov).abs().max()) < 4 * cov_se + 0.005
    # faithfulness falls with t0: the edits' mean moves from the guide to the data mean
    assert float((mean - GUIDE[0]).norm()) > 0.1


def test_a_masked_edit_keeps_the_unmasked_region():
    guide = torch.tensor([[2.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
    mask = torch.tensor([True, False])  # regenerate coordinate 0, keep coordinate 1
    out = edit(DATA.score_fn(SDE), SDE, guide, 0.8, mask=mask, repeats=200, steps=200,
               generator=torch.Generator().manual_seed(1))  # fmt: skip
    kept = out[..., 1] - guide[:, 1]
    assert float(kept.abs().max()) < 1e-6
    assert float((out[..., 0] - guide[:, 0]).abs().mean()) > 0.1  # the masked part moved


def test_bad_input_is_named():
    score = DATA.score_fn(SDE)
    for t0 in (0.0, -0.5, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="t0 must lie in"):
            edit(score, SDE, GUIDE, t0)
    with pytest.raises(ValueError, match="mask must be boolean of shape"):
        edit(score, SDE, GUIDE, 0.5, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be boolean of shape"):
        edit(score, SDE, GUIDE, 0.5, mask=torch.ones(2))
    with pytest.raises(ValueError, match="repeats must be"):
        edit(score, SDE, GUIDE, 0.5, repeats=0)
    with pytest.raises(ValueError, match="guide"):
        edit(score, SDE, torch.tensor([[float("nan"), 0.0]]), 0.5)
