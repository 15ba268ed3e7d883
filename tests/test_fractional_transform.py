"""fractional(sde, noise): the augmented Markov SDE goes through neuralsde.solve unchanged."""

import math

import numpy as np
import pytest
import torch

from neuralsde import controlled, logqp, solve
from neuralsde.core.sde import SDE
from neuralsde.noise import FractionalSDE, MarkovFBM, fractional

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


class Pure(SDE):
    """dx = a x dt + s dB^H (diagonal)."""

    def __init__(self, a=0.0, s=1.0, noise_type="diagonal", sde_type="ito"):
        super().__init__(noise_type, sde_type)
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=F64))
        self.s = s

    def f(self, t, y):
        return self.a * y

    def g(self, t, y):
        if self.noise_type == "diagonal":
            return self.s * torch.ones_like(y)
        if self.noise_type == "scalar":
            return self.s * torch.ones_like(y).unsqueeze(-1)
        return self.s * torch.ones(y.shape[0], y.shape[1], 2, dtype=y.dtype)


@pytest.mark.parametrize("kind", ["II", "I"])
def test_x_equals_weighted_sum_of_ou_channels_pathwise(kind):
    noise = MarkovFBM(hurst=0.7, K=5, kind=kind)
    aug = fractional(Pure(), noise, dt=0.01)
    gen = torch.Generator().manual_seed(0)
    y0 = aug.augment(torch.zeros(16, 2, dtype=F64), generator=gen)
    ys = solve(aug, y0, torch.linspace(0, 1, 11, dtype=F64), dt=0.01, generator=gen)
    x, Y = aug.split(ys)
    w = noise.omega()
    torch.testing.assert_close(x, ((Y - Y[:1]) * w).sum(-1), atol=1e-12, rtol=0)
    assert ys.shape == (11, 16, 2 * 6)


def test_solved_paths_have_the_markov_fbm_covariance():
    noise = MarkovFBM(hurst=0.7, K=5, gamma_max=20.0)
    aug = fractional(Pure(), noise, dt=0.005)
    n = 4000
    y0 = aug.augment(torch.zeros(n, 1, dtype=F64))
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    ys = solve(aug, y0, ts, dt=0.005, generator=torch.Generator().manual_seed(1))
    x = aug.split(ys)[0][1:, :, 0].detach().numpy()
    target = noise.cov(ts[1:], ts[1:]).numpy()
    emp = np.cov(x)
    se = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target**2) / n)
    assert np.max(np.abs(emp - target) / se) < 4.0


def test_constant_control_shifts_the_mean_and_integrates_half_u_squared():
    noise = MarkovFBM(hurst=0.7, K=5)
    c = 0.8
    base = fractional(Pure(), noise)
    aug = logqp(controlled(base, lambda t, y, args, f, g: torch.full_like(y[:, :1], c)), base)
    n, dt = 2000, 0.01
    y0 = aug.augment(torch.zeros(n, 1, dtype=F64))
    ys = solve(aug, y0, torch.tensor([0.0, 1.0], dtype=F64), dt=dt,
               generator=torch.Generator().manual_seed(2))  # fmt: skip
    torch.testing.assert_close(ys[-1, :, -1].detach(), torch.full((n,), 0.5 * c * c, dtype=F64))
    g, w = noise.gammas(), noise.omega()
    # Euler mean of dY = (-g Y + c) dt: c/g (1 - (1 - g dt)^N).
    mean = float((w * c / g * (1 - (1 - g * dt) ** 100)).sum())
    x = aug.split(ys)[0][-1, :, 0].detach()
    assert abs(float(x.mean()) - mean) < 4 * float(x.std()) / math.sqrt(n)


def test_scalar_and_general_noise_give_scalar_and_general_augmented_sdes():
    noise = MarkovFBM(K=3)
    scal = fractional(Pure(noise_type="scalar"), noise)
    gen = fractional(Pure(noise_type="general"), noise, brownian_size=2)
    assert scal.noise_type == "scalar" and gen.noise_type == "general"
    t = torch.tensor(0.0, dtype=F64)
    y = scal.augment(torch.ones(4, 3, dtype=F64))
    assert y.shape == (4, 3 + 3) and scal.g(t, y).shape == (4, 6, 1)
    y = gen.augment(torch.ones(4, 3, dtype=F64))
    assert y.shape == (4, 3 + 2 * 3) and gen.g(t, y).shape == (4, 9, 2)
    out = solve(gen, y, torch.tensor([0.0, 0.5], dtype=F64), dt=0.01)
    assert out.shape == (2, 4, 9) and torch.isfinite(out).all()


def test_reversible_adjoint_gives_the_direct_gradient_in_hurst_and_drift():
    def grads(adjoint):
        torch.manual_seed(0)
        noise = MarkovFBM(hurst=0.6, K=4, learn_hurst=True)
        base = Pure(a=-0.5, sde_type="stratonovich")
        aug = fractional(base, noise)
        y0 = aug.augment(torch.full((8, 2), 0.3, dtype=F64))
        ts = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
        gen = torch.Generator().manual_seed(3)
        ys = solve(aug, y0, ts, method="reversible_heun", dt=0.01, adjoint=adjoint, generator=gen)
        (aug.split(ys)[0] ** 2).sum().backward()
        return torch.stack([noise.raw_hurst.grad, base.a.grad])

    direct, rev = grads(None), grads("reversible")
    torch.testing.assert_close(rev, direct, rtol=1e-6, atol=1e-10)
    assert bool((direct != 0).all())


def test_dt_too_large_and_missing_brownian_size_are_rejected():
    with pytest.raises(ValueError, match=r"gamma_max \* dt must be < 0.5"):
        fractional(Pure(), MarkovFBM(gamma_max=20.0), dt=0.05)
    with pytest.raises(ValueError, match="brownian_size is required for noise_type='general'"):
        fractional(Pure(noise_type="general"), MarkovFBM())
    with pytest.raises(TypeError, match="noise must be a MarkovFBM; got str"):
        fractional(Pure(), "fbm")
    assert isinstance(fractional(Pure(), MarkovFBM()), FractionalSDE)


def test_precomputed_omega_gives_the_same_paths_and_hurst_gradient():
    def run(precompute):
        noise = MarkovFBM(hurst=0.65, K=4, learn_hurst=True).double()
        aug = fractional(Pure(a=-0.3), noise, omega=noise.omega() if precompute else None)
        y0 = aug.augment(torch.full((6, 2), 0.2, dtype=F64))
        ts = torch.tensor([0.0, 1.0], dtype=F64)
        ys = solve(aug, y0, ts, dt=0.02, generator=torch.Generator().manual_seed(4))
        (aug.split(ys)[0] ** 2).sum().backward()
        return ys.detach(), noise.raw_hurst.grad

    (y1, g1), (y2, g2) = run(True), run(False)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(g1, g2)
