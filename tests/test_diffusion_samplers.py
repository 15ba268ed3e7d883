"""The samplers as mathematics: convergence orders on a probability flow with a closed-form
solution, ER-SDE's two reductions, Restart's forward kernel, one Brownian path whatever the
knots, schedules as data, the parametrisation helper, one step size per sample, bad input."""

import math

import numpy as np
import pytest
import torch

from neuralsde import reverse, solve
from neuralsde.core.brownian import BrownianTree
from neuralsde.core.control import SeriesController
from neuralsde.core.methods import METHODS
from neuralsde.diffusion import VESDE, VPSDE, GaussianMixture, SubVPSDE, karras, sample, sigmas
from neuralsde.diffusion.edm import forward_kernel, restart_path
from neuralsde.diffusion.parametrisation import convert, from_edm, to_edm
from neuralsde.diffusion.schedules import edm_sigma, schedule_times

F64 = torch.float64
V = 0.25  # data N(0, V): the score is -x / (alpha^2 V + sigma^2) and the flow is linear


def _gauss_score(sde):
    def score(x, t):
        t = t.to(F64)
        var = sde.alpha(t) ** 2 * V + sde.sigma(t) ** 2
        return -x / var[:, None].to(x.dtype)

    return score


def _flow_error(method, n, sde, options=None):
    """|x(eps) - exact| for the probability flow of N(0, V) data from x(T) = 1."""
    knots = schedule_times("logsnr", sde, n)
    rev = reverse(sde, _gauss_score(sde), probability_flow=True, shape=(1,), path=knots)
    y0 = torch.ones(1, 1, dtype=F64)
    ts = torch.tensor([0.0, rev.knots[-1]], dtype=F64)
    y = solve(rev, y0, ts, method=method, grid=torch.from_numpy(rev.knots), options=options)
    t = knots[[0, -1]]
    var = sde.alpha(t) ** 2 * V + sde.sigma(t) ** 2
    return abs(float(y[-1, 0, 0]) - float(torch.sqrt(var[1] / var[0])))


@pytest.mark.parametrize(
    "method,options,order",
    [
        ("ddim", None, 1),
        ("dpmpp_2m", None, 2),
        ("dpmpp_3m", None, 3),
        ("dpmpp_3m", {"d2_term": "halved"}, 2),
        ("heun_edm", None, 2),
        ("er_sde", {"phi": lambda s: s}, 2),
        ("sa_solver", {"tau": lambda f: 0.0, "corrector_order": 3, "final_corrector": True}, 2),
    ],
)
@pytest.mark.parametrize("sde", [VPSDE(), VESDE(sigma_max=20.0)], ids=["VP", "VE"])
def test_deterministic_samplers_converge_at_their_order(method, options, order, sde):
    """Global order: the method's. (3M) with the reference implementations' halved
    second-difference term (``d2_term="halved"``) is second order, yet more accurate than
    (2M); SA-Solver's third-order corrector reaches 3 only below these step sizes."""
    errs = [_flow_error(method, n, sde, options) for n in (16, 32, 64)]
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert rates[-1] > order - 0.35, (errs, rates)
    if method in ("dpmpp_3m", "sa_solver"):
        assert errs[-1] < _flow_error("dpmpp_2m", 64, sde)


def _one_step(method, x, sde, t0, t1, z, options=None, score=None):
    """One knot step from (t0, x) to t1 with the standard normal draw z."""
    knots = torch.tensor([t0, t1], dtype=F64)
    rev = reverse(sde, score or _gauss_score(sde), probability_flow=True, shape=(x.shape[1],),
                  path=knots)  # fmt: skip
    du = float(rev.knots[-1])

    def bm(ta, tb):
        return z * math.sqrt(du)

    ts = torch.tensor([0.0, du], dtype=F64)
    return solve(rev, x, ts, method=method, grid=torch.from_numpy(rev.knots), bm=bm,
                 options=options)[-1]  # fmt: skip


def test_er_sde_with_phi_identity_is_ddim():
    sde, x = VPSDE(), torch.randn(64, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    z = torch.randn(64, 2, dtype=F64)
    gm = GaussianMixture.default_2d()
    for t0, t1 in [(1.0, 0.6), (0.5, 0.2), (0.2, 0.01)]:
        er = _one_step("er_sde", x, sde, t0, t1, z, {"order": 1, "phi": lambda s: s},
                       score=gm.score_fn(sde))  # fmt: skip
        ddim = _one_step("ddim", x, sde, t0, t1, z, score=gm.score_fn(sde))
        torch.testing.assert_close(er, ddim, rtol=1e-12, atol=1e-12)


def test_er_sde_with_phi_square_is_the_reverse_sde_with_frozen_data_prediction():
    """For phi(s) = s^2 the step is the exact transition of the reverse VE SDE
    dx = (2 / s)(x - D) ds + sqrt(2 s) dW_s with D frozen: mean D + (s1/s0)^2 (x - D),
    variance s1^2 - s1^4 / s0^2 (Monte Carlo check, tolerance from the standard error)."""
    sde, n = VESDE(sigma_max=10.0), 40000
    gm = GaussianMixture.default_2d()
    x = torch.tensor([[0.7, -1.3]], dtype=F64).expand(n, 2).contiguous()
    t0, t1 = 0.6, 0.3
    z = torch.randn(n, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    y = _one_step("er_sde", x, sde, t0, t1, z, {"order": 1, "phi": lambda s: s**2},
                  score=gm.score_fn(sde))  # fmt: skip
    s0, s1 = (float(v) for v in edm_sigma(sde, torch.tensor([t0, t1])))
    d = gm.denoiser(x[:1], s0)
    mean = d + (s1 / s0) ** 2 * (x[:1] - d)
    var = s1**2 - s1**4 / s0**2
    se = math.sqrt(var / n)
    assert float((y.mean(0) - mean[0]).abs().max()) < 4 * se
    assert abs(float(y.var(0).mean()) - var) < 4 * var * math.sqrt(2 / (2 * n))


@pytest.mark.parametrize("sde", [VESDE(sigma_max=10.0), VPSDE(), SubVPSDE()],
                         ids=["VE", "VP", "subVP"])  # fmt: skip
def test_restart_forward_kernel_is_the_forward_sdes_transition(sde):
    """Mean ratio exp(int k) and variance int exp(2 int k) g^2 of the linear forward SDE,
    by quadrature of its coefficients, against the kernel built from alpha and sigma."""
    t, t_next = 0.2, 0.7
    ratio, std = forward_kernel(sde, t, t_next)
    grid = np.linspace(t, t_next, 20001)
    tt = torch.tensor(grid, dtype=F64)
    k, g2 = sde.drift_coef(tt).double().numpy(), sde.diffusion(tt).double().numpy() ** 2
    k = np.broadcast_to(k, grid.shape)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (k[1:] + k[:-1]) * np.diff(grid))])
    var = np.trapezoid(np.exp(2 * (cum[-1] - cum)) * g2, grid)
    assert ratio == pytest.approx(math.exp(cum[-1]), rel=1e-6)
    assert std**2 == pytest.approx(var, rel=1e-5)


def test_restart_path_jumps_back_up_and_its_steps_follow_it():
    sde = VPSDE()
    knots = schedule_times("karras", sde, 10)
    path = restart_path(knots, sde, 0.06, 0.3, cycles=2, restart_steps=3)
    ups = int((torch.diff(path) > 0).sum())
    assert ups == 2 and len(path) == len(knots) + 1 + 2 * 4
    rev = reverse(sde, _gauss_score(sde), probability_flow=True, shape=(2,), path=path)
    for i, t in enumerate(path.tolist()):
        assert float(rev.time(torch.tensor(rev.knots[i], dtype=F64))) == pytest.approx(t)


def test_restart_keeps_gaussian_data_gaussian_and_contracts_the_ode_error():
    """Exact-score Restart on N(0, V) data: variance V within Monte Carlo error plus the
    ODE's discretisation error, and smaller error than the same Heun steps without restarts
    (the point of Restart: the forward jumps contract the accumulated error)."""
    sde, n = VPSDE(), 20000

    def bias(steps, cycles):
        gen = torch.Generator().manual_seed(0)
        x = sample(_gauss_score(sde), sde, (n, 1), method="restart", steps=steps, dtype=F64,
                   options={"cycles": cycles}, generator=gen)  # fmt: skip
        return abs(float(x.var()) - V)

    se = V * math.sqrt(2 / n)
    assert bias(80, 2) < 4 * se + 5e-3
    assert bias(20, 2) < bias(20, 0) - 2 * se


def test_stochastic_samplers_see_one_brownian_path_whatever_the_knots(monkeypatch):
    """The increments a stochastic sampler draws on a schedule and on its refinement (a knot
    added inside every interval) sum to the same Brownian increments."""
    cls = METHODS["dpmpp_2m_sde"]
    seen = []
    original = cls.step

    def spy(self, t0, t1, dt, y0, inc, state):
        seen[-1].append(inc.W.clone())
        return original(self, t0, t1, dt, y0, inc, state)

    monkeypatch.setattr(cls, "step", spy)
    sde = VPSDE()
    coarse = schedule_times("logsnr", sde, 4)
    fine = torch.sort(torch.cat([coarse, 0.5 * (coarse[1:] + coarse[:-1])]), descending=True)[0]
    for knots in (coarse, fine):
        seen.append([])
        sample(_gauss_score(sde), sde, (8, 2), method="dpmpp_2m_sde", schedule=knots,
               dtype=F64, generator=torch.Generator().manual_seed(3))  # fmt: skip
    pairs = [seen[1][2 * i] + seen[1][2 * i + 1] for i in range(4)]
    for a, b in zip(seen[0], pairs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- schedules
def test_named_schedules_are_uniform_in_their_variable():
    sde, n = VPSDE(), 12
    t = schedule_times("uniform", sde, n)
    assert np.allclose(np.diff(t.numpy()), -(sde.T - sde.eps) / n)
    lam = sde.log_snr(schedule_times("logsnr", sde, n))
    assert np.allclose(np.diff(lam.numpy()), float(lam[1] - lam[0]), rtol=1e-6)
    s = edm_sigma(sde, schedule_times(karras(rho=5.0), sde, n)) ** (1 / 5)
    assert np.allclose(np.diff(s.numpy()), float(s[1] - s[0]), rtol=1e-6)
    ls = torch.log(edm_sigma(sde, schedule_times("exponential", sde, n)))
    assert np.allclose(np.diff(ls.numpy()), float(ls[1] - ls[0]), rtol=1e-6)
    torch.testing.assert_close(
        schedule_times("exponential", sde, n), schedule_times("logsnr", sde, n)
    )
    for name in ("uniform", "logsnr", "karras", "exponential"):
        k = schedule_times(name, sde, n)
        assert float(k[0]) == sde.T and float(k[-1]) == pytest.approx(sde.eps)


def test_every_sampler_accepts_every_schedule():
    from neuralsde.diffusion.sampling import SAMPLERS

    sde = VPSDE()
    for method in SAMPLERS:
        for schedule in ("uniform", "logsnr", "karras", "exponential"):
            x = sample(_gauss_score(sde), sde, (4, 2), method=method, steps=6, schedule=schedule,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
            assert bool(torch.isfinite(x).all()), (method, schedule)


def test_sigma_schedule_equals_the_time_schedule():
    sde = VESDE(sigma_max=20.0)
    knots = schedule_times("karras", sde, 8)
    levels = torch.cat([edm_sigma(sde, knots), torch.zeros(1, dtype=F64)])
    torch.testing.assert_close(schedule_times(sigmas(levels), sde, 8), knots)


@pytest.mark.parametrize(
    "schedule,match",
    [
        (
            torch.tensor([1.0, 0.5, 0.6, 0.001]),
            r"decrease strictly.*t\[1\]=0.5 followed by t\[2\]=0.6",
        ),
        (torch.tensor([0.8, 0.5, 0.001]), "must start at the prior, t = T = 1"),
        (torch.tensor([1.0, 0.5, 0.0]), "end at a time eps > 0"),
        ("cosine", "unknown schedule 'cosine'"),
        (torch.tensor([1.0, float("nan"), 0.01]), "finite"),
    ],
)
def test_bad_schedules_are_refused(schedule, match):
    with pytest.raises(ValueError, match=match):
        sample(_gauss_score(VPSDE()), VPSDE(), (4, 2), method="dpmpp_2m", schedule=schedule)


def test_unknown_sampler_and_non_gaussian_sde_are_refused():
    with pytest.raises(ValueError, match="unknown method 'dpmpp_9m'"):
        sample(_gauss_score(VPSDE()), VPSDE(), (4, 2), method="dpmpp_9m")

    class Plain(torch.nn.Module):
        T, noise_type, sde_type = 1.0, "diagonal", "ito"

        def f(self, t, y):
            return -y

        def g(self, t, y):
            return torch.ones_like(y)

    with pytest.raises(TypeError, match=r"sde: method='ddim' needs a forward SDE with Gaussian"):
        sample(lambda x, t: -x, Plain(), (4, 2), method="ddim")


def test_options_and_eta_are_checked():
    sde = VPSDE()
    with pytest.raises(ValueError, match="eta is a parameter of dpmpp_2m_sde"):
        sample(_gauss_score(sde), sde, (4, 2), method="ddim", eta=0.5)
    with pytest.raises(ValueError, match="not understood"):
        sample(_gauss_score(sde), sde, (4, 2), method="heun_edm", options={"chrun": 1.0})
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        sample(_gauss_score(sde), sde, (4, 2), method="er_sde", options={"order": 4})


def test_eta_zero_sde_solver_is_the_ode_solver():
    sde = VPSDE()
    kw = dict(steps=8, dtype=F64, generator=torch.Generator().manual_seed(0))
    x_T = sde.prior_sampling((16, 2), generator=torch.Generator().manual_seed(1), dtype=F64)
    gm = GaussianMixture.default_2d()
    a = sample(gm.score_fn(sde), sde, (16, 2), method="dpmpp_2m_sde", eta=0.0, x_T=x_T,
               schedule="logsnr", **kw)  # fmt: skip
    b = sample(gm.score_fn(sde), sde, (16, 2), method="dpmpp_2m", x_T=x_T, **kw)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------- parametrisation
@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE()], ids=["VP", "subVP", "VE"])
def test_parametrisations_round_trip_and_agree_with_the_definitions(sde):
    g = torch.Generator().manual_seed(0)
    t = torch.tensor(0.4, dtype=F64)
    a, s = sde.alpha(t), sde.sigma(t)
    x0, eps = torch.randn(5, 3, dtype=F64, generator=g), torch.randn(5, 3, dtype=F64, generator=g)
    x = a * x0 + s * eps
    truth = {"eps": eps, "x0": x0, "v": a * eps - s * x0, "score": -eps / s}
    for src, value in truth.items():
        for dst, want in truth.items():
            got = convert(value, x, a, s, source=src, target=dst)
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    x_hat, s_hat = to_edm(x, a, s)
    torch.testing.assert_close(x_hat, x0 + s_hat * eps)
    torch.testing.assert_close(from_edm(x_hat, a), x)
    with pytest.raises(ValueError, match="target must be one of"):
        convert(eps, x, a, s, source="eps", target="velocity")


# ---------------------------------------------------------------- one step per sample
def test_series_controller_gives_each_series_its_own_steps():
    """dy = -lam_b y with lam_b from 0.5 to 20 per series: each series meets its tolerance
    and the stiff ones take more steps than the mild ones."""

    class Decay(torch.nn.Module):
        noise_type, sde_type, batched_time = "diagonal", "stratonovich", True

        def __init__(self, lam):
            super().__init__()
            self.lam, self.calls = lam, []

        def f(self, t, y):
            return -self.lam * y

        def g(self, t, y):
            self.calls.append(t.clone())
            return torch.zeros_like(y)

    lam = torch.tensor([[0.5], [2.0], [8.0], [20.0]], dtype=F64)
    sde = Decay(lam)
    y0 = torch.ones(4, 1, dtype=F64)
    bm = BrownianTree(0.0, 1.0, (4, 1), generator=torch.Generator().manual_seed(0))
    y = solve(sde, y0, torch.tensor([0.0, 1.0], dtype=F64), method="heun", dt=0.01,
              controller=SeriesController(rtol=1e-4, atol=1e-7), bm=bm)  # fmt: skip
    exact = torch.exp(-lam)
    assert bool(((y[-1] - exact).abs() <= 1e-3 * exact + 1e-6).all()), (y[-1], exact)
    times = torch.stack([c.reshape(-1) for c in sde.calls[1:]])  # (attempts, 4)
    moves = (torch.diff(times, dim=0) != 0).sum(0)
    assert moves[0] < moves[1] < moves[2] < moves[3], moves


def test_adaptive_sampler_defaults_and_per_sample_brownian_tree():
    gm, sde = GaussianMixture.default_2d(), VPSDE()
    x, info = sample(gm.score_fn(sde), sde, (200, 2), method="adaptive", dtype=F64,
                     generator=torch.Generator().manual_seed(0), return_info=True)  # fmt: skip
    assert info["nfe"] < 1000 and bool(torch.isfinite(x).all())
    with pytest.raises(TypeError, match="BrownianTree"):
        solve(reverse(sde, gm.score_fn(sde), shape=(2,), sde_type="stratonovich"),
              torch.zeros(3, 2), torch.tensor([0.0, 0.5]), method="heun",
              controller=SeriesController())  # fmt: skip


def test_brownian_tree_has_brownian_moments_and_one_path():
    n = 40000
    bm = BrownianTree(0.0, 2.0, (n, 1), generator=torch.Generator().manual_seed(0))
    a, b = bm(0.0, 0.5), bm(0.5, 1.7)
    assert abs(float(a.var()) - 0.5) < 4 * 0.5 * math.sqrt(2 / n)
    assert abs(float(b.var()) - 1.2) < 4 * 1.2 * math.sqrt(2 / n)
    assert abs(float((a * b).mean())) < 4 * math.sqrt(0.5 * 1.2 / n)
    torch.testing.assert_close(a + b, bm(0.0, 1.7))
    t = torch.rand(n, dtype=F64) * 2
    torch.testing.assert_close(bm.value(t), bm.value(t))


def test_brownian_tree_keys_give_each_series_its_own_path_whatever_the_batch():
    """A chunk of series with their keys draws exactly their rows of the whole batch's path
    (the ground for chunked inference), and paths of other keys are independent."""
    n, gen = 20000, lambda: torch.Generator().manual_seed(3)
    keys = torch.arange(n) * 7 + 11
    whole = BrownianTree(0.0, 1.0, (n, 2), generator=gen(), keys=keys)
    chunk = BrownianTree(0.0, 1.0, (3, 2), generator=gen(), keys=keys[[5, 900, 17]])
    t = torch.tensor([0.25, 0.7], dtype=F64)
    for ta, tb in ((0.0, 0.25), (0.25, 0.7)):
        assert torch.equal(chunk(ta, tb), whole(ta, tb)[[5, 900, 17]])
    inc = whole(0.0, 0.5)
    assert abs(float(inc.var()) - 0.5) < 4 * 0.5 * math.sqrt(2 / (2 * n))
    corr = torch.corrcoef(inc.T)[0, 1]  # the two channels of one key
    assert abs(float(corr)) < 4 / math.sqrt(n)
    shifted = BrownianTree(0.0, 1.0, (n, 2), generator=gen(), keys=keys + 1)(0.0, 0.5)
    assert abs(
        float(torch.corrcoef(torch.stack([inc[:, 0], shifted[:, 0]]))[0, 1])
    ) < 4 / math.sqrt(n)
    assert torch.equal(whole.value(t[1]) - whole.value(t[0]), whole(0.25, 0.7))
    with pytest.raises(ValueError, match="keys must be 2 integers, one per series"):
        BrownianTree(0.0, 1.0, (2, 1), keys=torch.tensor([0.5, 1.5]))


def test_steps_and_a_schedule_given_as_data_must_agree():
    sde = VPSDE()
    knots = schedule_times("logsnr", sde, 6)
    x = sample(_gauss_score(sde), sde, (4, 2), method="ode", schedule="karras")
    assert x.shape == (4, 2)
    with pytest.raises(ValueError, match="steps=10 disagrees with the schedule"):
        sample(_gauss_score(sde), sde, (4, 2), method="ddim", steps=10, schedule=knots)
    _, info = sample(_gauss_score(sde), sde, (4, 2), method="ddim", schedule=knots,
                     return_info=True)  # fmt: skip
    assert info["nfe"] == 7
