"""Stable neural SDEs for irregular time series (Oh, Lim & Kim, ICLR 2024).

Two architectures, picked by ``StableSDE(architecture=...)``.

``"reference"`` (the default) follows the authors' runtime code (``torch_ists``
``Diffusion_model``, method contracts LSDE (2, 16), LNSDE (4, 17), GSDE (6, 17)):

* the combined input ``z~ = emb([linear_in(z'), init(X(t))])`` with ``z' = [sin t, cos t, z]``
  (``z' = z`` for LSDE), ``init``/``linear_in`` linear maps to ``hidden`` and
  ``emb = Linear(2 hidden, hidden)``;
* the drift ``tanh(out(MLP(relu(z~))))`` with ``depth - 1`` hidden ReLU layers of width
  ``width`` (GSDE: ``tanh(out(...) * tanh(z))``);
* the diffusion ``s(t) = sigmoid(theta) relu(MLP(sin t, cos t))``, applied as ``tanh(s(t))``
  (LSDE) or ``tanh(s(t) * z)`` (LNSDE, GSDE).

``"v1"`` is this library's first architecture, kept for the ablation. Hidden state
``z: (batch, hidden)`` driven by the control path ``X(t)`` of the batch, with
``z~ = concat(z, X(t))`` and ``z0 = Linear(X(t0))``:

* LSDE  (Langevin-type): ``dz = gamma(z~) dt + sigma(t) dW``
* LNSDE (linear noise):  ``dz = gamma(t, z~) dt + sigma(t) * z dW``
* GSDE  (geometric):     ``dz = gamma(t, z~) * z dt + sigma(t) * z dW``
* naive: ``dz = f(t, z~) dt + g(t, z) dW`` with unconstrained MLPs (the unstable baseline).

``gamma`` is an MLP with a tanh output; ``sigma(t) = softplus(s) * MLP(sin t, cos t)``.
Drifts and diffusions are small separate modules: subclass one to make a new class.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuralsde.core import SDE, solve

__all__ = [
    "GeometricDrift",
    "KINDS",
    "LangevinDrift",
    "REFERENCE_KINDS",
    "ReferenceDiffusion",
    "ReferenceDrift",
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


class Table(NamedTuple):
    """Values ``(len(grid), ...)`` precomputed on a step grid, read back at the grid's times
    (:func:`table_at`), which are kept in the values' dtype: the stepper passes exactly those
    times. On CPU a time off the grid reads None, so that the caller evaluates exactly, and the
    values are unbound once into per-time ``pieces``: indexing the stacked tensor at every step
    would make each step's backward fill a gradient the size of the whole table. On a GPU the
    lookup stays on the device (no host sync per step); ``solve`` only hands a grid to methods
    that evaluate on it."""

    times: np.ndarray
    pieces: tuple | None = None
    grid: torch.Tensor | None = None
    values: torch.Tensor | None = None


def make_table(grid: torch.Tensor, values: torch.Tensor) -> Table:
    """A :class:`Table` of ``values: (len(grid), ...)`` on the float64 ``grid``."""
    times = grid.detach().to(values.dtype)
    if values.is_cuda:
        return Table(times.numpy(), grid=times.to(values.device), values=values)
    return Table(times.numpy(), pieces=values.unbind(0))


def table_at(table: Table | None, t: torch.Tensor):
    """The tabulated value at ``t`` (0-d), or None without a table or off its grid."""
    if table is None:
        return None
    if table.pieces is None:
        t = torch.as_tensor(t).reshape(1).to(table.grid)
        idx = torch.searchsorted(table.grid, t).clamp(max=table.grid.shape[0] - 1)
        return table.values.index_select(0, idx).squeeze(0)
    s = float(t)
    k = int(np.searchsorted(table.times, s))
    if k == len(table.times) or table.times[k] != s:
        return None
    return table.pieces[k]


class ControlArgs(NamedTuple):
    """A stable SDE's per-call data (the ``args`` of its solve): the control path ``X`` (any
    object with ``evaluate(t) -> (batch, control)``), the interval it is held to, and, after
    :meth:`StableSDE.precompute`, tables of ``X(t)``, of the drift's ``t``/``X`` part of its
    first layer (with the first layer's weight on ``z``) and of ``sigma(t)`` on the step grid."""

    path: object
    t0: float
    t1: float
    control: Table | None = None
    drift: Table | None = None
    z_weight: torch.Tensor | None = None
    sigma: Table | None = None


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
class TimeNoise(nn.Module):
    """Base of the diffusions that factor as ``apply(sigma(t), z)``: ``sigma(t)`` can be
    tabulated on a step grid (:meth:`StableSDE.precompute`)."""

    def sigma(self, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def apply(self, sigma: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, t, z):
        return self.apply(self.sigma(t), z)


class TimeDiffusion(TimeNoise):
    """LSDE diffusion ``sigma(t) = softplus(s) * MLP(sin t, cos t)``, one value per hidden
    channel, broadcast over the batch: returns ``(batch, hidden)`` (additive noise written as
    diagonal). With all MLP parameters zero, ``sigma(t) = 0`` exactly."""

    def __init__(self, hidden, width=16, depth=1):
        super().__init__()
        self.net = MLP(2, hidden, width, depth, activation=nn.Tanh)
        self.raw_scale = nn.Parameter(torch.tensor(math.log(math.expm1(0.1))))

    @property
    def scale(self) -> torch.Tensor:
        return F.softplus(self.raw_scale)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """``sigma(t): (hidden,)`` for a 0-d ``t``; ``(..., hidden)`` for ``t: (...)``."""
        t = t.to(self.raw_scale).unsqueeze(-1)
        return self.scale * self.net(torch.cat([torch.sin(t), torch.cos(t)], dim=-1))

    def apply(self, sigma: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The diffusion from ``sigma(t)`` (e.g. tabulated) and ``z``."""
        return sigma.expand_as(z)


class LinearDiffusion(TimeDiffusion):
    """LNSDE / GSDE diffusion ``sigma(t) * z`` (diagonal): zero at ``z = 0``."""

    def apply(self, sigma, z):
        return sigma * z


class NaiveDiffusion(nn.Module):
    """Unconstrained diagonal diffusion ``MLP([t, z])`` with a linear output."""

    def __init__(self, hidden, width=32, depth=2):
        super().__init__()
        self.net = MLP(hidden + 1, hidden, width, depth)

    def forward(self, t, z):
        return self.net(torch.cat([_time_column(t, z), z], dim=-1))


# ------------------------------------------------------------- the reference architecture
def _time_features(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``[sin t, cos t]: (..., 2)`` for ``t: (...)`` in ``like``'s dtype and device."""
    t = torch.as_tensor(t).to(like).unsqueeze(-1)
    return torch.cat([torch.sin(t), torch.cos(t)], dim=-1)


class ReferenceDrift(nn.Module):
    """LNSDE drift of the reference code: ``tanh(out(MLP(relu(z~))))`` with the combined input
    ``z~ = emb([linear_in([sin t, cos t, z]), init(X(t))])``. ``init`` and ``linear_in`` map to
    ``hidden``, ``emb = Linear(2 hidden, hidden)``; the MLP has ``depth - 1`` hidden ReLU
    layers of ``width`` units. Shapes: ``z: (batch, hidden)``, ``x: (batch, control)`` ->
    ``(batch, hidden)``.

    Subclass and override :meth:`interact` (applied to the last layer's output before the
    tanh) or set ``uses_time`` / ``bounded`` to make a new class.

    Example:
        >>> ReferenceDrift(4, 2)(torch.tensor(0.5), torch.zeros(3, 4), torch.ones(3, 2)).shape
        torch.Size([3, 4])
    """

    uses_time = True
    bounded = True

    def __init__(self, hidden, control, width=None, depth=2):
        super().__init__()
        if int(depth) < 1:
            raise ValueError(f"depth must be a positive integer; got {depth!r}")
        width = hidden if width is None else int(width)
        self.hidden = hidden
        self.init = nn.Linear(control, hidden)
        self.linear_in = nn.Linear(hidden + (2 if self.uses_time else 0), hidden)
        self.emb = nn.Linear(2 * hidden, hidden)
        sizes = [hidden] + [width] * (int(depth) - 1)
        self.hidden_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.linear_out = nn.Linear(sizes[-1], hidden)

    def interact(self, out: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The last layer's output combined with the state (identity here; GSDE: ``* tanh z``)."""
        return out

    def combined(self, t, z, x):
        """``z~: (batch, hidden)``."""
        inputs = torch.cat([_time_features(t, z).expand(z.shape[0], 2), z], -1) if (
            self.uses_time) else z  # fmt: skip
        return self.emb(torch.cat([self.linear_in(inputs), self.init(x)], dim=-1))

    def finish(self, u, z):
        """The drift from the combined input ``u = z~``."""
        h = torch.relu(u)
        for layer in self.hidden_layers:
            h = torch.relu(layer(h))
        out = self.interact(self.linear_out(h), z)
        return torch.tanh(out) if self.bounded else out

    def forward(self, t, z, x):
        return self.finish(self.combined(t, z, x), z)

    # ``z~`` is linear in ([sin t, cos t], z, X): its time and X part is tabulated on the step
    # grid at once, leaving one ``addmm`` in z per step.
    def _emb_split(self):
        return self.emb.weight[:, : self.hidden], self.emb.weight[:, self.hidden :]

    def project(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The part of ``z~`` that does not depend on ``z``: ``t: (n,)``, ``x: (n, batch,
        control)`` -> ``(n, batch, hidden)``."""
        e_a, e_b = self._emb_split()
        out = nn.functional.linear(self.init(x), e_b, self.emb.bias)
        bias = self.linear_in.bias
        if self.uses_time:
            time = nn.functional.linear(_time_features(t, x), self.linear_in.weight[:, :2], bias)
            return out + nn.functional.linear(time, e_a).unsqueeze(1)
        return out + nn.functional.linear(bias, e_a)

    def z_weight(self) -> torch.Tensor:
        """``(emb_a W_z)^T: (hidden, hidden)``, the map from ``z`` to ``z~``."""
        e_a, _ = self._emb_split()
        start = 2 if self.uses_time else 0
        return (e_a @ self.linear_in.weight[:, start:]).t()

    def forward_projected(self, z, projected, z_weight):
        """The drift from ``project``'s output at this time and ``z_weight()``."""
        return self.finish(torch.addmm(projected, z, z_weight), z)


class ReferenceLangevinDrift(ReferenceDrift):
    """LSDE drift of the reference code: ``z' = z``, no explicit time."""

    uses_time = False


class ReferenceGeometricDrift(ReferenceDrift):
    """GSDE drift of the reference code: ``tanh(out(...) * tanh(z))``. The factor ``tanh z``
    vanishes at ``z_i = 0`` like ``z`` does, so the continuous-time flow still cannot move a
    coordinate across zero; near zero the drift is ``~ out * z``, the geometric form."""

    def interact(self, out, z):
        return out * torch.tanh(z)


class ReferenceDiffusion(TimeNoise):
    """Diffusion of the reference code (noise options 16 / 17): ``s(t) = sigmoid(theta)
    relu(MLP(sin t, cos t))`` with a ReLU MLP of one hidden layer and a learnable scalar
    ``theta`` (initially 1), returned as ``tanh(s(t) * z)`` (``linear=True``: LNSDE, GSDE) or
    ``tanh(s(t))`` broadcast over the batch (LSDE). With all parameters zero it is exactly 0.

    Example:
        >>> ReferenceDiffusion(3)(torch.tensor(0.2), torch.zeros(2, 3)).abs().max().item()
        0.0
    """

    linear = True

    def __init__(self, hidden, width=None):
        super().__init__()
        width = hidden if width is None else int(width)
        self.net = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, hidden))
        self.theta = nn.Parameter(torch.tensor(1.0))

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """``s(t): (hidden,)`` for a 0-d ``t``; ``(..., hidden)`` for ``t: (...)``."""
        return torch.sigmoid(self.theta) * torch.relu(self.net(_time_features(t, self.theta)))

    def apply(self, sigma, z):
        return torch.tanh(sigma * z) if self.linear else torch.tanh(sigma).expand_as(z)


class ReferenceAdditiveDiffusion(ReferenceDiffusion):
    """LSDE diffusion of the reference code: ``tanh(s(t))``, independent of the state."""

    linear = False


REFERENCE_KINDS = {
    "lsde": (ReferenceLangevinDrift, ReferenceAdditiveDiffusion),
    "lnsde": (ReferenceDrift, ReferenceDiffusion),
    "gsde": (ReferenceGeometricDrift, ReferenceDiffusion),
    # the reference's ``naivesde`` (input option 1, noise 18) clips both outputs with tanh, so
    # it is not the unstable baseline of the paper's theory: keep the unconstrained one
    "naive": (NaiveDrift, NaiveDiffusion),
}
ARCHITECTURES = {"reference": REFERENCE_KINDS}

KINDS = {
    "lsde": (LangevinDrift, TimeDiffusion),
    "lnsde": (TimeDrift, LinearDiffusion),
    "gsde": (GeometricDrift, LinearDiffusion),
    "naive": (NaiveDrift, NaiveDiffusion),
}
ARCHITECTURES["v1"] = KINDS


# drift classes whose ``forward_projected`` is known to equal ``forward`` (a user subclass that
# overrides ``gamma`` or ``forward`` is evaluated directly)
_PROJECTABLE = (
    LangevinDrift,
    TimeDrift,
    GeometricDrift,
    NaiveDrift,
    ReferenceDrift,
    ReferenceLangevinDrift,
    ReferenceGeometricDrift,
)


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
    ``(t, z) -> (batch, hidden)``). The module holds parameters only: the batch's control path
    travels in ``args`` (:meth:`control_args`, e.g. of ``IrregularBatch.path()``), and ``X(t)``
    is held at its end values outside the path's interval, so forecasts see no extrapolated
    spline. On a fixed step grid ``solve`` calls :meth:`precompute`, which tabulates ``X(t)``,
    the drift's first layer in ``t`` and ``X`` and ``sigma(t)`` in one vectorised call each.

    Args:
        control: number of channels of the control path ``X``.
        hidden: size of the hidden state ``z``.
        width, depth: width of the drift MLP's hidden layers and its depth (``"reference"``:
            ``depth - 1`` hidden layers after the combined input; ``"v1"``: ``depth`` hidden
            layers).
        architecture: ``"reference"`` (the authors' code, see the module docstring) or
            ``"v1"`` (this library's first version, :data:`KINDS`).

    Example:
        >>> import torch, torchcde
        >>> t = torch.linspace(0, 1, 5)
        >>> X = torchcde.CubicSpline(
        ...     torchcde.hermite_cubic_coefficients_with_backward_differences(
        ...         torch.randn(3, 5, 2), t), t)
        >>> sde = StableSDE(control=2, hidden=4, kind="lnsde")
        >>> args = sde.control_args(X)
        >>> z0 = sde.initial_state(args)
        >>> sde.f(torch.tensor(0.5), z0, args).shape, sde.g(torch.tensor(0.5), z0, args).shape
        (torch.Size([3, 4]), torch.Size([3, 4]))
        >>> solve(sde, z0, t, dt=0.05, args=args).shape
        torch.Size([5, 3, 4])
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
        architecture: str = "reference",
    ):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {sorted(ARCHITECTURES)}; got {architecture!r}"
            )
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}; got {kind!r}")
        for name, value in (("control", control), ("hidden", hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        width = hidden if width is None else width
        drift_cls, diffusion_cls = ARCHITECTURES[architecture][kind]
        self.kind, self.control_channels, self.hidden = kind, control, hidden
        self.architecture = architecture
        self.initial = nn.Linear(control, hidden)
        self.drift = drift if drift is not None else drift_cls(hidden, control, width, depth)
        if diffusion is not None:
            self.diffusion = diffusion
        elif kind == "naive":
            self.diffusion = diffusion_cls(hidden, width, depth)
        else:
            self.diffusion = diffusion_cls(hidden)

    # control path -------------------------------------------------------------------
    @staticmethod
    def control_args(path) -> ControlArgs:
        """The ``args`` of a solve driven by the control path ``path``."""
        if not callable(getattr(path, "evaluate", None)):
            raise TypeError(f"path must have evaluate(t); got {type(path).__name__}")
        interval = getattr(path, "interval", None)
        if interval is None:
            return ControlArgs(path, -math.inf, math.inf)
        return ControlArgs(path, float(interval[0]), float(interval[-1]))

    @staticmethod
    def _check(args) -> ControlArgs:
        if not isinstance(args, ControlArgs):
            raise TypeError(
                f"StableSDE has no control path: pass args=sde.control_args(path) to solve "
                f"(or call hidden_path(path, ts)); got args of type {type(args).__name__}"
            )
        return args

    def control(self, t: torch.Tensor, args: ControlArgs | None) -> torch.Tensor:
        """``X(t): (batch, control)``, clamped to the path's interval."""
        args = self._check(args)
        value = table_at(args.control, t)
        if value is not None:
            return value
        return args.path.evaluate(torch.clamp(torch.as_tensor(t), args.t0, args.t1))

    def sigma(self, t: torch.Tensor, args: ControlArgs | None = None) -> torch.Tensor:
        """``sigma(t)`` of a built-in diffusion, from ``args``' table when ``t`` is on its grid."""
        value = table_at(args.sigma, t) if isinstance(args, ControlArgs) else None
        return self.diffusion.sigma(t) if value is None else value

    def precompute(self, grid: torch.Tensor | None, args: ControlArgs) -> ControlArgs:
        """The hook :func:`neuralsde.solve` calls with its step grid: tabulate ``X(t)``, the
        drift's ``t``/``X`` part of its first layer (for the built-in drift classes) and
        ``sigma(t)`` (for the built-in diffusions) on it. Exact on the grid."""
        args = self._check(args)
        if grid is None:
            return args
        ref = self.initial.weight
        clamped = grid.clamp(args.t0, args.t1).to(device=ref.device)
        values = args.path.evaluate(clamped.to(ref.dtype)).movedim(-2, 0)  # (n, B, C)
        out = args._replace(control=make_table(grid, values))
        if type(self.drift) in _PROJECTABLE:
            projected = self.drift.project(grid.to(ref.device), values)
            out = out._replace(drift=make_table(grid, projected), z_weight=self.drift.z_weight())
        if isinstance(self.diffusion, TimeNoise):
            sigma = self.diffusion.sigma(grid.to(device=ref.device))
            out = out._replace(sigma=make_table(grid, sigma))
        return out

    def initial_state(self, args: ControlArgs) -> torch.Tensor:
        """``z0 = Linear(X(t0)): (batch, hidden)``."""
        args = self._check(args)
        t0 = args.t0 if math.isfinite(args.t0) else 0.0
        return self.initial(self.control(torch.tensor(t0), args))

    # SDE protocol ---------------------------------------------------------------------
    def f(self, t, z, args=None):
        if isinstance(args, ControlArgs):
            projected = table_at(args.drift, t)
            if projected is not None:
                return self.drift.forward_projected(z, projected, args.z_weight)
        return self.drift(t, z, self.control(t, args))

    def g(self, t, z, args=None):
        if isinstance(self.diffusion, TimeNoise):
            return self.diffusion.apply(self.sigma(t, args), z)
        return self.diffusion(t, z)

    def f_and_g(self, t, z, args=None):
        return self.f(t, z, args), self.g(t, z, args)

    # the encoder interface shared with NeuralCDE --------------------------------------
    def hidden_path(self, path, ts, *, method="euler", dt=None, generator=None, adjoint=None):
        """Solve from ``z0 = Linear(X(t0))`` and return ``z`` at ``ts``: ``(len(ts), batch,
        hidden)``. ``ts`` must start at the path's first time."""
        args = self.control_args(path)
        return solve(self, self.initial_state(args), ts, method=method, dt=dt,
                     generator=generator, adjoint=adjoint, args=args)  # fmt: skip
