"""Forward SDEs: marginals agree with their own drift and diffusion, and with `solve`."""

import math

import pytest
import torch

from neuralsde import reverse, solve
from neuralsde.diffusion import VESDE, VPSDE, SubVPSDE

SDES = [VPSDE(), SubVPSDE(), VESDE(sigma_min=0.01, sigma_max=50.0)]


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_marginal_moments_solve_the_moment_odes(sde):
    # mean coefficient: alpha' = k alpha; variance: (sigma^2)' = 2 k sigma^2 + g^2
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64, requires_grad=True)
    a, s2 = sde.alpha(t), sde.sigma(t) ** 2
    da = torch.autograd.grad(a.sum(), t)[0] if a.requires_grad else torch.zeros_like(a)
    (ds2,) = torch.autograd.grad(s2.sum(), t)
    k, g = sde.drift_coef(t).detach(), sde.diffusion(t).detach()
    torch.testing.assert_close(da, k * a.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ds2, 2 * k * s2.detach() + g**2, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_log_snr_inverts(sde):
    t = torch.linspace(0.01, 1.0, 11, dtype=torch.float64)
    torch.testing.assert_close(sde.t_from_log_snr(sde.log_snr(t)), t, rtol=1e-9, atol=1e-9)


def test_vp_marginal_matches_simulation_within_monte_carlo_error():
    sde = VPSDE()
    n, x0, t1 = 20000, 1.5, 0.4
    y0 = torch.full((n, 1), x0, dtype=torch.float64)
    ts = torch.tensor([0.0, t1], dtype=torch.float64)
    y = solve(sde, y0, ts, dt=1e-3, generator=torch.Generator().manual_seed(0))[-1, :, 0]
    mean, std = sde.marginal_prob(torch.tensor([[x0]], dtype=torch.float64), t1)
    se = float(std) / math.sqrt(n)
    assert abs(float(y.mean()) - float(mean)) < 4 * se + 2e-3  # + Euler bias O(dt)
    assert abs(float(y.var()) - float(std) ** 2) < 4 * float(std) ** 2 * math.sqrt(2 / n) + 2e-3


def test_prior_logp_is_the_gaussian_density():
    sde = VESDE(sigma_max=3.0)
    z = torch.randn(5, 4, dtype=torch.float64)
    ref = torch.distributions.Normal(0.0, 3.0).log_prob(z).sum(-1)
    torch.testing.assert_close(sde.prior_logp(z), ref)


def test_reverse_probability_flow_has_zero_diffusion_and_half_score_term():
    sde = VPSDE()
    score = lambda x, t: -2 * x  # noqa: E731
    y = torch.randn(3, 2, dtype=torch.float64)
    u = torch.tensor(0.3, dtype=torch.float64)
    rev, pf = reverse(sde, score), reverse(sde, score, probability_flow=True)
    t = rev.time(u)
    k, g2, dtdu = sde.drift_coef(t), sde.diffusion(t) ** 2, -1.0  # t = T - u
    torch.testing.assert_close(rev.f(u, y), (k * y - g2 * (-2 * y)) * dtdu)
    torch.testing.assert_close(pf.f(u, y), (k * y - 0.5 * g2 * (-2 * y)) * dtdu)
    assert float(pf.g(u, y).abs().max()) == 0.0
    torch.testing.assert_close(rev.g(u, y), torch.sqrt(g2 * -dtdu) * torch.ones_like(y))
    torch.testing.assert_close(t, sde.T - u)
