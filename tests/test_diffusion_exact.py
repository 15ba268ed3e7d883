"""Exact references: a 2-D Gaussian mixture whose diffused score is known in closed form.

Samplers driven by the exact score must land within the measured two-sample noise floor of
the MMD; the probability-flow likelihood must match the exact log-density.
"""

import pytest
import torch

from neuralsde.diffusion import VESDE, VPSDE, GaussianMixture, SubVPSDE, mmd2, noise_floor
from neuralsde.diffusion.likelihood import log_likelihood
from neuralsde.diffusion.sampling import sample

N = 1000
GM = GaussianMixture.default_2d()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def floor():
    mean, std = noise_floor(lambda n, g: GM.sample(n, g), mmd2, n=N, repeats=8, seed=7)
    return mean + 4 * std


@pytest.fixture(scope="module")
def target():
    return GM.sample(N, torch.Generator().manual_seed(123))


def test_exact_score_matches_autograd_of_exact_log_density():
    sde = VPSDE()
    x = torch.randn(16, 2, dtype=torch.float64, requires_grad=True)
    t = torch.rand(16, dtype=torch.float64)
    (grad,) = torch.autograd.grad(GM.log_prob(x, sde, t).sum(), x)
    torch.testing.assert_close(GM.score(x, sde, t), grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("method", "steps"),
    [("euler", 1000), ("pc", 20), ("pc", 100), ("ode", None), ("dpmpp_2m", 20), ("adaptive", None)],
)
def test_sampler_with_exact_score_is_within_noise_floor(method, steps, floor, target):
    sde = VPSDE()
    x = sample(
        GM.score_fn(sde),
        sde,
        (N, 2),
        method=method,
        steps=steps,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    assert float(mmd2(x, target)) < floor


@pytest.mark.parametrize(
    "sde", [VESDE(sigma_min=0.01, sigma_max=20.0), SubVPSDE()], ids=["VE", "subVP"]
)
def test_dpmpp_2m_with_exact_score_is_within_noise_floor_for_other_sdes(sde, floor, target):
    x = sample(
        GM.score_fn(sde),
        sde,
        (N, 2),
        method="dpmpp_2m",
        steps=20,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    assert float(mmd2(x, target)) < floor


def test_noise_floor_check_can_fail(floor, target):
    # a wrong score (variance inflated by 1/0.7) is detected at the same sample size
    sde = VPSDE()
    wrong = lambda x, t: 0.7 * GM.score(x, sde, t)  # noqa: E731
    x = sample(
        wrong,
        sde,
        (N, 2),
        method="dpmpp_2m",
        steps=20,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    assert float(mmd2(x, target)) > floor


@pytest.mark.parametrize("sde", [VPSDE(eps=1e-5), SubVPSDE(eps=1e-5)], ids=["VP", "subVP"])
def test_log_likelihood_exact_divergence_matches_exact_density(sde):
    x = GM.sample(64, torch.Generator().manual_seed(1))
    lp = log_likelihood(GM.score_fn(sde), sde, x, divergence="exact", rtol=1e-5, atol=1e-5)
    err = (lp - GM.log_prob(x)).abs() / 2  # nats per dimension
    assert float(err.max()) < 0.05


def test_log_likelihood_hutchinson_is_unbiased_within_tolerance():
    sde = VPSDE(eps=1e-5)
    x = GM.sample(200, torch.Generator().manual_seed(2))
    lp = log_likelihood(
        GM.score_fn(sde), sde, x, rtol=1e-4, atol=1e-4, generator=torch.Generator().manual_seed(3)
    )
    diff = lp - GM.log_prob(x)
    se = float(diff.std()) / len(diff) ** 0.5
    assert abs(float(diff.mean())) < 4 * se
    assert abs(float(diff.mean())) / 2 < 0.05
