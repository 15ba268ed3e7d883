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


def test_dpm2_is_the_registered_alias_of_dpmpp_2m():
    cls = METHODS["dpm2"]
    assert issubclass(cls, METHODS["dpmpp_2m"]) and cls.adaptive is False
    assert cls.strong_order == 2.0


def test_knot_samplers_reject_an_sde_without_knots_or_data_prediction():
    class Plain(SDE):
        def f(self, t, y):
            return -y

        def g(self, t, y):
            return torch.zeros_like(y)

    with pytest.raises(TypeError, match="data_at_knot"):
        solve(Plain(), torch.ones(2, 1), torch.tensor([0.0, 1.0]), method="dpmpp_2m")


def test_knot_samplers_need_the_probability_flow():
    from neuralsde import reverse

    rev = reverse(VPSDE(), lambda x, t: -x, probability_flow=False, shape=(1,))
    with pytest.raises(ValueError, match="probability_flow=True"):
        solve(rev, torch.ones(2, 1), torch.tensor([0.0, float(rev.knots[-1])]),
              method="dpmpp_2m", grid=torch.from_numpy(rev.knots))  # fmt: skip


@pytest.mark.parametrize("method", [m for m in SAMPLERS if m not in ("ode", "adaptive")])
def test_fixed_step_samplers_evaluate_the_score_the_nominal_number_of_times(method):
    """``sample_nfe``: one evaluation per step of the one-stage samplers (the first reuses the
    evaluation ``solve`` makes at the start), two per Heun step, plus the denoising step."""
    _, info = sample(
        lambda x, t: -x, VPSDE(), (4, 2), method=method, steps=5,
        generator=torch.Generator().manual_seed(0), return_info=True,
    )  # fmt: skip
    assert info["nfe"] == sampling_mod.sample_nfe(method, 5)
