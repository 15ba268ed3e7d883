"""The flow view (issue 17, item 2): with exact fields, the interpolant SDE has the ODE's
marginals for every eps(t); a trained velocity field samples two moons within the noise
floor at 20 network evaluations; bad input is named."""

import math

import pytest
import torch

from neuralsde.core import solve
from neuralsde.diffusion import GaussianMixture, ScoreMLP, mmd2, noise_floor, two_moons
from neuralsde.diffusion.flows import Interpolant, InterpolantSDE, sample_flow, train_velocity
from neuralsde.diffusion.parametrisation import convert

GM = GaussianMixture.default_2d()


def _fields(it):
    def score(x, t):
        return GM.score(x, it, t)

    def velocity(x, t):
        a, s, da, ds = it.coefficients(t, x)
        return convert(score(x, t), x, a, s, "score", "flow", da, ds)

    return velocity, score


def _marginal_moments(it, t, n=400_000):
    g = torch.Generator().manual_seed(5)
    x1, x0 = GM.sample(n, g), torch.randn(n, 2, generator=g, dtype=torch.float64)
    x = it.alpha(torch.tensor(t)) * x1 + it.sigma(torch.tensor(t)) * x0
    return x.mean(0), torch.cov(x.T)


def _run(it, eps, t1, n=4000, noise_scale=1.0):
    velocity, score = _fields(it)
    t0 = 1e-3
    g = torch.Generator().manual_seed(0)
    x1, x0 = GM.sample(n, g), torch.randn(n, 2, generator=g, dtype=torch.float64)
    start = it.alpha(torch.tensor(t0)) * x1 + it.sigma(torch.tensor(t0)) * x0  # exact x_t0
    sde = InterpolantSDE(velocity, score, eps, (2,))
    if noise_scale != 1.0:  # a wrong SDE, to show the check can fail
        g_true = sde.g
        sde.g = lambda t, y: noise_scale * g_true(t, y)
    ts = torch.tensor([t0, t1], dtype=torch.float64)
    return solve(sde, start, ts, method="euler", dt=(t1 - t0) / 400,
                 generator=torch.Generator().manual_seed(1))[-1]  # fmt: skip


def _close(y, mean, cov):
    n = y.shape[0]
    var = torch.diagonal(cov)
    mean_ok = ((y.mean(0) - mean).abs() < 4 * (var / n).sqrt() + 0.01).all()
    cov_ok = (torch.cov(y.T) - cov).abs() < 4 * cov.diagonal().max() * math.sqrt(2 / n) + 0.02
    return bool(mean_ok) and bool(cov_ok.all())


@pytest.mark.parametrize("kind", ["linear", "trig"])
def test_every_eps_gives_the_marginals_of_the_ode(kind):
    """Exact velocity and score of a Gaussian mixture (through ``convert``); from exact
    samples at t = 0.001, the SDE with eps = 0 (the ODE), 0.5, 2 and 2 t (1 - t) reaches the
    interpolant's mean and covariance at t = 0.5 and 0.9 within 4 standard errors (plus the
    Euler bias); the same SDE with half its noise does not."""
    it = Interpolant(kind)
    for t1 in (0.5, 0.9):
        mean, cov = _marginal_moments(it, t1)
        for eps in (0.0, 0.5, 2.0, lambda t: 2 * t * (1 - t)):
            assert _close(_run(it, eps, t1), mean, cov), (kind, t1, eps)
    mean, cov = _marginal_moments(it, 0.9)
    assert not _close(_run(it, 2.0, 0.9, noise_scale=0.5), mean, cov)


def test_flow_parametrisation_round_trips():
    g = torch.Generator().manual_seed(0)
    x0, e = torch.randn(5, generator=g), torch.randn(5, generator=g)
    a, s, da, ds = 0.3, 0.8, 1.0, -1.0
    x, flow = a * x0 + s * e, da * x0 + ds * e
    for kind, value in (("x0", x0), ("eps", e), ("score", -e / s), ("v", a * e - s * x0)):
        assert torch.allclose(convert(value, x, a, s, kind, "flow", da, ds), flow, atol=1e-6)
        assert torch.allclose(convert(flow, x, a, s, "flow", kind, da, ds), value, atol=1e-6)
    with pytest.raises(ValueError, match="dalpha and dsigma"):
        convert(flow, x, a, s, "flow", "x0")


def test_a_trained_velocity_samples_two_moons_within_the_noise_floor_at_20_nfe():
    data = two_moons(8192, generator=torch.Generator().manual_seed(0)).float()
    torch.manual_seed(0)
    model, history = train_velocity(data, "linear", ScoreMLP(2, hidden=128),
                                    ScoreMLP(2, hidden=128), epochs=60, verbose=False)  # fmt: skip
    assert history.train_loss[-1] < history.train_loss[0]
    with torch.no_grad():
        x = sample_flow(model, (2000, 2), steps=10, generator=torch.Generator().manual_seed(1))
    floor, spread = noise_floor(lambda n, g: two_moons(n, generator=g), n=2000)
    ref = two_moons(2000, generator=torch.Generator().manual_seed(9))
    assert float(mmd2(x.double(), ref.double())) < floor + 3 * spread
    # the untrained flow is far off: the check can fail
    blank, _ = train_velocity(data[:64], "linear", epochs=1, verbose=False)
    with torch.no_grad():
        x = sample_flow(blank, (2000, 2), steps=10, generator=torch.Generator().manual_seed(1))
    assert float(mmd2(x.double(), ref.double())) > 0.05


def test_bad_input_is_named():
    data = torch.randn(64, 2)
    with pytest.raises(ValueError, match=r"base samples have shape \(3,\) and data samples \(2,\)"):
        train_velocity(data, base=torch.randn(64, 3), epochs=1, verbose=False)
    with pytest.raises(ValueError, match="interpolant must be one of"):
        train_velocity(data, interpolant="cubic", epochs=1, verbose=False)
    model, _ = train_velocity(data, base=torch.rand(64, 2), epochs=1, verbose=False)
    with pytest.raises(ValueError, match="non-Gaussian base"):
        sample_flow(model, (4, 2), eps=0.5)
    with pytest.raises(ValueError, match="eps must be a number >= 0"):
        sample_flow(model, (4, 2), eps=-1.0)
    with pytest.raises(ValueError, match="x_0 must have shape"):
        sample_flow(model, (4, 2), x_0=torch.zeros(4, 3))
