"""The ``args`` channel: per-call data reaches f and g, gradients reach tensors inside it under
every adjoint, torchsde-style SDEs keep working, and the precompute hook sees the step grid."""

import pytest
import torch

import neuralsde.core.sde as sde_mod
from neuralsde import SDE, solve
from neuralsde.core.grid import step_grid
from neuralsde.core.methods import METHODS

F64 = torch.float64


class Shifted(SDE):
    """dy = (a sin y - b y + c) dt + s (1 + cos(y) / 2) dW, with ``c`` and ``s`` in ``args``."""

    def __init__(self, sde_type="ito"):
        super().__init__(noise_type="diagonal", sde_type=sde_type)
        self.a = torch.nn.Parameter(torch.tensor(0.7, dtype=F64))
        self.b = torch.nn.Parameter(torch.tensor(1.3, dtype=F64))

    def f(self, t, y, args):
        return self.a * torch.sin(y) - self.b * y + args["shift"]

    def g(self, t, y, args):
        return args["scale"][1] * (1 + 0.5 * torch.cos(y))


def _args(shift, scale):
    return {"shift": shift, "scale": ("unused", scale)}  # nested, with a non-tensor leaf


def _loss(sde, args, method, adjoint=None, dt=0.05, bm=None, batch=3):
    y0 = torch.linspace(-1, 1, 2 * batch, dtype=F64).view(batch, 2)
    ts = torch.tensor([0.0, 0.4, 1.0], dtype=F64)
    gen = torch.Generator().manual_seed(0)
    ys = solve(sde, y0, ts, method=method, dt=dt, adjoint=adjoint, bm=bm, generator=gen,
               args=args)  # fmt: skip
    return (ys[1] ** 2).sum() + torch.tanh(ys[2]).sum()


def _finite_differences(sde, method, shift, scale, eps=1e-6, **kw):
    """Central differences of the loss in every entry of ``shift`` and in ``scale``."""
    base = [shift.detach().clone(), scale.detach().clone()]
    grads = []
    for which in (0, 1):
        grad = torch.zeros_like(base[which])
        for k in range(grad.numel()):
            up, down = [x.clone() for x in base], [x.clone() for x in base]
            up[which].view(-1)[k] += eps
            down[which].view(-1)[k] -= eps
            with torch.no_grad():
                diff = _loss(sde, _args(*up), method, **kw) - _loss(sde, _args(*down), method, **kw)
            grad.view(-1)[k] = diff / (2 * eps)
        grads.append(grad)
    return grads


@pytest.mark.parametrize(
    "method,sde_type,adjoint",
    [("euler", "ito", None), ("heun", "stratonovich", None),
     ("reversible_heun", "stratonovich", "reversible")],
)  # fmt: skip
def test_gradients_into_args_equal_finite_differences(method, sde_type, adjoint):
    sde = Shifted(sde_type)
    shift = torch.tensor([0.3, -0.2], dtype=F64, requires_grad=True)
    scale = torch.tensor(0.4, dtype=F64, requires_grad=True)
    loss = _loss(sde, _args(shift, scale), method, adjoint)
    got = torch.autograd.grad(loss, [shift, scale])
    fd = _finite_differences(sde, method, shift, scale)
    for g, f in zip(got, fd, strict=True):
        torch.testing.assert_close(g, f, rtol=1e-6, atol=1e-8)


def test_backsolve_gradients_into_args_converge_to_finite_differences():
    """The stochastic adjoint solves the adjoint SDE backwards on the same Brownian path, so
    its gradient matches the discretised one up to O(dt): the gap shrinks with dt."""
    import torchsde

    sde = Shifted("ito")
    shift = torch.tensor([0.3, -0.2], dtype=F64, requires_grad=True)
    scale = torch.tensor(0.4, dtype=F64, requires_grad=True)
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(64, 2), dtype=F64, entropy=4)
    kw = dict(bm=bm, batch=64)
    gaps = []
    for dt in (0.1, 0.02, 0.004):
        loss = _loss(sde, _args(shift, scale), "euler", "backsolve", dt=dt, **kw)
        got = torch.autograd.grad(loss, [shift, scale])
        fd = _finite_differences(sde, "euler", shift, scale, dt=dt, **kw)
        gaps.append(
            max(float((g - f).abs().max() / f.abs().max()) for g, f in zip(got, fd, strict=True))
        )
    assert gaps[-1] < 0.01, gaps
    assert gaps[0] > gaps[1] > gaps[2], gaps


def test_parameters_still_get_gradients_when_args_are_built_from_them():
    """A table built from a parameter before the solve is backpropagated through once, even
    under the reversible adjoint (which differentiates with respect to a detached copy)."""
    grads = []
    for adjoint in (None, "reversible"):
        sde = Shifted("stratonovich")
        w = torch.nn.Parameter(torch.tensor(0.25, dtype=F64))
        args = _args(w * torch.ones(2, dtype=F64), 2 * w)
        loss = _loss(sde, args, "reversible_heun", adjoint)
        grads.append(torch.autograd.grad(loss, [w, sde.a, sde.b]))
    for direct, rev in zip(*grads, strict=True):
        torch.testing.assert_close(rev, direct, rtol=1e-9, atol=1e-12)


class TwoArgs(SDE):
    """The same SDE written with the torchsde signature and its data on the module."""

    def __init__(self, shift, scale):
        super().__init__(noise_type="diagonal", sde_type="ito")
        self.inner, self.shift, self.scale = Shifted(), shift, scale

    def f(self, t, y):
        return self.inner.f(t, y, _args(self.shift, self.scale))

    def g(self, t, y):
        return self.inner.g(t, y, _args(self.shift, self.scale))


def test_a_two_argument_sde_runs_and_gives_the_same_path_for_the_same_seed():
    shift, scale = torch.tensor([0.3, -0.2], dtype=F64), torch.tensor(0.4, dtype=F64)
    y0 = torch.ones(4, 2, dtype=F64)
    ts = torch.linspace(0, 1, 5, dtype=F64)
    for method in ("euler", "milstein", "srk"):
        runs = [
            solve(
                sde,
                y0,
                ts,
                method=method,
                dt=0.02,
                args=args,
                generator=torch.Generator().manual_seed(3),
            )  # fmt: skip
            for sde, args in ((TwoArgs(shift, scale), None), (Shifted(), _args(shift, scale)))
        ]
        torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    first = solve(TwoArgs(shift, scale), y0, ts, dt=0.02,
                  generator=torch.Generator().manual_seed(3))  # fmt: skip
    again = solve(TwoArgs(shift, scale), y0, ts, dt=0.02,
                  generator=torch.Generator().manual_seed(3))  # fmt: skip
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    other = solve(TwoArgs(shift, scale), y0, ts, dt=0.02,
                  generator=torch.Generator().manual_seed(4))  # fmt: skip
    assert not torch.allclose(other, again)


def test_args_for_a_two_argument_sde_is_an_error_naming_args():
    with pytest.raises(TypeError, match=r"args was given, but TwoArgs.f and .g take \(t, y\)"):
        solve(TwoArgs(0.0, 1.0), torch.ones(2, 2, dtype=F64), torch.tensor([0.0, 1.0], dtype=F64),
              args={"shift": 1.0})  # fmt: skip


def test_the_signature_is_inspected_once_per_solve_not_per_step(monkeypatch):
    calls = []
    real = sde_mod.takes_args

    def counting(fn):
        calls.append(fn)
        return real(fn)

    monkeypatch.setattr(sde_mod, "takes_args", counting)
    y0, ts = torch.ones(2, 2, dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    solve(Shifted(), y0, ts, dt=0.001, args=_args(torch.zeros(2, dtype=F64), torch.tensor(1.0)))
    assert 0 < len(calls) <= 3  # f, g and f_and_g, for 1000 steps


class Hooked(SDE):
    """dy = c(t) dt + dW with ``c(t) = t`` read from a table that ``precompute`` builds."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self):
        super().__init__()
        self.grids = []

    def precompute(self, grid, args):
        self.grids.append(grid)
        if grid is None:
            return args
        return {"times": grid.tolist(), "values": grid.clone()}

    def f(self, t, y, args):
        if args is not None and float(t) in args["times"]:
            c = args["values"][args["times"].index(float(t))]
            return torch.full_like(y, float(c))
        return torch.full_like(y, float(t))

    def g(self, t, y, args):
        return torch.zeros_like(y)


def test_precompute_is_called_once_with_the_step_grid_that_solve_built():
    sde = Hooked()
    ts = torch.tensor([0.0, 0.33, 1.0], dtype=F64)
    ys = solve(sde, torch.zeros(1, 1, dtype=F64), ts, dt=0.1)
    assert len(sde.grids) == 1
    torch.testing.assert_close(sde.grids[0], step_grid(ts, 0.1)[0])
    # Euler on dy = t dt: the left Riemann sum of the tabulated t over the grid
    g = sde.grids[0]
    want = (g[:-1] * torch.diff(g)).sum()
    torch.testing.assert_close(ys[-1, 0, 0], want)


def test_precompute_gets_no_grid_for_methods_that_evaluate_off_the_grid_or_adaptive_steps():
    sde = Hooked()
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    sde.sde_type = "stratonovich"
    solve(sde, torch.zeros(1, 1, dtype=F64), ts, method="midpoint", dt=0.1)
    solve(sde, torch.zeros(1, 1, dtype=F64), ts, method="heun", dt=0.1, rtol=1e-3, atol=1e-3)
    assert sde.grids == [None, None]


@pytest.mark.parametrize("method", sorted(n for n, m in METHODS.items() if m.torchsde_name))
def test_backsolve_runs_every_method_with_a_torchsde_counterpart(method):
    """Declared by ``torchsde_name``, not switched on names; gradients (into a parameter and
    into ``args``) agree in direction with backpropagation through the same steps."""
    import torchsde

    cls = METHODS[method]
    sde_type = "ito" if "ito" in cls.sde_types else "stratonovich"
    sde = Shifted(sde_type)
    shift = torch.tensor([0.3, -0.2], dtype=F64, requires_grad=True)
    scale = torch.tensor(0.4, dtype=F64, requires_grad=True)
    levy = "space-time" if cls.levy_area else "none"
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(16, 2), dtype=F64, entropy=2,
                                   levy_area_approximation=levy)  # fmt: skip
    grads = []
    for adjoint in (None, "backsolve"):
        loss = _loss(sde, _args(shift, scale), method, adjoint, dt=0.01, bm=bm, batch=16)
        grads.append(
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, [sde.a, shift, scale])])
        )
    direct, back = grads
    assert float(back @ direct / (back.norm() * direct.norm())) > 0.99
