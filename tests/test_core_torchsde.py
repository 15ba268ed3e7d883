"""solve agrees with torchsde.sdeint on a shared Brownian path, and interoperates."""

import pytest
import torch
import torchsde
from torch import nn

from neuralsde import SDE, solve
from neuralsde.examples import NeuralSDE


class Diagonal(SDE):
    noise_type, sde_type = "diagonal", "ito"

    def f(self, t, y):
        return torch.sin(y) - 0.5 * y + t

    def g(self, t, y):
        return 0.3 * torch.cos(y) + 0.5


class Scalar(SDE):
    noise_type, sde_type = "scalar", "ito"

    def f(self, t, y):
        return -(y**3) + torch.cos(t)

    def g(self, t, y):
        return (0.2 * y + 0.4).unsqueeze(-1)


class Additive(SDE):
    noise_type, sde_type = "additive", "ito"

    def __init__(self, d, m):
        super().__init__()
        self.B = torch.linspace(-1, 1, d * m, dtype=torch.float64).view(d, m)

    def f(self, t, y):
        return torch.tanh(y) - y + torch.sin(3 * t)

    def g(self, t, y):
        return ((1 + t) * self.B).expand(y.shape[0], -1, -1)


CASES = [(Diagonal, 3, 3), (Scalar, 3, 1), (Additive, 3, 2)]


@pytest.mark.parametrize("method", ["euler", "milstein", "srk"])
@pytest.mark.parametrize("make,d,m", CASES)
def test_solve_matches_torchsde_on_shared_path(method, make, d, m):
    sde = make(d, m) if make is Additive else make()
    y0 = torch.linspace(-1, 1, 8 * d, dtype=torch.float64).view(8, d)
    ts = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    bm = torchsde.BrownianInterval(
        0.0,
        1.0,
        size=(8, m),
        dtype=torch.float64,
        entropy=3,
        levy_area_approximation="space-time",
    )
    ours = solve(sde, y0, ts, method=method, dt=2**-6, bm=bm)
    theirs = torchsde.sdeint(sde, y0, ts, method=method, dt=2**-6, bm=bm)
    assert ours.shape == (4, 8, d)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-8), (ours - theirs).abs().max()


def test_neuralsde_sde_object_runs_in_torchsde():
    torch.manual_seed(0)
    sde = NeuralSDE(state=4, width=16).double()
    y0 = torch.randn(5, 4, dtype=torch.float64)
    ts = torch.linspace(0, 1, 3, dtype=torch.float64)
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(5, 4), dtype=torch.float64, entropy=1)
    theirs = torchsde.sdeint(sde, y0, ts, method="euler", dt=0.125, bm=bm)
    ours = solve(sde, y0, ts, dt=0.125, bm=bm)
    assert torch.allclose(ours, theirs, atol=1e-10)


def test_torchsde_style_module_runs_in_solve():
    class TorchsdeStyle(nn.Module):  # a torchsde user's class, not subclassing neuralsde.SDE
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            return -y

        def g(self, t, y):
            return torch.ones_like(y)

    y = solve(TorchsdeStyle(), torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    assert y.shape == (2, 2, 3)
