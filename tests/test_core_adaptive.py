"""Adaptive steps: embedded error estimates, the PI controller and step doubling."""

import math
import sys
from pathlib import Path

import pytest
import torch
import torchsde

from neuralsde import SDE, solve
from neuralsde.core import PIController, StepDoubling
from neuralsde.core.brownian import Increment
from neuralsde.core.methods import METHODS
from neuralsde.core.sde import Terms
from neuralsde.examples import OU

F64 = torch.float64


@pytest.mark.parametrize(
    "method,sde_type",
    [("srk", "ito"), ("heun", "stratonovich"), ("midpoint", "stratonovich"),
     ("reversible_heun", "stratonovich")],
)  # fmt: skip
def test_pi_controlled_solutions_match_ou_moments(method, sde_type):
    sde = OU(theta=1.0, mu=0.0, sigma=0.5, noise_type="additive")
    sde.sde_type = sde_type  # additive noise: Ito and Stratonovich coincide
    n = 4000
    y0 = torch.full((n, 1), 1.0, dtype=F64)
    ts = torch.tensor([0.0, 0.3, 1.0], dtype=F64)
    ys = solve(sde, y0, ts, method=method, dt=0.1, rtol=1e-2, atol=1e-3, controller="pi",
               generator=torch.Generator().manual_seed(3))  # fmt: skip
    for k, t in ((1, 0.3), (2, 1.0)):
        y = ys[k, :, 0]
        assert abs(y.mean().item() - sde.mean(1.0, t)) < 4 * math.sqrt(sde.var(t) / n)
        assert abs(y.var().item() - sde.var(t)) < 4 * sde.var(t) * math.sqrt(2 / (n - 1))


class Decay(SDE):
    """dy = -y dt (no noise): y(1) = e^-1."""

    noise_type, sde_type = "diagonal", "stratonovich"

    def f(self, t, y):
        return -y

    def g(self, t, y):
        return torch.zeros_like(y)


@pytest.mark.parametrize("method", ["heun", "midpoint", "reversible_heun"])
def test_embedded_error_estimates_are_second_order_local_errors_on_an_ode(method):
    """On an ODE these methods' estimates are the difference to a first-order step: O(h^2), so
    halving the step quarters them, and they bound the first-order method's local error."""
    sde = Decay()
    stepper = METHODS[method](Terms(sde).bind(None))
    stepper.want_error = True
    y0 = torch.ones(1, 1, dtype=F64)
    errors = []
    for h in (0.1, 0.05, 0.025):
        t0, t1 = torch.tensor(0.0, dtype=F64), torch.tensor(h, dtype=F64)
        state = stepper.init(t0, t1, y0, stepper.fg(t0, y0))
        _, err, _ = stepper.step(t0, t1, h, y0, Increment(torch.zeros(1, 1, dtype=F64)), state)
        errors.append(float(err.abs()))
    assert 3.6 < errors[0] / errors[1] < 4.4 and 3.6 < errors[1] / errors[2] < 4.4, errors
    # Euler's local error on y' = -y is e^-h - (1 - h) = h^2 / 2 + O(h^3): the estimate's size
    assert errors[-1] == pytest.approx(0.025**2 / 2, rel=0.1)


def test_sra1_estimate_is_the_difference_to_euler_maruyamas_drift():
    class Additive(SDE):
        noise_type, sde_type = "additive", "ito"

        def f(self, t, y):
            return torch.sin(y)

        def g(self, t, y):
            return torch.ones(y.shape[0], y.shape[1], 1, dtype=y.dtype)

    stepper = METHODS["srk"](Terms(Additive()).bind(None))
    stepper.want_error = True
    y0 = torch.tensor([[0.3]], dtype=F64)
    t0, t1, h = torch.tensor(0.0, dtype=F64), torch.tensor(0.1, dtype=F64), 0.1
    inc = Increment(torch.tensor([[0.2]], dtype=F64), torch.tensor([[0.01]], dtype=F64))
    y1, err, _ = stepper.step(t0, t1, h, y0, inc, None)
    # the two SRA1 drift stages: f(y0) and f(y0 + 3/4 h f(y0) + 3/2 g U / h)
    f0 = torch.sin(y0)
    f1 = torch.sin(y0 + 0.75 * h * f0 + 1.5 * 0.01 / h)
    torch.testing.assert_close(err, 2 / 3 * h * (f1 - f0))


def test_tighter_tolerances_give_smaller_errors_with_the_pi_controller():
    class Counting(Decay):
        calls = 0

        def f(self, t, y):
            self.calls += 1
            return -y

    errors, steps = [], []
    for tol in (1e-2, 1e-4, 1e-6):
        sde = Counting()
        y = solve(sde, torch.ones(1, 1, dtype=F64), torch.tensor([0.0, 1.0], dtype=F64),
                  method="heun", dt=0.1, rtol=tol, atol=tol, controller="pi")  # fmt: skip
        errors.append(abs(float(y[-1, 0, 0]) - math.exp(-1)))
        steps.append(sde.calls)
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-5, errors
    assert steps[0] < steps[1] < steps[2], steps


def test_the_pi_controller_needs_fewer_evaluations_than_step_doubling_for_the_same_error():
    """On OU with SRA1: sweep the tolerance for both controllers and compare the drift and
    diffusion evaluations at a matched strong error (the benchmark in small). Step doubling
    keeps its two half steps, so with even steps it costs 3 method steps where PI costs 2 for
    the same accuracy: the ratio approaches 1.5, more with fewer rejections."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from adaptive_steps import evals_at, ou_reference, sweep

    sde = OU(theta=2.0, mu=0.0, sigma=0.5, noise_type="additive")
    y0 = torch.ones(64, 1, dtype=F64)
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(64, 1), dtype=F64, entropy=3,
                                   levy_area_approximation="space-time")  # fmt: skip
    ref = ou_reference(y0, bm, n=2**12)
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    tols = [10 ** (-k / 2) for k in range(3, 10)]
    curves = {c: sweep(sde, y0, ts, "srk", bm, ref, c, tols, 0.05) for c in ("doubling", "pi")}
    target = 3e-4
    ratio = evals_at(curves["doubling"], target) / evals_at(curves["pi"], target)
    assert ratio >= 1.4, (ratio, curves)


def test_pi_without_an_embedded_estimate_is_a_clear_error_and_doubling_works():
    sde = OU()
    y0, ts = torch.ones(3, 1, dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    with pytest.raises(ValueError, match=r"PI controller needs an embedded error estimate, which "
                       r"method='euler' lacks.*controller='doubling'"):  # fmt: skip
        solve(sde, y0, ts, rtol=1e-3, controller="pi")
    out = solve(sde, y0, ts, rtol=1e-3, controller="doubling")  # also what "auto" picks
    assert out.shape == (2, 3, 1)
    with pytest.raises(ValueError, match="controller must be one of"):
        solve(sde, y0, ts, controller="pid")
    with pytest.raises(ValueError, match="not both"):
        solve(sde, y0, ts, rtol=1e-3, controller=StepDoubling(rtol=1e-2))


def test_controller_objects_carry_their_settings():
    sde = Decay()
    y0, ts = torch.ones(1, 1, dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    loose = solve(sde, y0, ts, method="heun", controller=PIController(rtol=1e-2, atol=1e-2))
    tight = solve(sde, y0, ts, method="heun", controller=PIController(rtol=1e-7, atol=1e-7))
    exact = math.exp(-1)
    assert abs(float(tight[-1]) - exact) < abs(float(loose[-1]) - exact)
