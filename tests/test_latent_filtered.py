"""The backward-filtering, forward-guiding posterior (``posterior="backward_filter"``).

With a linear prior and constant noise the guided chain is the exact posterior of the Euler
chain, so every draw's ELBO equals the chain's log-likelihood, computed here by an independent
Kalman filter on the same grid, and its gradient in the Hurst index is the likelihood's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from neuralsde.models.latent import LatentSDE
from neuralsde.noise import MarkovFBM

F64 = torch.float64


def _linear(noise, theta=1.3, sigma=0.8, obs_std=0.1, dt=0.05, z0_std=0.5):
    """LatentSDE whose prior is ``dz = -theta z dt + sigma dB``, decoder ``y = 2 z + 0.1``."""
    model = LatentSDE(1, latent_dim=1, context_dim=2, hidden=4, obs_std=obs_std, dt=dt,
                      noise=noise, posterior="backward_filter").double()  # fmt: skip
    with torch.no_grad():
        drift = nn.Linear(1, 1, bias=False).double()
        drift.weight.fill_(-theta)
        model.h_net = model.prior_sde.h_net = drift
        model.g_net.log_scale.fill_(math.log(sigma))
        model.g_net.floor, model.g_net.w2.data[:] = 1.0, 0.0
        model.g_net.b2.fill_(-60.0)
        model.decoder.weight.fill_(2.0)
        model.decoder.bias.fill_(0.1)
        model.pz0_mean.fill_(0.2)
        model.pz0_logstd.fill_(math.log(z0_std))
    return model


def _data():
    times = torch.tensor([[0.0, 0.23, 0.61, 1.0], [0.0, 0.4, 0.9, float("nan")]], dtype=F64)
    values = torch.tensor([[[0.4], [0.9], [float("nan")], [0.2]],
                           [[0.1], [-0.6], [0.5], [float("nan")]]], dtype=F64)  # fmt: skip
    return times, values


def _kalman(model, times, values) -> torch.Tensor:
    """Log-likelihood of each series under the Euler chain of the linear prior, on the
    posterior's own grid (state ``(z, Y)``: Euler transitions ``I + M dt``, ``B B' dt``)."""
    theta = -float(model.h_net.weight.detach())
    sigma = float(model.g_net.log_scale.exp()) * (1 + 1 / (1 + math.exp(60.0)))
    out = []
    for b in range(times.shape[0]):
        keep = torch.isfinite(times[b])
        t_b, v_b = times[b][keep], values[b][keep][:, 0]
        grid = model._fine(torch.cat([t_b]).unsqueeze(-1))[:, 0]
        if model.noise is None:
            M, Bn, K = np.array([[-theta]]), np.array([sigma]), 0
        else:
            w = model.noise.omega().detach().numpy()
            g = model.noise.gammas().numpy()
            K = len(g)
            M = np.zeros((K + 1, K + 1))
            M[0, 0], M[0, 1:] = -theta, -sigma * w * g
            M[1:, 1:] = np.diag(-g)
            Bn = np.concatenate([[sigma * w.sum()], np.ones(K)])
        n = K + 1
        m = np.zeros(n)
        m[0] = float(model.pz0_mean)
        P = np.zeros((n, n))
        P[0, 0] = float(model.pz0_logstd.exp()) ** 2
        Wo = np.zeros(n)
        Wo[0] = float(model.decoder.weight)
        R = float(model.obs_std) ** 2
        ll, j = 0.0, 0
        for k, t in enumerate(grid.numpy()):
            if k:
                dt = t - grid[k - 1].item()
                phi = np.eye(n) + M * dt
                m, P = phi @ m, phi @ P @ phi.T + np.outer(Bn, Bn) * dt
            if j < len(t_b) and abs(t - t_b[j].item()) < 1e-12:
                y = v_b[j].item()
                j += 1
                if math.isfinite(y):
                    S = Wo @ P @ Wo + R
                    r = y - Wo @ m - float(model.decoder.bias)
                    ll -= 0.5 * (math.log(2 * math.pi * S) + r * r / S)
                    gain = P @ Wo / S
                    m, P = m + gain * r, P - np.outer(gain, gain) * S
        out.append(ll)
    return torch.tensor(out, dtype=F64)


def _elbos(model, times, values, n=5, seed=0):
    post = model.posterior(
        times, values, n_samples=n, generator=torch.Generator().manual_seed(seed)
    )
    e = model.log_likelihood(post["z"], post["values"]) - post["kl0"] - post["kl_path"]
    return e.view(n, times.shape[0])


@pytest.mark.parametrize("noise", ["brownian", "fractional"])
def test_every_draw_of_the_elbo_is_the_euler_chains_exact_log_likelihood(noise):
    noise = MarkovFBM(hurst=0.3, K=3, gamma_max=8.0) if noise == "fractional" else noise
    model = _linear(noise)
    times, values = _data()
    with torch.no_grad():
        elbo = _elbos(model, times, values)
    exact = _kalman(model, times, values)
    torch.testing.assert_close(elbo, exact.expand_as(elbo), atol=1e-9, rtol=0)


def test_the_elbo_converges_to_the_continuous_likelihood_as_dt_falls():
    # OU observed exactly at two times: the continuous log-likelihood in closed form.
    theta, sigma, s0, r = 1.3, 0.8, 0.5, 0.1
    times = torch.tensor([[0.0, 1.0]], dtype=F64)
    values = torch.tensor([[[0.4], [0.2]]], dtype=F64)
    a = math.exp(-theta)
    q = sigma**2 * (1 - a * a) / (2 * theta)
    cov = np.array([[s0**2, a * s0**2], [a * s0**2, a * a * s0**2 + q]]) * 4 + r * r * np.eye(2)
    res = np.array([0.4 - 0.1 - 0.4, 0.2 - 0.1 - 0.4 * a])
    exact = -0.5 * (2 * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1]
                    + res @ np.linalg.solve(cov, res))  # fmt: skip
    errors = []
    for dt in (0.1, 0.05, 0.025):
        with torch.no_grad():
            e = _elbos(_linear("brownian", dt=dt), times, values, n=2)
        errors.append(abs(float(e[0, 0]) - exact))
    assert errors[2] < errors[1] < errors[0]
    assert errors[0] / errors[2] > 3  # Euler: first order in dt


def test_hurst_gradient_of_the_elbo_is_the_likelihoods():
    noise = MarkovFBM(hurst=0.35, K=3, gamma_max=8.0, learn_hurst=True)
    model = _linear(noise).double()
    times, values = _data()
    _elbos(model, times, values, n=1).sum().backward()
    grad = float(noise.raw_hurst.grad)
    eps, raw = 1e-5, float(noise.raw_hurst)
    lik = []
    for x in (raw + eps, raw - eps):
        with torch.no_grad():
            noise.raw_hurst.fill_(x)
        lik.append(float(_kalman(model, times, values).sum()))
    assert grad == pytest.approx((lik[0] - lik[1]) / (2 * eps), rel=1e-5, abs=1e-7)


def test_the_guided_posterior_forecasts_with_the_prior_after_the_last_observation():
    model = _linear("brownian")
    times, values = _data()
    out_times = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    with torch.no_grad():
        post = model.posterior(times[:1], values[:1], out_times=out_times, n_samples=4000,
                               generator=torch.Generator().manual_seed(1))  # fmt: skip
    z = post["z"][..., 0]
    # After t = 1 the prior's Euler chain: mean decays by (1 - theta dt)^(1/dt) per unit time.
    decay = (1 - 1.3 * 0.05) ** 20
    ratio = z[2].mean() / z[1].mean()
    se = z[2].std() / z[1].mean().abs() / math.sqrt(4000)
    assert abs(float(ratio) - decay) < 4 * float(se) + 0.01
    assert post["z"].shape == (3, 4000, 1)


def test_posterior_name_is_checked():
    with pytest.raises(ValueError, match="posterior"):
        LatentSDE(1, posterior="smoother")
