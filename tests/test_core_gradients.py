"""Gradients: finite differences, the reversible adjoint and the backsolve adjoint."""

import pytest
import torch
import torchsde
from torch import nn

from neuralsde import SDE, solve
from neuralsde.examples import NeuralSDE

F64 = torch.float64


class Param(SDE):
    """dy = (a sin y - b y) dt + c (1 + cos y) dW, a small parametric SDE."""

    def __init__(self, sde_type="ito"):
        super().__init__(noise_type="diagonal", sde_type=sde_type)
        self.a = nn.Parameter(torch.tensor(0.7, dtype=F64))
        self.b = nn.Parameter(torch.tensor(1.3, dtype=F64))
        self.c = nn.Parameter(torch.tensor(0.4, dtype=F64))

    def f(self, t, y):
        return self.a * torch.sin(y) - self.b * y

    def g(self, t, y):
        return self.c * (1 + 0.5 * torch.cos(y))


def _loss(sde, method, adjoint=None, dt=0.05, bm=None, seed=0):
    y0 = torch.linspace(-1, 1, 6, dtype=F64).view(3, 2)
    ts = torch.tensor([0.0, 0.4, 1.0], dtype=F64)
    gen = torch.Generator().manual_seed(seed)
    ys = solve(sde, y0, ts, method=method, dt=dt, adjoint=adjoint, bm=bm, generator=gen)
    return (ys[1] ** 2).sum() + torch.tanh(ys[2]).sum()


@pytest.mark.parametrize(
    "method,sde_type",
    [("euler", "ito"), ("milstein", "ito"), ("srk", "ito"), ("heun", "stratonovich")],
)
def test_direct_gradients_match_central_finite_differences(method, sde_type):
    sde = Param(sde_type)
    loss = _loss(sde, method)
    grads = torch.autograd.grad(loss, list(sde.parameters()))
    eps = 1e-6
    for p, g in zip(sde.parameters(), grads, strict=False):
        with torch.no_grad():
            p += eps
            up = _loss(sde, method)
            p -= 2 * eps
            down = _loss(sde, method)
            p += eps
        fd = (up - down) / (2 * eps)
        assert torch.allclose(g, fd, rtol=1e-6, atol=1e-8), (g, fd)


def test_reversible_adjoint_equals_backprop_through_reversible_heun():
    torch.manual_seed(0)
    sde = NeuralSDE(state=3, width=16, sde_type="stratonovich").double()
    y0 = torch.randn(4, 3, dtype=F64, requires_grad=True)
    ts = torch.tensor([0.0, 0.3, 0.35, 1.0], dtype=F64)
    w = torch.randn(4, 4, 3, dtype=F64)
    grads = []
    for adjoint in (None, "reversible"):
        gen = torch.Generator().manual_seed(1)
        ys = solve(sde, y0, ts, method="reversible_heun", dt=0.02, adjoint=adjoint, generator=gen)
        loss = (w * torch.sin(ys)).sum()
        grads.append(torch.autograd.grad(loss, [y0, *sde.parameters()]))
    for direct, rev in zip(*grads, strict=False):
        scale = direct.abs().max().clamp_min(1e-12)
        assert ((direct - rev).abs().max() / scale) < 1e-8


def test_reversible_adjoint_forward_equals_plain_solve():
    sde = Param("stratonovich")
    y0 = torch.ones(3, 2, dtype=F64)
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    kw = dict(method="reversible_heun", dt=0.1)
    a = solve(sde, y0, ts, generator=torch.Generator().manual_seed(2), **kw)
    b = solve(sde, y0, ts, adjoint="reversible", generator=torch.Generator().manual_seed(2), **kw)
    assert torch.equal(a, b)


def test_backsolve_error_shrinks_with_dt():
    sde = Param("ito")
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(3, 2), dtype=F64, entropy=4)
    errors = []
    for dt in (0.1, 0.02, 0.004):
        direct = torch.autograd.grad(_loss(sde, "euler", dt=dt, bm=bm), list(sde.parameters()))
        back = torch.autograd.grad(
            _loss(sde, "euler", "backsolve", dt=dt, bm=bm), list(sde.parameters())
        )
        errors.append(
            max(
                ((d - b).abs() / d.abs().clamp_min(1e-3)).item()
                for d, b in zip(direct, back, strict=False)
            )
        )
    assert errors[-1] < 0.05, errors
    assert errors[0] > errors[1] > errors[2], errors
