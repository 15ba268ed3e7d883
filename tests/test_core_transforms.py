"""SDE transforms: logqp's KL channel and reverse-time SDEs against closed forms."""

import math

import pytest
import torch

from neuralsde import SDE, logqp, reverse, solve
from neuralsde.examples import OU

F64 = torch.float64


class Zero(SDE):
    def __init__(self, sigma):
        super().__init__("diagonal", "ito")
        self.sigma = sigma

    def f(self, t, y):
        return torch.zeros_like(y)

    def g(self, t, y):
        return torch.full_like(y, self.sigma)


def test_logqp_kl_channel_matches_closed_form_for_ou_against_brownian_prior():
    # Posterior dy = -theta y dt + s dW, prior dy = s dW: KL rate 0.5 theta^2 y^2 / s^2, so
    # E kl(T) = 0.5 theta^2 / s^2 int_0^T (m_t^2 + v_t) dt with OU moments m_t, v_t.
    theta, s, y0, T = 1.5, 0.6, 1.0, 1.0
    post = OU(theta=theta, mu=0.0, sigma=s)
    n = 8000
    x0 = torch.cat([torch.full((n, 1), y0, dtype=F64), torch.zeros(n, 1, dtype=F64)], 1)
    ts = torch.tensor([0.0, T], dtype=F64)
    ys = solve(logqp(post, Zero(s)), x0, ts, method="srk", dt=2**-7,
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    kl = ys[-1, :, 1]
    grid = torch.linspace(0, T, 4001, dtype=F64)
    second = torch.tensor([post.mean(y0, t) ** 2 + post.var(t) for t in grid.tolist()])
    exact = 0.5 * theta**2 / s**2 * torch.trapezoid(second, grid).item()
    se = kl.std().item() / math.sqrt(n)
    assert abs(kl.mean().item() - exact) < 4 * se + 2e-3 * exact, (kl.mean().item(), exact)


def test_logqp_rejects_general_noise():
    with pytest.raises(ValueError, match="logqp needs diagonal or scalar noise"):
        logqp(OU(noise_type="general"), OU(noise_type="general"))


@pytest.mark.parametrize("probability_flow", [False, True])
def test_reverse_of_ou_recovers_the_initial_gaussian(probability_flow):
    # Forward OU from N(m0, s0^2): p_t = N(m0 e^{-theta t}, s0^2 e^{-2 theta t} + v_t) with the
    # exact score -(x - mu_t) / var_t. The reverse SDE / probability-flow ODE started from p_T
    # must end at N(m0, s0^2): mean and variance within 4 standard errors (+ O(dt) bias).
    theta, sigma, m0, s0, T = 1.0, 0.8, 1.5, 0.3, 1.0
    fwd = OU(theta=theta, mu=0.0, sigma=sigma)

    def mu(t):
        return m0 * torch.exp(-theta * t)

    def var(t):
        e = torch.exp(-2 * theta * t)
        return s0**2 * e + sigma**2 * (1 - e) / (2 * theta)

    def score(x, t):
        t = t.unsqueeze(-1)
        return -(x - mu(t)) / var(t)

    n = 8000
    gen = torch.Generator().manual_seed(3)
    tT = torch.tensor(T, dtype=F64)
    xT = mu(tT) + var(tT).sqrt() * torch.randn(n, 1, dtype=F64, generator=gen)
    rev = reverse(fwd, score, T=T, probability_flow=probability_flow)
    method = "heun" if probability_flow else "euler"
    if probability_flow:
        rev.sde_type = "stratonovich"  # zero noise: an ODE, Heun is second order
    x0 = solve(rev, xT, torch.tensor([0.0, T], dtype=F64), method=method, dt=2**-8,
               generator=gen)[-1, :, 0]  # fmt: skip
    assert abs(x0.mean().item() - m0) < 4 * s0 / math.sqrt(n) + 5e-3
    assert abs(x0.var().item() - s0**2) < 4 * s0**2 * math.sqrt(2 / n) + 5e-3
