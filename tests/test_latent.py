"""LatentSDE: masked likelihood, KL terms, the prior/posterior switch, adjoint gradients."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from neuralsde.models.latent import LatentSDE
from neuralsde.noise import MarkovFBM

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _data(B=5, L=8, C=2, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    times = torch.rand(B, L, generator=g, dtype=dtype).sort(-1).values
    values = torch.randn(B, L, C, generator=g, dtype=dtype)
    values[0, 2, 1] = float("nan")
    values[3, 5] = float("nan")
    return times, values


def _model(**kw):
    torch.manual_seed(0)
    kw = {"latent_dim": 3, "context_dim": 6, "hidden": 12, "dt": 0.02, **kw}
    return LatentSDE(2, **kw).double()


def test_log_likelihood_is_the_gaussian_density_of_observed_entries_only():
    model = _model(obs_std=0.3)
    z = torch.randn(4, 2, 3, dtype=F64)
    values = torch.randn(2, 4, 2, dtype=F64)
    values[1, 2, 0] = float("nan")
    got = model.log_likelihood(z, values)
    mu = model.decode(z).detach().transpose(0, 1).numpy()
    x = values.numpy()
    sigma = model.obs_std.numpy()  # 0.3, stored as a float32 log
    assert sigma == pytest.approx(0.3, rel=1e-6)
    lp = np.where(np.isnan(x), 0.0, stats.norm.logpdf(np.nan_to_num(x), mu, sigma))
    np.testing.assert_allclose(got.detach().numpy(), lp.sum((1, 2)), rtol=1e-12)
    values[1, 2, 0] = 1e6  # an entry that was missing now counts
    assert model.log_likelihood(z, values)[1] < got[1] - 1e3


def test_missing_entries_do_not_change_the_elbo():
    model = _model()
    times, values = _data()
    other = values.clone()
    other[0, 2, 1] = float("nan")  # already missing; and vary a different missing placeholder
    a = model.elbo(times, values, generator=torch.Generator().manual_seed(1))
    b = model.elbo(times, other, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a["elbo"], b["elbo"])
    assert int(a["n_obs"]) == int(torch.isfinite(values).sum())


def test_kl0_is_the_closed_form_gaussian_kl():
    from neuralsde.models.latent import _kl_normal

    m1, s1, m2, s2 = 0.3, 0.5, -0.2, 1.7
    want = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    got = _kl_normal(*(torch.tensor(math.log(v) if i % 2 else v, dtype=F64)
                       for i, v in enumerate((m1, s1, m2, s2))))  # fmt: skip
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_elbo_equals_loglik_minus_both_kls_and_annealing_scales_only_the_kl():
    model = _model()
    times, values = _data()
    out = model.elbo(times, values, kl_weight=0.25, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out["elbo"], out["loglik"] - out["kl0"] - out["kl_path"])
    torch.testing.assert_close(out["loss"], -(out["loglik"] - 0.25 * (out["kl0"] + out["kl_path"])))
    assert out["kl_path"] > 0 and out["kl0"] > 0


def test_posterior_drift_equals_prior_drift_after_each_series_last_observation():
    from neuralsde.models.latent import PosteriorSDE, _Context

    model = _model()
    grid = torch.tensor([0.0, 0.3, 0.6], dtype=F64)
    ctx = torch.randn(3, 2, 6, dtype=F64)
    context = _Context(grid, ctx, torch.tensor([0.3, 0.6], dtype=F64), dt=0.02)
    post = PosteriorSDE(model, context, "ito")
    z = torch.randn(2, 3, dtype=F64)
    h = model.h_net(z)
    f_early = post.f(torch.tensor(0.1, dtype=F64), z)
    f_mid = post.f(torch.tensor(0.45, dtype=F64), z)
    assert not torch.allclose(f_early[0], h[0]) and not torch.allclose(f_mid[1], h[1])
    torch.testing.assert_close(f_mid[0], h[0])  # series 0 ended at 0.3
    # drift on [grid[i-1], grid[i]) reads the context of grid[i] and the time left to it
    tau = torch.full((2, 1), 0.6 - 0.45, dtype=F64)
    want = model.f_net(torch.cat([z, ctx[2], tau, 0.02 / (tau + 0.02)], -1))
    torch.testing.assert_close(f_mid[1], want[1])


def test_bridge_term_steers_towards_each_series_next_observed_value():
    """``G (x_next - decode(z)) / (tau + dt)``, with x_next the next *observed* entry per series."""
    from neuralsde.models.latent import PosteriorSDE, _Context

    model = _model()
    torch.nn.init.normal_(model.bridge.weight)
    grid = torch.tensor([0.0, 0.3, 0.6, 0.9], dtype=F64)
    values = torch.randn(2, 4, 2, dtype=F64)
    values[0, 2] = float("nan")  # series 0: nothing at 0.6, so its next observation is at 0.9
    values[1, 2, 0] = float("nan")  # series 1: channel 0 missing at 0.6 (masked out)
    ctx = torch.randn(4, 2, 6, dtype=F64)
    context = _Context(grid, ctx, torch.tensor([0.9, 0.9], dtype=F64), values, dt=0.02)
    z = torch.randn(2, 3, dtype=F64)
    t = torch.tensor(0.45, dtype=F64)
    got = PosteriorSDE(model, context, "ito").f(t, z)

    t_next = torch.tensor([[0.9], [0.6]], dtype=F64)
    x_next = torch.stack([values[0, 3], torch.nan_to_num(values[1, 2])])
    mask = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=F64)
    tau = t_next - 0.45
    r = mask * (x_next - model.decode(z)) / (tau + 0.02)
    feats = torch.cat([z, ctx[2], tau, 0.02 / (tau + 0.02)], -1)
    want = model.f_net(feats) + r @ model.bridge.weight.T
    torch.testing.assert_close(got, want)


def test_bridge_false_is_the_plain_context_posterior():
    from neuralsde.models.latent import PosteriorSDE, _Context

    model = _model(bridge=False)
    assert model.bridge is None
    grid = torch.tensor([0.0, 0.5], dtype=F64)
    ctx = torch.randn(2, 2, 6, dtype=F64)
    post = PosteriorSDE(model, _Context(grid, ctx, torch.tensor([0.5, 0.5], dtype=F64)), "ito")
    z = torch.randn(2, 3, dtype=F64)
    got = post.f(torch.tensor(0.2, dtype=F64), z)
    torch.testing.assert_close(got, model.f_net(torch.cat([z, ctx[1]], -1)))


def _grads(model, adjoint, times, values):
    model.zero_grad()
    model.adjoint = adjoint
    model.method = "reversible_heun"
    model.sde_type = "stratonovich"
    model.prior_sde.sde_type = "stratonovich"
    out = model.elbo(times, values, generator=torch.Generator().manual_seed(5))
    out["loss"].backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def test_reversible_adjoint_matches_direct_elbo_gradients_to_1e6():
    model = _model(adjoint="reversible")
    times, values = _data()
    direct = _grads(model, None, times, values)
    rev = _grads(model, "reversible", times, values)
    assert direct.numel() == sum(p.numel() for p in model.parameters() if p.requires_grad)
    rel = float((rev - direct).norm() / direct.norm())
    assert rel < 1e-6
    assert float((rev - direct).abs().max() / direct.abs().max()) < 1e-6


def test_backsolve_adjoint_gives_gradients_close_to_direct():
    model = _model()
    times, values = _data()
    model.zero_grad()
    model.elbo(times, values, generator=torch.Generator().manual_seed(5))["loss"].backward()
    direct = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    model.zero_grad()
    model.adjoint = "backsolve"
    model.elbo(times, values, generator=torch.Generator().manual_seed(5))["loss"].backward()
    back = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    # the stochastic adjoint re-solves backwards on a different discretisation: O(dt) apart
    cos = float(back @ direct / (back.norm() * direct.norm()))
    assert cos > 0.9


def test_fractional_latent_sde_exposes_a_learnable_hurst_with_a_gradient():
    model = _model(noise=MarkovFBM(hurst=0.6, learn_hurst=True))
    assert float(model.hurst.detach()) == pytest.approx(0.6, rel=1e-6)
    times, values = _data()
    out = model.elbo(times, values, generator=torch.Generator().manual_seed(0))
    out["loss"].backward()
    grad = model.noise.raw_hurst.grad
    assert grad is not None and torch.isfinite(grad) and grad != 0
    assert out["kl_path"] > 0


def test_fractional_posterior_kl_is_half_the_integrated_squared_control():
    model = _model(noise=MarkovFBM(hurst=0.7))
    with torch.no_grad():
        for p in model.f_net.parameters():
            p.zero_()
        model.f_net[-1].bias.fill_(0.5)  # u = 0.5 in each of the 3 latent coordinates
    times = torch.tensor([[0.0, 0.4]], dtype=F64)
    values = torch.zeros(1, 2, 2, dtype=F64)
    out = model.posterior(times, values, generator=torch.Generator().manual_seed(0))
    # active only until the last observation at 0.4
    assert float(out["kl_path"].detach()) == pytest.approx(0.5 * 0.25 * 3 * 0.4, rel=1e-9)


def test_reversible_with_fast_fractional_noise_warns():
    with pytest.warns(RuntimeWarning, match="parasitic mode"):
        LatentSDE(1, noise=MarkovFBM(gamma_max=20.0), adjoint="reversible", dt=0.01)


def test_bad_model_arguments_are_rejected():
    with pytest.raises(TypeError, match="noise must be 'brownian' or a MarkovFBM; got 'fbm'"):
        LatentSDE(1, noise="fbm")
    with pytest.raises(ValueError, match="latent_dim must be a positive int; got 0"):
        LatentSDE(1, latent_dim=0)
    with pytest.raises(ValueError, match=r"gamma_max \* dt must be < 0.5"):
        LatentSDE(1, noise=MarkovFBM(gamma_max=20.0), dt=0.05)
