"""``MarkovFBM.increment_moments``: conditional moments of the approximating process' increments."""

import pytest
import torch

from neuralsde.noise import MarkovFBM

F64 = torch.float64


@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_variance_from_rest_is_the_type_ii_covariance(hurst):
    """Type II starts at ``Y = 0``: the increment over ``tau`` from rest is ``B(tau)``."""
    fbm = MarkovFBM(hurst=hurst, K=5)
    tau = torch.tensor([[0.01], [0.1], [0.5], [1.0]], dtype=F64)
    m, _, v = fbm.increment_moments(tau, torch.zeros(4, 1, 5, dtype=F64))
    want = torch.diag(fbm.cov(tau[:, 0], tau[:, 0])).unsqueeze(-1)
    torch.testing.assert_close(v, want, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(m, torch.zeros(4, 1, dtype=F64))


@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_variance_grows_at_the_squared_response(hurst):
    """``dv / dtau = c(tau)^2``, checked by central finite differences."""
    fbm = MarkovFBM(hurst=hurst, K=5)
    tau = torch.tensor([[0.02], [0.2], [0.7]], dtype=F64)
    h = 1e-6
    _, c, _ = fbm.increment_moments(tau)
    dv = (fbm.increment_moments(tau + h)[2] - fbm.increment_moments(tau - h)[2]) / (2 * h)
    torch.testing.assert_close(dv, c**2, rtol=1e-6, atol=1e-9)


def test_conditional_mean_matches_monte_carlo_from_a_given_state():
    fbm = MarkovFBM(hurst=0.3, K=5)
    gen = torch.Generator().manual_seed(0)
    Y0 = torch.randn(1, 1, 5, dtype=F64, generator=gen)
    tau = 0.3
    m, _, v = fbm.increment_moments(torch.tensor([[tau]], dtype=F64), Y0)
    # exact OU transition of Y from Y0, many draws
    g = fbm.gammas()
    gij = g[:, None] + g[None, :]
    cov = -torch.expm1(-gij * tau) / gij
    L = torch.linalg.cholesky(cov + 1e-12 * torch.eye(5, dtype=F64))
    n = 200_000
    Y1 = torch.exp(-g * tau) * Y0[0] + torch.randn(n, 5, dtype=F64, generator=gen) @ L.T
    inc = (Y1 - Y0[0]) @ fbm.omega()
    se = inc.std() / n**0.5
    assert abs(float(inc.mean() - m[0, 0])) < 4 * float(se)
    assert float(inc.var()) == pytest.approx(float(v), rel=4 * (2 / n) ** 0.5)
