"""Bad input to solve gets a clear error naming the argument, the value and the expectation."""

import pytest
import torch

from neuralsde import SDE, DivergenceError, solve
from neuralsde.examples import OU

TS = torch.linspace(0, 1, 5)


def test_y0_of_wrong_rank():
    with pytest.raises(ValueError, match=r"y0 must have shape \(batch, state\); got shape \(3,\)"):
        solve(OU(), torch.zeros(3), TS)


def test_y0_not_a_tensor_or_not_float():
    with pytest.raises(TypeError, match="y0 must be a torch.Tensor"):
        solve(OU(), [[0.0]], TS)
    with pytest.raises(TypeError, match="floating-point.*torch.int64"):
        solve(OU(), torch.zeros(2, 1, dtype=torch.long), TS)


def test_non_finite_y0():
    y0 = torch.zeros(2, 2)
    y0[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"y0 must be finite; found nan at index \(1, 0\)"):
        solve(OU(), y0, TS)


def test_ts_not_increasing():
    ts = torch.tensor([0.0, 0.5, 0.5, 1.0])
    with pytest.raises(
        ValueError, match=r"strictly increasing; got ts\[1\]=0.5 followed by ts\[2\]=0.5"
    ):
        solve(OU(), torch.zeros(2, 1), ts)


@pytest.mark.parametrize("dt", [0.0, -0.1, float("nan")])
def test_dt_not_positive(dt):
    with pytest.raises(ValueError, match="dt must be positive and finite"):
        solve(OU(), torch.zeros(2, 1), TS, dt=dt)


def test_unknown_method_lists_the_methods():
    with pytest.raises(ValueError, match=r"unknown method 'rk45'; choose one of \[.*'euler'.*\]"):
        solve(OU(), torch.zeros(2, 1), TS, method="rk45")


def test_unsupported_combination_names_it_and_the_alternatives():
    strat = OU()
    strat.sde_type = "stratonovich"
    with pytest.raises(
        ValueError,
        match=r"method='euler' with sde_type='stratonovich'.*"
        r"Methods that fit this SDE: \[.*'heun'.*'reversible_heun'",
    ):
        solve(strat, torch.zeros(2, 1), TS, method="euler")
    general = OU(noise_type="general")
    with pytest.raises(ValueError, match="noise_type='general' is not supported.*'euler'"):
        solve(general, torch.zeros(2, 1), TS, method="milstein")


class WrongShape(SDE):
    def __init__(self, noise_type, shape):
        super().__init__(noise_type=noise_type, sde_type="ito")
        self.shape = shape

    def f(self, t, y):
        return -y

    def g(self, t, y):
        return torch.ones(self.shape)


@pytest.mark.parametrize(
    "noise_type,shape,expected",
    [
        ("diagonal", (4, 2, 1), r"\(4, 3\)"),
        ("scalar", (4, 3), r"\(4, 3, 1\)"),
        ("general", (4, 3), r"\(4, 3, brownian\)"),
    ],
)
def test_diffusion_of_wrong_shape_for_its_noise_type(noise_type, shape, expected):
    with pytest.raises(
        ValueError,
        match=rf"g\(t, y\) returned shape .* for noise_type='{noise_type}'; "
        rf"expected {expected}",
    ):
        solve(WrongShape(noise_type, shape), torch.zeros(4, 3), TS)


def test_bad_adjoint_and_reversible_without_reversible_heun():
    with pytest.raises(ValueError, match="adjoint must be one of"):
        solve(OU(), torch.zeros(2, 1), TS, adjoint="magic")
    with pytest.raises(ValueError, match="needs method='reversible_heun'"):
        solve(OU(), torch.zeros(2, 1), TS, adjoint="reversible")


def test_missing_protocol_attributes():
    class NoNoise:
        sde_type = "ito"

        def f(self, t, y):
            return y

        def g(self, t, y):
            return y

    with pytest.raises(ValueError, match="sde.noise_type must be one of"):
        solve(NoNoise(), torch.zeros(2, 1), TS)


def test_divergence_names_time_and_step():
    class Blowup(SDE):
        def f(self, t, y):
            return y**3

        def g(self, t, y):
            return torch.zeros_like(y)

    with pytest.raises(DivergenceError, match=r"stopped being finite at t=.* \(step \d+\)") as e:
        solve(Blowup(), torch.full((1, 1), 2.0), torch.tensor([0.0, 1.0]), dt=0.01)
    # y' = y^3 from 2 blows up at t = 1/8; Euler overflows float32 a few steps later
    assert 0.1 < e.value.time < 0.3 and e.value.step == round(e.value.time / 0.01)


def test_a_fixed_step_grid_over_max_steps_is_refused_before_it_is_allocated():
    with pytest.raises(ValueError, match=r"dt=1e-09 needs 1000000000 steps, more than max_steps"):
        solve(OU(), torch.zeros(2, 1), torch.tensor([0.0, 1.0]), dt=1e-9)
    with pytest.raises(ValueError, match="more than max_steps=50"):
        solve(OU(), torch.zeros(2, 1), torch.tensor([0.0, 1.0]), dt=0.01, max_steps=50)
