"""Convergence orders and moments against closed forms (float64, fixed seeds)."""

import math

import numpy as np
import pytest
import torch
import torchsde

from neuralsde import SDE, solve
from neuralsde.core.brownian import BrownianPath
from neuralsde.examples import GBM, OU

F64 = torch.float64


def _slope(dts, errors):
    return np.polyfit(np.log(dts), np.log(errors), 1)[0]


def _bm(batch, m, seed, levy=False):
    return torchsde.BrownianInterval(
        0.0,
        1.0,
        size=(batch, m),
        dtype=F64,
        entropy=seed,
        levy_area_approximation="space-time" if levy else "none",
    )


def _strong_errors(sde, exact, method, dts, batch=2000, levy=False, options=None, y0=1.0):
    bm = _bm(batch, 1, seed=11, levy=levy)
    y0 = torch.full((batch, 1), y0, dtype=F64)
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    target = exact(y0, bm)
    errs = []
    for dt in dts:
        y1 = solve(sde, y0, ts, method=method, dt=dt, bm=bm, options=options)[-1]
        errs.append((y1 - target).abs().mean().item())
    return errs


@pytest.mark.parametrize(
    "method,options,order",
    [("euler", None, 0.5), ("milstein", None, 1.0), ("milstein", {"derivative_free": True}, 1.0)],
)
def test_strong_order_on_gbm(method, options, order):
    sde = GBM(mu=0.5, sigma=0.8)
    dts = [2.0**-k for k in range(3, 9)]
    errs = _strong_errors(
        sde, lambda y0, bm: sde.exact(y0, 1.0, bm(0.0, 1.0)), method, dts, options=options
    )
    assert abs(_slope(dts, errs) - order) < 0.1, (errs, _slope(dts, errs))


class AdditiveOU(SDE):
    """dX = -theta X dt + s (1 + t) dW, X0 = 0: additive noise whose solution is the Ito
    integral s int e^{-theta(1-r)} (1 + r) dW_r, so every error comes from the noise terms."""

    noise_type, sde_type = "additive", "ito"
    theta, s = 2.0, 1.0

    def f(self, t, y):
        return -self.theta * y

    def g(self, t, y):
        return torch.full((y.shape[0], 1, 1), self.s, dtype=y.dtype) * (1 + t)


def _additive_exact(y0, bm, n_fine=2**12):
    """X_1 = s int_0^1 k(r) dW_r with k(r) = e^{-theta(1-r)} (1 + r). On each fine step
    [a, b], k(r) = k(b) - k'(b)(b - r) + O(h^2) and int_a^b (b - r) dW_r = U (the time
    integral of the Brownian increment), so the sum is exact to O(h^2) overall."""
    th, s = AdditiveOU.theta, AdditiveOU.s
    h = 1.0 / n_fine
    out = torch.zeros_like(y0)
    for k in range(n_fine):
        b = (k + 1) * h
        dw, u = bm(b - h, b, return_U=True)
        kb = math.exp(-th * (1 - b)) * (1 + b)
        dkb = math.exp(-th * (1 - b)) * (th * (1 + b) + 1)
        out += kb * dw - dkb * u
    return s * out


def test_sra1_converges_at_least_at_order_one_and_a_half_against_exact_solution():
    # On linear drift SRA1's order-1.5 error terms vanish and it reaches order 2 (seen:
    # 2.1), so this exact-solution check is one-sided; the next test pins the order.
    sde = AdditiveOU()
    dts = [2.0**-k for k in range(1, 6)]
    errs = _strong_errors(sde, _additive_exact, "srk", dts, batch=1000, levy=True, y0=0.0)
    assert _slope(dts, errs) > 1.5 - 0.15, errs


class AdditiveNonlinear(SDE):
    """dX = (-X / 2 + sin X) dt + dW: nonlinear drift, additive noise (no closed form)."""

    noise_type, sde_type = "additive", "ito"

    def f(self, t, y):
        return -0.5 * y + torch.sin(y)

    def g(self, t, y):
        return torch.ones((y.shape[0], 1, 1), dtype=y.dtype)


def test_sra1_strong_order_is_one_and_a_half_on_nonlinear_additive_noise():
    # Reference: SRA1 at dt = 2^-11 on the same Brownian path (its own error ~1e-5 is
    # far below the coarse errors 1e-1 .. 1e-3).
    sde = AdditiveNonlinear()
    bm = BrownianPath(0.0, 1.0, 2**11, (1000, 1), generator=torch.Generator().manual_seed(11))
    y0 = torch.full((1000, 1), 0.5, dtype=F64)
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    ref = solve(sde, y0, ts, method="srk", dt=2**-11, bm=bm)[-1]
    dts = [2.0**-k for k in range(2, 8)]
    errs = [
        (solve(sde, y0, ts, method="srk", dt=dt, bm=bm)[-1] - ref).abs().mean().item() for dt in dts
    ]
    assert abs(_slope(dts, errs) - 1.5) < 0.15, errs


def test_euler_weak_order_one_on_ou_mean():
    # Weak error of E[y] at T = 1 against the closed form; the batch is large enough that
    # the bias dominates the Monte Carlo error (checked) at every step size.
    sde = OU(theta=2.0, mu=0.0, sigma=0.5)
    y0 = torch.ones(400_000, 1, dtype=F64)
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    dts = [2.0**-k for k in range(2, 6)]
    m1 = sde.mean(1.0, 1.0)
    for moment, exact in [(1, m1)]:
        errs = []
        for dt in dts:
            y = solve(sde, y0, ts, dt=dt, generator=torch.Generator().manual_seed(1))[-1] ** moment
            se = y.std().item() / math.sqrt(len(y))
            err = abs(y.mean().item() - exact)
            assert err > 4 * se, (moment, dt, err, se)
            errs.append(err)
        assert abs(_slope(dts, errs) - 1.0) < 0.15, (moment, errs)


@pytest.mark.parametrize("method", ["euler", "milstein", "srk"])
def test_ou_mean_and_variance_match_closed_form(method):
    sde = OU(theta=1.0, mu=0.5, sigma=0.8)
    n = 20000
    y0 = torch.full((n, 1), 2.0, dtype=F64)
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    ys = solve(sde, y0, ts, method=method, dt=2**-9, generator=torch.Generator().manual_seed(5))
    for k, t in enumerate(ts.tolist()[1:], start=1):
        y = ys[k, :, 0]
        mean, var = sde.mean(2.0, t), sde.var(t)
        assert abs(y.mean().item() - mean) < 4 * math.sqrt(var / n)
        # standard error of the sample variance of a Gaussian: var * sqrt(2 / (n - 1))
        assert abs(y.var().item() - var) < 4 * var * math.sqrt(2 / (n - 1))


def test_same_seed_gives_same_path_whatever_the_method():
    sde = OU(sigma=0.0)  # zero noise: every method then solves the same ODE ...

    class Probe(SDE):  # ... so probe the path itself: dy = dW
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            return torch.zeros_like(y)

        def g(self, t, y):
            return torch.ones_like(y)

    ts = torch.linspace(0, 1, 11, dtype=F64)
    y0 = torch.zeros(4, 2, dtype=F64)
    paths = [
        solve(Probe(), y0, ts, method=m, dt=0.01, generator=torch.Generator().manual_seed(7))
        for m in ["euler", "milstein", "srk"]
    ]
    strat = Probe()
    strat.sde_type = "stratonovich"
    paths += [
        solve(strat, y0, ts, method=m, dt=0.01, generator=torch.Generator().manual_seed(7))
        for m in ["heun", "midpoint", "reversible_heun"]
    ]
    for p in paths[1:]:
        assert torch.allclose(p, paths[0], atol=1e-12)
    other = solve(Probe(), y0, ts, dt=0.01, generator=torch.Generator().manual_seed(8))
    assert not torch.allclose(other, paths[0])
    del sde


@pytest.mark.parametrize("method", ["euler", "heun", "srk"])
def test_adaptive_steps_match_ou_moments(method):
    sde = OU(theta=1.0, mu=0.0, sigma=0.5, noise_type="additive")
    if method == "heun":
        sde.sde_type = "stratonovich"  # additive noise: Ito and Stratonovich coincide
    n = 4000
    y0 = torch.full((n, 1), 1.0, dtype=F64)
    ts = torch.tensor([0.0, 0.3, 1.0], dtype=F64)
    ys = solve(
        sde,
        y0,
        ts,
        method=method,
        dt=0.1,
        rtol=1e-2,
        atol=1e-3,
        generator=torch.Generator().manual_seed(3),
    )
    y = ys[-1, :, 0]
    assert abs(y.mean().item() - sde.mean(1.0, 1.0)) < 4 * math.sqrt(sde.var(1.0) / n)
    assert abs(y.var().item() - sde.var(1.0)) < 4 * sde.var(1.0) * math.sqrt(2 / (n - 1))


def test_output_times_off_the_grid_are_hit_exactly():
    class Clock(SDE):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            return torch.ones_like(y)

        def g(self, t, y):
            return torch.zeros_like(y)

    ts = torch.tensor([0.0, 0.0123, 0.5, 0.777], dtype=F64)
    ys = solve(Clock(), torch.zeros(1, 1, dtype=F64), ts, dt=0.1)
    assert torch.allclose(ys[:, 0, 0], ts, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_times_on_the_step_grid_add_no_steps(dtype):
    """float32 ``k * dt`` differs from the float64 step point by ~1e-8: no extra step."""
    calls = []

    class Counting(SDE):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            calls.append(float(t))
            return -y

        def g(self, t, y):
            return torch.ones_like(y)

    ts = torch.arange(101, dtype=dtype) * 0.01
    ys = solve(Counting(), torch.zeros(2, 1, dtype=dtype), ts, dt=0.01)
    assert ys.shape[0] == 101
    assert len(calls) == 100  # one drift evaluation per Euler step
    assert min(np.diff(calls)) > 0.5 * 0.01


def test_brownian_path_increments_and_time_integrals_have_exact_moments():
    # W = bm(a, b), U = int_a^b (W_s - W_a) ds for h = b - a: Var W = h, Var U = h^3 / 3,
    # Cov(W, U) = h^2 / 2. Tolerances: 4 standard errors of the sample moments (n = 20000).
    n = 20000
    bm = BrownianPath(0.0, 1.0, 64, (n, 1), generator=torch.Generator().manual_seed(2))
    w, u = bm(0.25, 0.75, return_U=True)
    h = 0.5
    for x, exact in [(w * w, h), (u * u, h**3 / 3), (w * u, h**2 / 2)]:
        assert abs(x.mean().item() - exact) < 4 * x.std().item() / math.sqrt(n)
    w1, u1 = bm(0.25, 0.5, return_U=True)
    w2, u2 = bm(0.5, 0.75, return_U=True)
    assert torch.allclose(w1 + w2, w)
    assert torch.allclose(u1 + u2 + w1 * 0.25, u)  # Chen's relation for the time integral
    with pytest.raises(ValueError, match="queryable on its grid"):
        bm(0.1, 0.3)
