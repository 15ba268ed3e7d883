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


def _context_without_values(grid, ctx, t_last):
    """The posterior's args for series observed on ``grid`` until ``t_last``, with no next
    values to steer towards (so no guided term)."""
    from neuralsde.models.latent import _Observations

    B, L = ctx.shape[1], grid.numel()
    times = grid.expand(B, L)
    empty = torch.zeros(B, L, 0, dtype=F64)
    return _Observations(times, ctx, times, empty, empty, t_last.unsqueeze(-1), 0.02)


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
    model = _model()
    grid = torch.tensor([0.0, 0.3, 0.6], dtype=F64)
    ctx = torch.randn(3, 2, 6, dtype=F64)
    context = _context_without_values(grid, ctx, torch.tensor([0.3, 0.6], dtype=F64))
    post = model.posterior_sde().posterior
    z = torch.randn(2, 3, dtype=F64)
    h = model.h_net(z)
    f_early = post.f(torch.tensor(0.1, dtype=F64), z, context)
    f_mid = post.f(torch.tensor(0.45, dtype=F64), z, context)
    assert not torch.allclose(f_early[0], h[0]) and not torch.allclose(f_mid[1], h[1])
    torch.testing.assert_close(f_mid[0], h[0])  # series 0 ended at 0.3
    # drift on [grid[i-1], grid[i]) reads the context of grid[i] and the time left to it
    tau = torch.full((2, 1), 0.6 - 0.45, dtype=F64)
    want = model.f_net(torch.cat([z, ctx[2], tau, 0.02 / (tau + 0.02)], -1))
    torch.testing.assert_close(f_mid[1], want[1])


def test_guided_drift_is_the_brownian_bridge_to_a_noisy_next_observation():
    """One latent, one channel, Brownian noise: the guided term of the drift is the optimal
    control towards the next observation, ``g^2 W (x - W z - b) / (r^2 + g^2 tau W^2)``; with a
    missing next value it vanishes. The series' next *observed* time sets ``tau``."""
    from neuralsde.models.latent import observations

    torch.manual_seed(0)
    model = LatentSDE(1, latent_dim=1, context_dim=4, hidden=8, dt=0.02, obs_std=0.3).double()
    with torch.no_grad():
        model.decoder.weight.fill_(1.7)
        model.decoder.bias.fill_(-0.2)
        model.bridge_gain.fill_(0.0)
    grid = torch.tensor([0.0, 0.3, 0.6, 0.9], dtype=F64)
    values = torch.tensor([[[0.1], [0.5], [float("nan")], [1.3]], [[0.0], [0.2], [-0.8], [0.4]]],
                          dtype=F64)  # fmt: skip
    ctx = torch.randn(4, 2, 4, dtype=F64)
    context = observations(grid.expand(2, -1), values, ctx, dt=0.02)
    z = torch.tensor([[0.4], [-0.3]], dtype=F64)
    t = torch.tensor(0.45, dtype=F64)
    got = model.posterior_sde().posterior.f(t, z, context)
    tau = torch.tensor([[0.9 - 0.45], [0.6 - 0.45]], dtype=F64)  # series 0 skips the NaN at 0.6
    x = torch.tensor([[1.3], [-0.8]], dtype=F64)
    g, r, W, b = model.g_net(z), 0.3, 1.7, -0.2
    bridge = g**2 * W * (x - W * z - b) / (r**2 + g**2 * tau * W**2)
    feats = torch.cat([z, ctx[2], tau, 0.02 / (tau + 0.02)], -1)
    torch.testing.assert_close(got, model.f_net(feats) + bridge)


def test_guide_is_masked_per_channel_and_scaled_by_its_gain():
    model = _model()
    z = torch.randn(2, 3, dtype=F64)
    tau = torch.tensor([[0.1], [0.2]], dtype=F64)
    x = torch.randn(2, 2, dtype=F64)
    none = torch.zeros(2, 2, dtype=F64)
    torch.testing.assert_close(model.guide(z, None, tau, x, none), torch.zeros(2, 3, dtype=F64))
    one = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=F64)
    x_other = x.clone()
    x_other[:, 1] += 5.0  # a masked channel does not matter
    base = model.guide(z, None, tau, x, one)
    torch.testing.assert_close(model.guide(z, None, tau, x_other, one), base)
    with torch.no_grad():
        model.bridge_gain.fill_(math.log(2.0))
    torch.testing.assert_close(model.guide(z, None, tau, x, one), 2 * base)


def test_fractional_guide_at_hurst_one_half_is_close_to_the_brownian_bridge():
    brown = _model()
    frac = _model(noise=MarkovFBM(hurst=0.5))
    frac.decoder.load_state_dict(brown.decoder.state_dict())
    frac.g_net.load_state_dict(brown.g_net.state_dict())
    z = torch.randn(4, 3, dtype=F64)
    tau = torch.tensor([[0.05], [0.1], [0.3], [0.6]], dtype=F64)
    x = torch.randn(4, 2, dtype=F64)
    mask = torch.ones(4, 2, dtype=F64)
    Y = torch.zeros(4, 3, 5, dtype=F64)
    want = brown.guide(z, None, tau, x, mask)
    torch.testing.assert_close(frac.guide(z, Y, tau, x, mask), want, rtol=2e-2, atol=1e-3)


def test_bridge_false_is_the_plain_context_posterior():
    model = _model(bridge=False)
    assert model.bridge_gain is None
    grid = torch.tensor([0.0, 0.5], dtype=F64)
    ctx = torch.randn(2, 2, 6, dtype=F64)
    context = _context_without_values(grid, ctx, torch.tensor([0.5, 0.5], dtype=F64))
    post = model.posterior_sde().posterior
    z = torch.randn(2, 3, dtype=F64)
    got = post.f(torch.tensor(0.2, dtype=F64), z, context)
    torch.testing.assert_close(got, model.f_net(torch.cat([z, ctx[1]], -1)))


def test_exact_times_keep_every_observation_and_snapping_that_merges_some_warns():
    times = torch.tensor([[0.0, 0.003, 0.5]], dtype=F64)
    values = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]], dtype=F64)
    grid, on = _model().on_grid(times, values)  # snap=False by default
    torch.testing.assert_close(grid, times[0])
    torch.testing.assert_close(on, values)
    with pytest.warns(RuntimeWarning, match="merged 2 of 6 observed values"):
        grid, on = _model(snap=True).on_grid(times, values)
    torch.testing.assert_close(grid, torch.tensor([0.0, 0.5], dtype=F64))
    torch.testing.assert_close(on[0, 0], values[0, 1])  # the later of the two is kept


def test_refined_solve_points_halve_the_last_step_into_each_observation():
    grid = torch.tensor([0.0, 0.05, 0.3], dtype=F64)
    model = _model(refine=3)  # dt = 0.02
    got = model.refined(grid, grid)
    want = torch.tensor([0.0, 0.04, 0.045, 0.0475, 0.05, 0.29, 0.295, 0.2975, 0.3], dtype=F64)
    torch.testing.assert_close(got, want)
    assert _model().refined(grid, grid) is grid  # refine=0 (default)
    assert _model(refine=3, bridge=False).refined(grid, grid) is grid  # nothing to pin
    with pytest.raises(ValueError, match="refine"):
        _model(refine=-1)


def test_refined_solve_returns_the_path_at_the_observation_grid_only():
    times, values = _data()
    model = _model(refine=4)
    post = model.posterior(times, values, generator=torch.Generator().manual_seed(0), snap=True)
    assert post["z"].shape[0] == post["grid"].numel() == post["ts"].numel()


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
    model = _model(noise=MarkovFBM(hurst=0.7), bridge=False)
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


@pytest.mark.parametrize("noise", ["brownian", "fractional"])
def test_series_grids_on_shared_times_equal_the_union_grid_even_with_missing_values(noise):
    """When all series share their time stamps, each series' own grid is the union grid: the
    per-series solve (the default) gives the union solve's ELBO to round-off, also when some
    values (or every value at some time) are missing."""
    kw = {} if noise == "brownian" else {"noise": MarkovFBM(hurst=0.6, K=3)}
    model = _model(**kw)
    times = torch.sort(torch.rand(6, generator=torch.Generator().manual_seed(3), dtype=F64))[0]
    times = times.expand(4, 6).contiguous()
    values = torch.randn(4, 6, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    values[1, 2] = float("nan")
    values[2, 3, 0] = float("nan")
    out = []
    for series_grids in (True, False):
        model.series_grids = series_grids
        out.append(model.elbo(times, values, generator=torch.Generator().manual_seed(5)))
    assert model.per_series() is False and _model().per_series() is True
    for key in ("elbo", "loglik", "kl0", "kl_path"):
        torch.testing.assert_close(out[0][key], out[1][key], rtol=1e-12, atol=1e-12)


def test_series_grids_solve_each_series_on_its_own_times_only():
    """With times of their own, series do not step on each other's times: the per-series solve
    takes about one series' steps, the union solve about all of theirs."""
    import sys

    solve_mod = sys.modules["neuralsde.core.solve"]
    model = _model()
    times, values = _data(B=6, L=10)  # every series has its own random times
    steps, seen = {}, []
    real = solve_mod.series_grid, solve_mod.step_grid

    def record(fn):
        def wrapped(*a, **k):
            grid, index = fn(*a, **k)
            seen.append(grid.shape[0] - 1)
            return grid, index

        return wrapped

    for series_grids in (True, False):
        model.series_grids = series_grids
        solve_mod.series_grid, solve_mod.step_grid = (record(f) for f in real)
        try:
            out = model.elbo(times, values, generator=torch.Generator().manual_seed(0))
        finally:
            solve_mod.series_grid, solve_mod.step_grid = real
        steps[series_grids] = seen[-1]
        assert torch.isfinite(out["elbo"])
    # own grid: 10 times merged with the dt = 0.02 grid over [0, 1]; union: 60 such times
    assert steps[True] <= 1 / 0.02 + 10 + 1
    assert steps[False] >= 1 / 0.02 + 5 * 10
