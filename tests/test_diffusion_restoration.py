"""The mean-reverting SDE and MRS (issue 16, item 1): closed-form marginals against Monte Carlo
of the forward SDE on the core, the exponential integrators' orders on the exact flow map of
Gaussian data, and named errors."""

import math

import numpy as np
import pytest
import torch

from neuralsde.core import solve
from neuralsde.diffusion import GaussianMixture, ScoreMLP, sample
from neuralsde.diffusion.restoration import RestorationModel, restore
from neuralsde.diffusion.sdes import MeanRevertingSDE, sde_from_config

SDE = MeanRevertingSDE((0.1, 10.0), lam=0.5)


def test_marginals_match_monte_carlo_of_the_forward_sde():
    """x_0 = 1.5 towards mu = -0.5: x_t ~ N(mu + (x_0 - mu) e^{-thetabar_t}, lam^2 (1 -
    e^{-2 thetabar_t})), thetabar_t = 0.1 t + 4.95 t^2; the core solves dy = -theta y dt +
    sqrt(2 lam^2 theta) dW for y = x - mu."""
    n, x0, mu = 20_000, 1.5, -0.5
    ts = torch.tensor([0.0, 0.1, 0.3, 1.0], dtype=torch.float64)
    y = solve(SDE, torch.full((n, 1), x0 - mu, dtype=torch.float64), ts, method="euler",
              dt=1e-3, generator=torch.Generator().manual_seed(0))  # fmt: skip
    for k, t in enumerate(ts.tolist()[1:], start=1):
        bar = 0.1 * t + 0.5 * 9.9 * t * t
        mean = mu + (x0 - mu) * math.exp(-bar)
        var = 0.25 * (1 - math.exp(-2 * bar))
        x = y[k, :, 0] + mu
        assert abs(float(x.mean()) - mean) < 4 * math.sqrt(var / n) + 2e-3, t
        assert abs(float(x.var()) - var) < 4 * var * math.sqrt(2 / n) + 2e-3, t
        assert float(SDE.alpha(torch.tensor(t))) == pytest.approx(math.exp(-bar), rel=1e-6)


def _gaussian(var):
    return GaussianMixture([1.0], [[0.3, -0.2]], [[[var, 0.0], [0.0, var / 2]]])


def _flow_map(data, y_T, t_end):
    """The probability-flow ODE's map from T to ``t_end`` for Gaussian data N(m, diag(v)):
    ``y_t = alpha_t m + sqrt(Sigma_t / Sigma_T) (y_T - alpha_T m)``, Sigma_t = alpha_t^2 v +
    sigma_t^2."""
    m, v = data.means[0], torch.diagonal(data.covs[0])
    T, e = torch.tensor(SDE.T, dtype=torch.float64), torch.tensor(t_end, dtype=torch.float64)
    sig = [SDE.alpha(s) ** 2 * v + SDE.sigma(s) ** 2 for s in (T, e)]
    return SDE.alpha(e) * m + torch.sqrt(sig[1] / sig[0]) * (y_T - SDE.alpha(T) * m)


def _error(data, method, steps, options=None):
    y_T = SDE.prior_std * torch.randn(64, 2, generator=torch.Generator().manual_seed(3),
                                      dtype=torch.float64)  # fmt: skip
    out = sample(data.score_fn(SDE), SDE, (64, 2), method=method, steps=steps,
                 schedule="logsnr", x_T=y_T, denoise=False, dtype=torch.float64,
                 options=options)  # fmt: skip
    return float((out - _flow_map(data, y_T, SDE.eps)).abs().max())


def test_first_order_mrs_is_exact_for_a_point_mass_and_orders_converge():
    """Against the exact flow map of Gaussian data (logsnr knots, 40 / 80 / 160 steps), MRS of
    order 1, 2 and 3 (``ddim``, ``dpmpp_2m``, ``dpmpp_3m``) converge at least at their orders
    (the third order with the Taylor weight of its second-difference term; the halved term
    of the reference implementations stays at 2), each more accurate than the order below; in
    the data and in the noise parametrisation (first order: the same step)."""
    # data with zero spread: the data prediction is constant, the first-order
    # exponential integrator is the exact flow map
    assert _error(_gaussian(1e-12), "ddim", 5) < 1e-6
    data = _gaussian(0.2)
    errs = {m: [_error(data, m, n) for n in (40, 80, 160)] for m in ("ddim", "dpmpp_2m",
                                                                       "dpmpp_3m")}  # fmt: skip
    errs["halved"] = [_error(data, "dpmpp_3m", n, {"d2_term": "halved"}) for n in (40, 80, 160)]
    for m in ("dpmpp_2m", "dpmpp_3m"):  # the noise parametrisation (DPM-Solver)
        errs[m + " noise"] = [_error(data, m, n, {"prediction": "noise"}) for n in (40, 80, 160)]
    for method, order in (("ddim", 1), ("dpmpp_2m", 2), ("dpmpp_3m", 3), ("halved", 2),
                          ("dpmpp_2m noise", 2), ("dpmpp_3m noise", 3)):  # fmt: skip
        slopes = np.log2(np.array(errs[method][:-1]) / np.array(errs[method][1:]))
        assert slopes[-1] > order - 0.2, (method, errs[method], slopes)
        if order == 2:
            assert slopes[-1] < 2.2, (method, errs[method], slopes)
    for low, high in (("ddim", "dpmpp_2m"), ("dpmpp_2m", "dpmpp_3m")):
        assert all(a > b for a, b in zip(errs[low], errs[high], strict=True))


def test_bad_input_is_named():
    model = RestorationModel(ScoreMLP((8, 2), hidden=8), SDE)
    with pytest.raises(ValueError, match=r"mu of shape \(3, 8, 1\) does not match x"):
        model(torch.zeros(4, 8, 1), torch.full((4,), 0.5), torch.zeros(3, 8, 1))
    with pytest.raises(ValueError, match="method must be 'sde'"):
        restore(model, SDE, torch.zeros(4, 8, 1), method="fast")
    with pytest.raises(ValueError, match="order: MRS takes"):
        restore(model, SDE, torch.zeros(4, 8, 1), method="mrs", order=4)
    with pytest.raises(ValueError, match="prediction must be 'data' or, for kind='ode'"):
        restore(model, SDE, torch.zeros(4, 8, 1), prediction="noise")
    with pytest.raises(ValueError, match=r"end must lie in \(0, 1\)"):
        restore(model, SDE, torch.zeros(4, 8, 1), end=1.5)
    with pytest.raises(ValueError, match="theta_schedule must be"):
        MeanRevertingSDE(5.0)
    with pytest.raises(ValueError, match="lam must be"):
        MeanRevertingSDE((0.1, 1.0), lam=-1.0)
    assert sde_from_config(SDE.config()).config() == SDE.config()
