"""The Itô density estimator along a sampling path and SuperDiff's superposition (issue 17,
item 1), against exact Gaussian-mixture densities."""

import math

import pytest
import torch

from neuralsde.diffusion import VESDE, VPSDE, GaussianMixture, mmd2, noise_floor, sample
from neuralsde.diffusion.density import superpose

SDE = VPSDE()


class Exact:
    """The exact score of a mixture under ``sde``, carrying the SDE as a trained model does."""

    def __init__(self, gm, sde=SDE):
        self.gm, self.sde = gm, sde

    def __call__(self, x, t):
        return self.gm.score(x, self.sde, t)


def _errors(gm, steps, n=2000, seed=0):
    x, logp, info = sample(
        Exact(gm),
        SDE,
        (n, gm.dim),
        method="euler",
        steps=steps,
        denoise=False,
        dtype=torch.float64,
        return_logp=True,
        return_info=True,
        generator=torch.Generator().manual_seed(seed),
    )
    exact = gm.log_prob(x, SDE, torch.full((n,), SDE.eps))
    return logp - exact, info["nfe"]


def test_ito_log_density_converges_to_the_exact_one_at_euler_maruyamas_orders():
    """The estimate's error along Euler-Maruyama paths: its mean falls at weak order 1 and
    its spread at strong order 1/2 (4x the steps: 4x and 2x smaller), and it costs the
    sampler's own score evaluations (one per step)."""
    gm = GaussianMixture.default_2d()
    e400, nfe400 = _errors(gm, 400)
    e1600, nfe1600 = _errors(gm, 1600)
    assert (nfe400, nfe1600) == (400, 1600)
    bias_ratio = float(e400.mean() / e1600.mean())
    spread_ratio = float(e400.std() / e1600.std())
    assert 2.5 < bias_ratio < 6.5, bias_ratio
    assert 1.6 < spread_ratio < 2.5, spread_ratio
    se = float(e1600.std()) / math.sqrt(e1600.numel())
    assert abs(float(e1600.mean())) < 0.05 + 3 * se
    assert float(e1600.std()) < 0.4


def test_return_logp_refuses_samplers_whose_noise_is_not_the_forward_diffusion():
    gm = GaussianMixture.default_2d()
    for method in ("ode", "ddim", "dpmpp_2m", "pc", "heun_edm"):
        with pytest.raises(ValueError, match=f"return_logp: method='{method}'"):
            sample(Exact(gm), SDE, (4, 2), method=method, steps=4, return_logp=True)


def _halves():
    gm = GaussianMixture.default_2d()
    w = gm.weights
    a = GaussianMixture(w[:2] / w[:2].sum(), gm.means[:2], gm.covs[:2])
    b = GaussianMixture(w[2:] / w[2:].sum(), gm.means[2:], gm.covs[2:])
    return gm, a, b, torch.log(torch.stack([w[:2].sum(), w[2:].sum()]))


def test_or_superposition_of_two_halves_samples_the_whole_mixture():
    gm, a, b, log_w = _halves()
    score = superpose([Exact(a), Exact(b)], "or", bias=log_w)
    x = sample(score, SDE, (2000, 2), method="euler", steps=500, dtype=torch.float64,
               generator=torch.Generator().manual_seed(1))  # fmt: skip
    floor, spread = noise_floor(gm.sample, n=2000, repeats=10)
    assert float(mmd2(x, gm.sample(2000, torch.Generator().manual_seed(2)))) < floor + 3 * spread
    # one half alone is far from it: the statistic can fail
    alone = sample(Exact(a), SDE, (2000, 2), method="euler", steps=500, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert float(mmd2(alone, gm.sample(2000, torch.Generator().manual_seed(2)))) > 0.05


def test_and_superposition_concentrates_where_both_densities_are_high():
    """N((-1, 0), I/2) AND N((1, 0), I/2): the samples sit where the two densities are equal
    and high; their mean log(q1 q2) is the exact product density's (N(0, I/4)) expectation,
    far above the OR samples'."""
    cov = [[0.5, 0.0], [0.0, 0.5]]
    q1 = GaussianMixture([1.0], [[-1.0, 0.0]], [cov])
    q2 = GaussianMixture([1.0], [[1.0, 0.0]], [cov])
    product = GaussianMixture([1.0], [[0.0, 0.0]], [[[0.25, 0.0], [0.0, 0.25]]])

    def draw(mode):
        return sample(superpose([Exact(q1), Exact(q2)], mode), SDE, (2000, 2), method="euler",
                      steps=500, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(1))  # fmt: skip

    def both(x):
        return q1.log_prob(x) + q2.log_prob(x)

    x_and, x_or = draw("and"), draw("or")
    expected = both(product.sample(20_000, torch.Generator().manual_seed(3)))
    se = float(both(x_and).std()) / math.sqrt(2000) + float(expected.std()) / math.sqrt(20_000)
    assert abs(float(both(x_and).mean() - expected.mean())) < 0.1 + 4 * se
    assert float(both(x_and).mean()) > float(both(x_or).mean()) + 2.0
    assert float((q1.log_prob(x_and) - q2.log_prob(x_and)).abs().mean()) < 0.2
    assert abs(float(x_and[:, 0].mean())) < 0.05


def test_superposing_models_of_different_sdes_is_refused():
    gm = GaussianMixture.default_2d()
    for method in ("ode", "dpmpp_2m", "heun_edm"):
        with pytest.raises(ValueError, match=f"method='{method}': a superposition"):
            sample(superpose([Exact(gm), Exact(gm)]), SDE, (4, 2), method=method, steps=4)
    with pytest.raises(ValueError, match=r"models\[1\] was trained for another forward SDE"):
        superpose([Exact(gm), Exact(gm, VESDE())])
    with pytest.raises(ValueError, match="at least 2"):
        superpose([Exact(gm)])
    with pytest.raises(ValueError, match="mode must be"):
        superpose([Exact(gm), Exact(gm)], mode="xor")
    with pytest.raises(ValueError, match="sde: the models carry no .sde"):
        superpose([lambda x, t: -x, lambda x, t: -x])


def test_the_final_denoising_step_leaves_the_estimate_of_the_last_state():
    gm = GaussianMixture.default_2d()
    kw = dict(method="euler", steps=50, return_logp=True, dtype=torch.float64)
    raw, lp_raw = sample(Exact(gm), SDE, (64, 2), denoise=False,
                         generator=torch.Generator().manual_seed(0), **kw)  # fmt: skip
    den, lp_den = sample(Exact(gm), SDE, (64, 2), denoise=True,
                         generator=torch.Generator().manual_seed(0), **kw)  # fmt: skip
    assert torch.equal(lp_raw, lp_den) and not torch.equal(raw, den)
