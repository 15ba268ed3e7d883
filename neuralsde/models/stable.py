"""Stable neural SDEs for irregular time series (Oh, Lim & Kim, ICLR 2024).

Hidden state ``z: (batch, hidden)`` driven by the control path ``X(t)`` of the batch, with
``z~ = concat(z, X(t))`` and ``z0 = Linear(X(t0))``:

* LSDE  (Langevin-type): ``dz = gamma(z~) dt + sigma(t) dW``
* LNSDE (linear noise):  ``dz = gamma(t, z~) dt + sigma(t) * z dW``
* GSDE  (geometric):     ``dz = gamma(t, z~) * z dt + sigma(t) * z dW``
* naive: ``dz = f(t, z~) dt + g(t, z) dW`` with unconstrained MLPs (the unstable baseline).

``gamma`` is an MLP with a tanh output; ``sigma(t) = softplus(s) * MLP(sin t, cos t)``.
Drifts and diffusions are small separate modules: subclass one to make a new class.
"""

from __future__ import annotations

import bisect
import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F

from neuralsde.core.sde import SDE
from neuralsde.core.solve import step_grid

__all__ = [
    "GeometricDrift",
    "KINDS",
    "LangevinDrift",
    "LinearDiffusion",
    "MLP",
    "NaiveDiffusion",
    "NaiveDrift",
    "StableSDE",
    "TimeDiffusion",
    "TimeDrift",
    "default_dt",
]


class MLP(nn.Sequential):
    """``depth`` hidden layers of ``width`` units; optional tanh on the output.

    Example:
        >>> MLP(3, 2, width=8, depth=2)(torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """

    def __init__(
        self, in_features, out_features, width=32, depth=2, activation=nn.ReLU, final_tanh=False
    ):
        if int(depth) < 0:
            raise ValueError(f"depth must be a non-negative integer; got {depth!r}")
        layers, size = [], int(in_features)
        for _ in range(int(depth)):
            layers += [nn.Linear(size, int(width)), activation()]
            size = int(width)
        layers.append(nn.Linear(size, int(out_features)))
        if final_tanh:
            layers.append(nn.Tanh())
        super().__init__(*layers)


class _Table:
    """Values ``(len(grid), ...)`` precomputed on a step grid, read back by the nearest grid
    time. Used only with methods that evaluate on the grid (see ``GRID_METHODS``). On CPU a time
    off the grid returns None, so that the caller evaluates exactly, and the values are unbound
    once into per-time pieces: indexing the stacked tensor at every step would make each step's
    backward fill a gradient the size of the whole table."""

    def __init__(self, grid: torch.Tensor, values: torch.Tensor, step: float):
        self.half, self.on_device = 0.5 * step, values.is_cuda
        if self.on_device:  # no host sync per step: search on the device
            self.grid, self.values = grid.to(values.device), values
        else:
            self.times, self.pieces = grid.tolist(), values.unbind(0)

    def __call__(self, t: torch.Tensor):
        if self.on_device:
            t = torch.as_tensor(t).reshape(1).to(self.grid)
            idx = torch.searchsorted(self.grid, t - self.half).clamp(max=self.grid.shape[0] - 1)
            return self.values.index_select(0, idx).squeeze(0)
        s = float(t)
        k = min(bisect.bisect_left(self.times, s - self.half), len(self.times) - 1)
        if abs(self.times[k] - s) > 1e-3 * self.half:
            return None
        return self.pieces[k]


GRID_METHODS = ("euler", "milstein", "heun", "reversible_heun")


def _time_column(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return t.to(z).reshape(1, 1).expand(z.shape[0], 1)


# ----------------------------------------------------------------------------------- drifts
class LangevinDrift(nn.Module):
    """LSDE drift ``gamma(z~) = tanh(MLP([z, X(t)]))``; no explicit time. Shapes:
    ``z: (batch, hidden)``, ``x: (batch, control)`` -> ``(batch, hidden)``."""

    uses_time = False
    bounded = True

    def __init__(self, hidden, control, width=32, depth=2):
        super().__init__()
        extra = 1 if self.uses_time else 0
        self.hidden = hidden
        self.net = MLP(hidden + control + extra, hidden, width, depth, final_tanh=self.bounded)

    def gamma(self, t, z, x):
        inputs = [z, x] if not self.uses_time else [_time_column(t, z), z, x]
        return self.net(torch.cat(inputs, dim=-1))

    def forward(self, t, z, x):
        return self.gamma(t, z, x)

    # The first layer is linear in [t, z, x]: its t and x part can be computed for a whole step
    # grid at once (``project``), leaving one ``addmm`` in z per step (``forward_projected``).
    def project(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``W_t t + W_x x + b`` of the first layer: ``t: (n,)``, ``x: (n, batch, control)``
        -> ``(n, batch, width)``."""
        first = self.net[0]
        out = nn.functional.linear(x, first.weight[:, -x.shape[-1] :], first.bias)
        if self.uses_time:
            out = out + t.to(x).reshape(-1, 1, 1) * first.weight[:, 0]
        return out

    def z_weight(self) -> torch.Tensor:
        """``W_z^T: (hidden, width)``, the first layer's weight on ``z``."""
        start = 1 if self.uses_time else 0
        return self.net[0].weight[:, start : start + self.hidden].t()

    def forward_projected(self, z, projected, z_weight):
        """The drift from ``project``'s output at this time and ``z_weight()``."""
        h = torch.addmm(projected, z, z_weight)
        for layer in itertools.islice(self.net, 1, None):
            h = layer(h)
        return h


class TimeDrift(LangevinDrift):
    """LNSDE drift ``gamma(t, z~) = tanh(MLP([t, z, X(t)]))``."""

    uses_time = True


class GeometricDrift(TimeDrift):
    """GSDE drift ``gamma(t, z~) * z`` (so that ``dz / z = gamma dt + sigma dW``)."""

    def forward(self, t, z, x):
        return self.gamma(t, z, x) * z

    def forward_projected(self, z, projected, z_weight):
        return super().forward_projected(z, projected, z_weight) * z


class NaiveDrift(TimeDrift):
    """Unconstrained drift ``MLP([t, z, X(t)])`` with a linear output (naive baseline)."""

    bounded = False


# ------------------------------------------------------------------------------- diffusions
class TimeDiffusion(nn.Module):
    """LSDE diffusion ``sigma(t) = softplus(s) * MLP(sin t, cos t)``, one value per hidden
    channel, broadcast over the batch: returns ``(batch, hidden)`` (additive noise written as
    diagonal). With all MLP parameters zero, ``sigma(t) = 0`` exactly."""

    def __init__(self, hidden, width=16, depth=1):
        super().__init__()
        self.net = MLP(2, hidden, width, depth, activation=nn.Tanh)
        self.raw_scale = nn.Parameter(torch.tensor(math.log(math.expm1(0.1))))
        self._table = None

    @property
    def scale(self) -> torch.Tensor:
        return F.softplus(self.raw_scale)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """``sigma(t): (hidden,)`` for a 0-d ``t``; ``(..., hidden)`` for ``t: (...)``."""
        if self._table is not None:
            value = self._table(t)
            if value is not None:
                return value
        t = t.to(self.raw_scale).unsqueeze(-1)
        return self.scale * self.net(torch.cat([torch.sin(t), torch.cos(t)], dim=-1))

    def tabulate(self, grid: torch.Tensor | None, step: float = 0.0) -> None:
        """Precompute ``sigma`` on a step grid in one call (``None`` clears the table)."""
        self._table = None
        if grid is not None:
            grid = grid.to(self.raw_scale)
            self._table = _Table(grid, self.sigma(grid), step)

    def forward(self, t, z):
        return self.sigma(t).expand_as(z)


class LinearDiffusion(TimeDiffusion):
    """LNSDE / GSDE diffusion ``sigma(t) * z`` (diagonal): zero at ``z = 0``."""

    def forward(self, t, z):
        return self.sigma(t) * z


class NaiveDiffusion(nn.Module):
    """Unconstrained diagonal diffusion ``MLP([t, z])`` with a linear output."""

    def __init__(self, hidden, width=32, depth=2):
        super().__init__()
        self.net = MLP(hidden + 1, hidden, width, depth)

    def forward(self, t, z):
        return self.net(torch.cat([_time_column(t, z), z], dim=-1))


KINDS = {
    "lsde": (LangevinDrift, TimeDiffusion),
    "lnsde": (TimeDrift, LinearDiffusion),
    "gsde": (GeometricDrift, LinearDiffusion),
    "naive": (NaiveDrift, NaiveDiffusion),
}


# drift classes whose ``forward_projected`` is known to equal ``forward`` (a user subclass that
# overrides ``gamma`` or ``forward`` is evaluated directly)
_PROJECTABLE = (LangevinDrift, TimeDrift, GeometricDrift, NaiveDrift)


def default_dt(times: torch.Tensor) -> float:
    """The paper's step: ``max(min observed gap, 1e-3)``. ``times: (batch, length)`` with NaN
    padding allowed; gaps are taken within each series.

    Example:
        >>> default_dt(torch.tensor([[0.0, 0.5, 2.0], [0.0, 0.25, float("nan")]]))
        0.25
    """
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.dim() == 1:
        times = times.unsqueeze(0)
    gaps = times.diff(dim=-1)
    gaps = gaps[torch.isfinite(gaps) & (gaps > 0)]
    if gaps.numel() == 0:
        return 1e-3
    return max(float(gaps.min()), 1e-3)


class StableSDE(SDE):
    """A stable neural SDE, an SDE object for :func:`neuralsde.solve` (Ito, diagonal noise).

    ``kind`` picks the drift and diffusion classes from :data:`KINDS`; pass ``drift=`` /
    ``diffusion=`` modules to use your own (drift ``(t, z, x) -> (batch, hidden)``, diffusion
    ``(t, z) -> (batch, hidden)``). Before solving, attach the batch's control path with
    :meth:`set_control` (any object with ``evaluate(t) -> (batch, control)`` and
    ``interval``, e.g. ``IrregularBatch.path()``); ``X(t)`` is held at its end values outside
    the path's interval, so forecasts see no extrapolated spline.

    Args:
        control: number of channels of the control path ``X``.
        hidden: size of the hidden state ``z``.
        width, depth: size of the drift MLP (hidden layers).

    Example:
        >>> import torch, torchcde
        >>> t = torch.linspace(0, 1, 5)
        >>> X = torchcde.CubicSpline(
        ...     torchcde.hermite_cubic_coefficients_with_backward_differences(
        ...         torch.randn(3, 5, 2), t), t)
        >>> sde = StableSDE(control=2, hidden=4, kind="lnsde").set_control(X)
        >>> z0 = sde.initial_state()
        >>> sde.f(torch.tensor(0.5), z0).shape, sde.g(torch.tensor(0.5), z0).shape
        (torch.Size([3, 4]), torch.Size([3, 4]))
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(
        self,
        control: int,
        hidden: int,
        kind: str = "lnsde",
        width: int | None = None,
        depth: int = 2,
        drift: nn.Module | None = None,
        diffusion: nn.Module | None = None,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}; got {kind!r}")
        for name, value in (("control", control), ("hidden", hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        width = hidden if width is None else width
        drift_cls, diffusion_cls = KINDS[kind]
        self.kind, self.control_channels, self.hidden = kind, control, hidden
        self.initial = nn.Linear(control, hidden)
        self.drift = drift if drift is not None else drift_cls(hidden, control, width, depth)
        if diffusion is not None:
            self.diffusion = diffusion
        elif kind == "naive":
            self.diffusion = diffusion_cls(hidden, width, depth)
        else:
            self.diffusion = diffusion_cls(hidden)
        self._path = None
        self._control_table = self._drift_table = None

    # control path -------------------------------------------------------------------
    def set_control(self, path) -> StableSDE:
        """Attach the control path ``X`` (returns ``self``)."""
        if not callable(getattr(path, "evaluate", None)):
            raise TypeError(f"path must have evaluate(t); got {type(path).__name__}")
        self._path = path
        self._control_table = self._drift_table = None
        interval = getattr(path, "interval", None)
        self._t0, self._t1 = (
            (float(interval[0]), float(interval[-1]))
            if interval is not None
            else (-math.inf, math.inf)
        )
        return self

    def control(self, t: torch.Tensor) -> torch.Tensor:
        """``X(t): (batch, control)``, clamped to the path's interval."""
        if self._path is None:
            raise RuntimeError("StableSDE has no control path: call set_control(path) first")
        if self._control_table is not None:
            value = self._control_table(t)
            if value is not None:
                return value
        return self._path.evaluate(torch.clamp(torch.as_tensor(t), self._t0, self._t1))

    def tabulate(self, ts: torch.Tensor | None, dt: float | None = None) -> None:
        """Precompute ``X(t)``, the drift's ``t``/``X`` part of its first layer and ``sigma(t)``
        (for the built-in classes) on the fixed-step grid of ``solve(..., ts, dt)`` in one
        vectorised call each; ``None`` clears the tables. Exact on the grid; used by
        :meth:`hidden_path` for ``GRID_METHODS``."""
        self._control_table = self._drift_table = None
        tabulate = getattr(self.diffusion, "tabulate", None)
        if ts is None:
            if tabulate is not None:
                tabulate(None)
            return
        dt = float(ts[-1] - ts[0]) / 100 if dt is None else float(dt)
        ref = self.initial.weight
        grid = step_grid(torch.as_tensor(ts), dt)[0]
        clamped = grid.clamp(self._t0, self._t1).to(device=ref.device)
        if self._path is not None:
            values = self._path.evaluate(clamped.to(ref.dtype)).movedim(-2, 0)  # (n, B, C)
            self._control_table = _Table(grid, values, dt)
            if type(self.drift) in _PROJECTABLE:
                projected = self.drift.project(grid.to(ref.device), values)
                self._drift_table = (_Table(grid, projected, dt), self.drift.z_weight())
        if tabulate is not None:
            tabulate(grid.to(ref.device), dt)

    def initial_state(self) -> torch.Tensor:
        """``z0 = Linear(X(t0)): (batch, hidden)``."""
        t0 = self._t0 if math.isfinite(self._t0) else 0.0
        return self.initial(self.control(torch.tensor(t0)))

    # SDE protocol ---------------------------------------------------------------------
    def f(self, t, z):
        if self._drift_table is not None:
            table, z_weight = self._drift_table
            projected = table(t)
            if projected is not None:
                return self.drift.forward_projected(z, projected, z_weight)
        return self.drift(t, z, self.control(t))

    def g(self, t, z):
        return self.diffusion(t, z)

    def f_and_g(self, t, z):
        return self.f(t, z), self.g(t, z)

    # the encoder interface shared with NeuralCDE --------------------------------------
    def hidden_path(self, path, ts, *, method="euler", dt=None, generator=None, adjoint=None):
        """Solve from ``z0 = Linear(X(t0))`` and return ``z`` at ``ts``: ``(len(ts), batch,
        hidden)``. ``ts`` must start at the path's first time."""
        from neuralsde.core import solve

        self.set_control(path)
        if method in GRID_METHODS:
            self.tabulate(ts, dt)
        try:
            return solve(
                self,
                self.initial_state(),
                ts,
                method=method,
                dt=dt,
                generator=generator,
                adjoint=adjoint,
            )
        finally:
            self.tabulate(None)
