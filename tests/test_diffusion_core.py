"""The shared core: every sampler and the likelihood go through `neuralsde.solve` once, and
the score is evaluated outside `solve` at most once (the final denoising step)."""

import pytest
import torch

import neuralsde.diffusion.likelihood as likelihood_mod
import neuralsde.diffusion.sampling as sampling_mod
from neuralsde import SDE, solve
from neuralsde.core.methods import METHODS
from neuralsde.diffusion import VPSDE, GaussianMixture
from neuralsde.diffusion.sampling import METHODS as SAMPLERS
from neuralsde.diffusion.sampling import sample

GM = GaussianMixture.default_2d()


class _Spy:
    def __init__(self):
        self.calls, self.inside, self.evals_inside, self.evals_outside = 0, False, 0, 0

    def solve(self, *args, **kwargs):
        self.calls += 1
        self.inside = True
        try:
            return solve(*args, **kwargs)
        finally:
            self.inside = False

    def score(self, sde):
        def fn(x, t):
            if self.inside:
                self.evals_inside += 1
            else:
                self.evals_outside += 1
            return GM.score(x, sde, t)

        return fn


@pytest.mark.parametrize("method", SAMPLERS)
def test_every_sampler_calls_solve_once_and_loops_nowhere_else(method, monkeypatch):
    spy, sde = _Spy(), VPSDE()
    monkeypatch.setattr(sampling_mod, "solve", spy.solve)
    sample(
        spy.score(sde),
        sde,
        (32, 2),
        method=method,
        steps=None if method in ("ode", "adaptive") else 10,
        generator=torch.Generator().manual_seed(0),
        rtol=1e-2 if method in ("ode", "adaptive") else None,
        atol=1e-2 if method in ("ode", "adaptive") else None,
    )
    assert spy.calls == 1
    assert spy.evals_inside >= 10
    assert spy.evals_outside <= 1


def test_log_likelihood_calls_solve_once(monkeypatch):
    spy, sde = _Spy(), VPSDE()
    monkeypatch.setattr(likelihood_mod, "solve", spy.solve)
    likelihood_mod.log_likelihood(spy.score(sde), sde, GM.sample(8), steps=10)
    assert spy.calls == 1 and spy.evals_outside == 0 and spy.evals_inside >= 10


def test_dpm2_is_a_registered_core_method_with_declared_properties():
    cls = METHODS["dpm2"]
    assert cls.adaptive is False and cls.strong_order == 2.0


class _GaussianFlow(SDE):
    """Probability flow of N(0, v) data under VP in reversed time u = 1 - t: exact solution
    x(u) = x(0) * sqrt(alpha^2 v + sigma^2)(t(u)) / sqrt(alpha^2 v + sigma^2)(1)."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, v):
        super().__init__()
        self.fwd, self.v = VPSDE(), v

    def _t(self, u):
        return 1.0 - 0.999 * u

    def alpha(self, u):
        return self.fwd.alpha(self._t(u))

    def sigma(self, u):
        return self.fwd.sigma(self._t(u))

    def var(self, u):
        return self.alpha(u) ** 2 * self.v + self.sigma(u) ** 2

    def data_prediction(self, u, y):
        a, s = self.alpha(u), self.sigma(u)
        return (y + s**2 * (-y / self.var(u))) / a

    def f(self, u, y):
        t = self._t(u)
        k, g2 = self.fwd.drift_coef(t), self.fwd.diffusion(t) ** 2
        return -0.999 * (k * y - 0.5 * g2 * (-y / self.var(u)))

    def g(self, u, y):
        return torch.zeros_like(y)


def test_dpm2_converges_at_second_order_on_a_gaussian_probability_flow():
    flow = _GaussianFlow(0.25)
    y0 = torch.ones(1, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    exact = float(torch.sqrt(flow.var(one) / flow.var(torch.tensor(0.0, dtype=torch.float64))))
    errs = []
    for n in (40, 80, 160):
        y = solve(flow, y0, ts, method="dpm2", dt=1 / n, options={"lower_order_final": False})
        errs.append(abs(float(y[-1, 0, 0]) - exact))
    rates = [errs[i] / errs[i + 1] for i in range(2)]
    assert all(r > 3.3 for r in rates), (errs, rates)


def test_dpm2_rejects_an_sde_without_semilinear_structure():
    class Plain(SDE):
        def f(self, t, y):
            return -y

        def g(self, t, y):
            return torch.zeros_like(y)

    with pytest.raises(TypeError, match="data_prediction"):
        solve(Plain(), torch.ones(2, 1), torch.tensor([0.0, 1.0]), method="dpm2")


def test_dpm2_rejects_nonzero_diffusion():
    flow = _GaussianFlow(1.0)
    flow.g = lambda u, y: torch.ones_like(y)
    with pytest.raises(ValueError, match="must be zero"):
        solve(flow, torch.ones(2, 1), torch.tensor([0.0, 1.0]), method="dpm2")


@pytest.mark.parametrize("method,extra", [("euler", 0), ("pc", 0), ("dpm2", 1)])
def test_fixed_step_samplers_evaluate_the_score_the_nominal_number_of_times(method, extra):
    """One score evaluation per predictor / corrector step (the reverse diffusion needs none),
    plus dpm2's final denoising step."""
    _, info = sample(
        lambda x, t: -x, VPSDE(), (4, 2), method=method, steps=5,
        generator=torch.Generator().manual_seed(0), return_info=True,
    )  # fmt: skip
    assert info["nfe"] == sampling_mod.sample_nfe(method, 5) + extra
