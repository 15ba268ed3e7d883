"""Neural CDE baseline (Kidger et al. 2020) on torchcde: ``dz = F(z) dX(t)``.

``F(z) = tanh(MLP(z)): (batch, hidden, control)``; ``z0 = Linear(X(t0))``. It shares the
``hidden_path(path, ts, ...)`` interface of :class:`neuralsde.models.StableSDE`, so the same
heads and estimators drive both.
"""

from __future__ import annotations

import torch
import torchcde
from torch import nn

from neuralsde.models.stable import MLP

__all__ = ["CDEFunc", "NeuralCDE"]

_FIXED_GRID = ("euler", "midpoint", "rk4", "explicit_adams", "implicit_adams")


class CDEFunc(nn.Module):
    """The CDE vector field ``F(z) = tanh(MLP(z))`` reshaped to ``(batch, hidden, control)``."""

    def __init__(self, hidden, control, width=32, depth=2):
        super().__init__()
        self.hidden, self.control = hidden, control
        self.net = MLP(hidden, hidden * control, width, depth, final_tanh=True)

    def forward(self, t, z):
        return self.net(z).view(z.shape[0], self.hidden, self.control)


class NeuralCDE(nn.Module):
    """Neural controlled differential equation encoder.

    Example:
        >>> import torch, torchcde
        >>> t = torch.linspace(0, 1, 5)
        >>> X = torchcde.CubicSpline(
        ...     torchcde.hermite_cubic_coefficients_with_backward_differences(
        ...         torch.randn(3, 5, 2), t), t)
        >>> NeuralCDE(control=2, hidden=4).hidden_path(X, t[[0, -1]], dt=0.1).shape
        torch.Size([2, 3, 4])
    """

    kind = "ncde"

    def __init__(self, control: int, hidden: int, width: int | None = None, depth: int = 2):
        super().__init__()
        for name, value in (("control", control), ("hidden", hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        self.control_channels, self.hidden = control, hidden
        self.initial = nn.Linear(control, hidden)
        self.func = CDEFunc(hidden, control, hidden if width is None else width, depth)

    def hidden_path(self, path, ts, *, method="euler", dt=None, generator=None, adjoint=None):
        """``z`` at ``ts``: ``(len(ts), batch, hidden)``. ``method`` is a torchdiffeq method;
        SDE-only names (``milstein``, ``srk``, ...) fall back to ``"rk4"``. ``generator`` and
        ``adjoint`` are accepted for interface parity (a CDE has no noise)."""
        ts = torch.as_tensor(ts)
        z0 = self.initial(path.evaluate(ts[0]))
        if method not in _FIXED_GRID:
            method = "rk4"
        step = float(dt) if dt is not None else float(ts[-1] - ts[0]) / 100
        z = torchcde.cdeint(
            X=path,
            func=self.func,
            z0=z0,
            t=ts.to(z0),
            method=method,
            options={"step_size": step},
            adjoint=False,
        )
        return z.transpose(0, 1)
