"""``solve``: the one entry point every model, sampler and detector in neuralsde integrates with.

It validates the request against the method's declarations, builds the step grid (or an
adaptive controller) and the Brownian source, calls the SDE's ``precompute`` hook once, and
hands everything to an adjoint object, which runs the loop of :mod:`neuralsde.core.loop`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .adjoint import Backsolve, Direct, Outputs, Problem, Reversible
from .arguments import check_generator, positive
from .brownian import GridBrownian, KeyedGridBrownian, QueryBrownian, interval
from .control import ConstantSteps, PIController, SeriesController, StepDoubling
from .grid import check_steps, given_grid, series_grid, step_grid
from .keyed import KeyedGenerator
from .loop import DivergenceError, misfit
from .methods import METHODS
from .sde import Terms, brownian_size, check_diffusion_shape, check_protocol

ADJOINTS = {None: Direct(), "reversible": Reversible(), "backsolve": Backsolve()}
CONTROLLERS = ("auto", "constant", "doubling", "pi")

__all__ = ["ADJOINTS", "CONTROLLERS", "DivergenceError", "solve"]


def solve(
    sde,
    y0: torch.Tensor,
    ts: torch.Tensor,
    method: str = "euler",
    dt: float | None = None,
    adjoint: str | None = None,
    bm=None,
    generator: torch.Generator | KeyedGenerator | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    options: dict | None = None,
    dt_min: float = 1e-6,
    max_steps: int = 1_000_000,
    adjoint_params=None,
    check_every: int = 32,
    args=None,
    controller="auto",
    grid=None,
) -> torch.Tensor:
    """Integrate ``dy = f(t, y) dt + g(t, y) dW`` and return the solution at ``ts``.

    Args:
        sde: any object with ``f``, ``g``, ``noise_type`` and ``sde_type``; ``f(t, y)`` (the
            torchsde protocol) or ``f(t, y, args)``. ``t`` is passed as a 0-d tensor.
        y0: (batch, state) initial state.
        ts: (T,) strictly increasing output times, or (T, batch): one grid per series. Each
            series then steps on its own grid with its own step sizes, ``t`` reaches the SDE
            as a ``(batch, 1)`` tensor, and the SDE must declare ``batched_time = True``.
        method: one of ``neuralsde.core.methods.METHODS`` (euler, milstein, srk, heun,
            midpoint, reversible_heun, ...).
        dt: fixed step (default ``(ts[-1] - ts[0]) / 100``); with ``rtol``/``atol`` it is
            the initial step. Output times off the step grid are added to the grid.
        adjoint: None (backpropagate through the steps), ``"reversible"`` (exact
            gradients of reversible Heun in O(1) memory) or ``"backsolve"`` (torchsde's
            stochastic adjoint; ``sde`` must be an ``nn.Module``).
        bm: optional torchsde-style Brownian object ``bm(ta, tb)``, to share a path.
        generator: seeds the Brownian path; the same seed gives the same path for
            every method on the same grid. A :class:`~neuralsde.core.keyed.KeyedGenerator`
            draws each series' path from its key (one row of ``y0`` per key): a chunk of the
            batch then draws exactly its rows of the whole batch's path.
        rtol, atol: switch on adaptive steps (see ``controller``).
        options: method options, e.g. ``{"derivative_free": True}`` for Milstein.
        args: per-call data for ``f(t, y, args)`` and ``g(t, y, args)`` (any nesting of
            dicts, lists and tuples); gradients reach the tensors inside it under every
            adjoint.
        controller: ``"auto"`` (fixed steps, or with ``rtol``/``atol`` the PI controller when
            the method has an embedded error estimate and step doubling otherwise),
            ``"constant"``, ``"doubling"``, ``"pi"``, or a configured
            :class:`~neuralsde.core.control.PIController` / ``StepDoubling``.
        grid: fixed step times given as data instead of ``dt`` (a sampling schedule):
            strictly increasing, from ``ts[0]`` to ``ts[-1]``, holding every time of ``ts``
            (of shape ``(T,)``).

    Returns:
        (T, batch, state) tensor.

    Raises:
        TypeError / ValueError: a bad argument, named in the message.
        DivergenceError: the state stopped being finite (its time and step are named).
        StepLimitError: an adaptive solve took ``max_steps`` steps without finishing.

    Example:
        >>> import torch
        >>> from neuralsde import SDE, solve
        >>> class OU(SDE):
        ...     noise_type, sde_type = "diagonal", "ito"
        ...     def f(self, t, y, args):
        ...         return args["theta"] * (args["mu"] - y)
        ...     def g(self, t, y, args):
        ...         return 0.5 * torch.ones_like(y)
        >>> ys = solve(OU(), torch.ones(8, 2), torch.linspace(0, 1, 5), dt=0.01,
        ...            args={"theta": 2.0, "mu": torch.zeros(2)},
        ...            generator=torch.Generator().manual_seed(0))
        >>> ys.shape
        torch.Size([5, 8, 2])
    """
    check_protocol(sde)
    y0, ts = _check_y0_ts(y0, ts)
    check_generator(generator)
    per_series = ts.dim() == 2
    cls = _check_method(method, sde)
    adj = _check_adjoint(adjoint)
    ctrl = _check_controller(controller, rtol, atol, dt_min, cls, sde)
    fixed = ctrl is None
    adj.check(cls, sde, fixed)
    if per_series:
        _check_per_series(sde, cls, fixed, adj)
    span = float((ts[-1] - ts[0]).max())
    dt = span / 100 if dt is None else positive(dt, "dt")
    if fixed and grid is None:  # the step budget first, before anything is allocated
        check_steps(math.ceil(span / dt - 1e-9), max_steps, dt)
    _check_resolution(ts, dt)
    terms = Terms(sde)

    if grid is not None:
        if not fixed or per_series or not adj.runs_loop:
            raise ValueError(
                "grid gives fixed steps on one shared grid: it takes no rtol/atol, no ts of "
                "shape (T, batch) and no adjoint='backsolve'"
            )
        grid, out_index = given_grid(ts, grid, max_steps)
    elif fixed and adj.runs_loop:
        grid, out_index = (series_grid if per_series else step_grid)(ts, dt, max_steps)
    else:  # adaptive steps, or torchsde's own loop
        grid, out_index = None, None
    hook = getattr(sde, "precompute", None)
    if hook is not None:
        args = hook(grid if cls.grid_times else None, args)

    def make_stepper(a):
        stepper = cls(terms.bind(a), options)
        stepper.want_error = bool(getattr(ctrl, "needs_error_estimate", False))
        return stepper

    bound_stepper = make_stepper(args)  # validates args, options and required attributes
    t0, t1 = (ts[0].unsqueeze(-1), ts[-1].unsqueeze(-1)) if per_series else (ts[0], ts[-1])
    fg0 = bound_stepper.fg(t0, y0)
    _check_drift_diffusion(sde, fg0, y0)
    size = (y0.shape[0], brownian_size(sde.noise_type, fg0[1]))
    dtype, device = y0.dtype, y0.device
    params = _params(sde, adjoint_params)

    if not adj.runs_loop:
        return _backsolve(adj, sde, terms, cls, y0, ts, dt, bm, generator, size, ctrl, options,
                          args, params)  # fmt: skip

    if fixed:
        if bm is None and isinstance(generator, KeyedGenerator):
            source = KeyedGridBrownian(grid, size, generator, levy_area=cls.levy_area,
                                       dtype=dtype, device=device)  # fmt: skip
        elif bm is None:
            source = GridBrownian(grid, size, levy_area=cls.levy_area, generator=generator,
                                  dtype=dtype, device=device)  # fmt: skip
        else:
            source = QueryBrownian(bm, cls.levy_area)
        grid_np = grid.numpy()
        if per_series:
            times = grid.to(dtype=dtype, device=device).unsqueeze(-1)  # (n + 1, batch, 1)
            dts = torch.diff(grid, dim=0).to(dtype=dtype, device=device).unsqueeze(-1)
        else:
            times = grid.to(dtype=dtype, device=device)  # indexed per step: no per-step objects
            dts = np.diff(grid_np)  # np.float64 is a float; an array keeps memory flat
        keys = out_index.reshape(-1).tolist() if per_series else out_index

        def controller_factory(reverse=False):
            return ConstantSteps(times, dts, grid_np, keys, reverse)

        outputs = Outputs(out_index)
    else:
        if bm is None:
            bm = interval(ts[0], ts[-1], size, levy_area=cls.levy_area, generator=generator,
                          dtype=dtype, device=device)  # fmt: skip
        source = QueryBrownian(bm, cls.levy_area)
        order = bound_stepper.order()

        def controller_factory(reverse=False):
            return ctrl.begin(ts, dt, order, max_steps, dtype, device)

        outputs = Outputs()
    problem = Problem(make_stepper, controller_factory, source, y0, fg0, t0, t1, args, outputs,
                      params, check_every)  # fmt: skip
    return adj.solve(problem)


def _params(sde, adjoint_params):
    if adjoint_params is not None:
        return list(adjoint_params)
    return list(sde.parameters()) if isinstance(sde, torch.nn.Module) else []


class _WithArgs(torch.nn.Module):
    """A torchsde-style view ``f(t, y)``, ``g(t, y)`` of an SDE with its ``args`` bound."""

    def __init__(self, sde, terms, args):
        super().__init__()
        self.sde, self.noise_type, self.sde_type = sde, sde.noise_type, sde.sde_type
        self._f, self._g, self._fg, self._args = terms.f, terms.g, terms.f_and_g, args

    def f(self, t, y):
        return self._f(t, y, self._args)

    def g(self, t, y):
        return self._g(t, y, self._args)

    def f_and_g(self, t, y):
        return self._fg(t, y, self._args)


def _backsolve(adj, sde, terms, cls, y0, ts, dt, bm, generator, size, ctrl, options, args,
               params):  # fmt: skip
    import torchsde

    kwargs = {}
    if ctrl is not None:
        kwargs = dict(adaptive=True, rtol=ctrl.rtol, atol=ctrl.atol)
    else:
        # torchsde steps to min(t + dt, ts[-1]); with t accumulated in floating point the last
        # step can be ~1e-17 long. A step a hair longer than span / n lands the n-th step on
        # ts[-1] exactly, and the Brownian interval gets dt so that no tiny query reshapes it.
        span = float(ts[-1] - ts[0])
        n = max(1, math.ceil(span / dt - 1e-9))
        dt = span / n * (1 + 64 * torch.finfo(y0.dtype).eps)
    if bm is None:
        bm = interval(ts[0], ts[-1], size, levy_area=cls.levy_area, generator=generator,
                      dtype=y0.dtype, device=y0.device, dt=None if ctrl else dt)  # fmt: skip

    def run(a, y0_, adjoint_params):
        module = sde if not terms.uses_args else _WithArgs(sde, terms, a)
        return torchsde.sdeint_adjoint(
            module,
            y0_,
            ts,
            bm=bm,
            method=cls.torchsde_name,
            dt=dt,
            options=options,
            adjoint_params=adjoint_params,
            **kwargs,
        )

    problem = Problem(None, None, None, y0, None, ts[0], ts[-1], args, None, params, 0)
    try:
        ys = adj.solve(problem, run)
    except RuntimeError as err:
        raise misfit(err, y0, "in torchsde's backsolve") from None
    except AssertionError as err:  # torchsde's adaptive stepping asserts on NaN errors
        if "nan" not in str(err).lower():
            raise
        where = (
            f"in torchsde's adaptive backsolve between t={float(ts[0]):.6g} and {float(ts[-1]):.6g}"
        )
        raise DivergenceError(math.nan, -1, where) from None
    finite = torch.isfinite(ys.detach()).reshape(len(ys), -1).all(-1)
    if not bool(finite.all()):  # the normal path's check, on torchsde's outputs
        k = int((~finite).nonzero()[0])
        raise DivergenceError(float(ts[k]), k)
    return ys


def _check_resolution(ts, dt: float) -> None:
    """Refuse steps that the dtype of ``ts`` cannot resolve where they are taken (``t + dt``
    would round back to ``t``, and a loop that waits for ``t`` to reach the end never ends)."""
    far = float(ts.abs().max())
    resolution = torch.finfo(ts.dtype).eps * far
    if dt < 16 * resolution:
        raise ValueError(
            f"dt={dt:.3g} is too small for {ts.dtype} times near t={far:g}, which are "
            f"{resolution:.2g} apart; pass ts (and y0) as float64, or shift ts to start near 0"
        )


def _check_adjoint(adjoint):
    if isinstance(adjoint, (Direct, Reversible, Backsolve)):
        return adjoint
    if adjoint not in ADJOINTS:
        raise ValueError(f"adjoint must be one of {tuple(ADJOINTS)}; got {adjoint!r}")
    return ADJOINTS[adjoint]


def _check_controller(controller, rtol, atol, dt_min, cls, sde):
    """The adaptive controller to use, or None for fixed steps."""
    if isinstance(controller, SeriesController):
        if rtol is not None or atol is not None:
            raise ValueError("pass rtol/atol to the controller object or to solve, not both")
        if not (cls.per_series and cls.has_error_estimate(sde.noise_type)):
            fits = sorted(n for n, m in METHODS.items() if m.per_series and m.fits(sde)
                          and m.has_error_estimate(sde.noise_type))  # fmt: skip
            raise ValueError(
                f"a SeriesController needs a method with one grid per series and an embedded "
                f"error estimate; got method={cls.name!r}; use one of {fits}"
            )
        if not getattr(sde, "batched_time", False):
            raise ValueError(
                f"a SeriesController passes t as a (batch, 1) tensor; {type(sde).__name__} "
                f"does not declare batched_time = True"
            )
        return controller
    if isinstance(controller, (PIController, StepDoubling)):
        if rtol is not None or atol is not None:
            raise ValueError("pass rtol/atol to the controller object or to solve, not both")
        choice = controller
    else:
        if controller not in CONTROLLERS:
            raise ValueError(
                f"controller must be one of {CONTROLLERS} or a PIController/StepDoubling "
                f"object; got {controller!r}"
            )
        adaptive = rtol is not None or atol is not None
        if controller == "constant" or (controller == "auto" and not adaptive):
            if adaptive:
                raise ValueError("controller='constant' takes no rtol/atol")
            return None
        tol = dict(
            rtol=1e-3 if rtol is None else positive(rtol, "rtol"),
            atol=1e-6 if atol is None else positive(atol, "atol"),
            dt_min=dt_min,
        )
        embedded = cls.has_error_estimate(sde.noise_type)
        if controller == "pi" or (controller == "auto" and embedded):
            choice = PIController(**tol)
        else:
            choice = StepDoubling(**tol)
    if not cls.adaptive:
        raise ValueError(f"method={cls.name!r} does not support adaptive steps (rtol/atol)")
    if choice.needs_error_estimate and not cls.has_error_estimate(sde.noise_type):
        fits = sorted(
            n for n, m in METHODS.items() if m.fits(sde) and m.has_error_estimate(sde.noise_type)
        )
        raise ValueError(
            f"the PI controller needs an embedded error estimate, which method={cls.name!r} "
            f"lacks for noise_type={sde.noise_type!r}; use controller='doubling' or one of {fits}"
        )
    return choice


def _check_per_series(sde, cls, fixed, adj):
    if not getattr(sde, "batched_time", False):
        raise ValueError(
            f"ts of shape (T, batch) gives every series its own grid, and then t reaches "
            f"f and g as a (batch, 1) tensor; {type(sde).__name__} does not declare "
            f"batched_time = True. Declare it (if f and g broadcast over such a t) or pass "
            f"one grid ts of shape (T,)"
        )
    if not cls.per_series:
        fits = sorted(n for n, m in METHODS.items() if m.per_series and m.fits(sde))
        raise ValueError(
            f"method={cls.name!r} does not support one grid per series (ts of shape "
            f"(T, batch)); methods that do and fit this SDE: {fits}"
        )
    if not fixed:
        raise ValueError("one grid per series (ts of shape (T, batch)) needs fixed steps")
    if not adj.per_series:
        raise ValueError(f"adjoint={adj.name!r} needs one grid ts of shape (T,)")


def _check_y0_ts(y0, ts):
    if not isinstance(y0, torch.Tensor):
        raise TypeError(
            f"y0 must be a torch.Tensor of shape (batch, state); got {type(y0).__name__}"
        )
    if y0.dim() != 2:
        raise ValueError(f"y0 must have shape (batch, state); got shape {tuple(y0.shape)}")
    if y0.shape[0] == 0 or y0.shape[1] == 0:
        raise ValueError(
            f"y0 must hold at least one series with at least one state; got shape {tuple(y0.shape)}"
        )
    if not y0.is_floating_point():
        raise TypeError(f"y0 must be a floating-point tensor; got dtype {y0.dtype}")
    if not bool(torch.isfinite(y0).all()):
        bad = torch.nonzero(~torch.isfinite(y0))[0].tolist()
        raise ValueError(f"y0 must be finite; found {y0[tuple(bad)].item()} at index {tuple(bad)}")
    if not isinstance(ts, torch.Tensor):
        ts = torch.as_tensor(ts, dtype=y0.dtype, device=y0.device)
    if ts.dim() not in (1, 2) or len(ts) < 2:
        raise ValueError(
            f"ts must be a tensor of at least 2 times, of shape (T,) or (T, batch); got shape "
            f"{tuple(ts.shape)}"
        )
    if ts.dim() == 2 and ts.shape[1] != y0.shape[0]:
        raise ValueError(
            f"ts of shape (T, batch) must have one column per series: got {ts.shape[1]} "
            f"columns for y0 with batch {y0.shape[0]}"
        )
    if ts.device != y0.device:
        raise ValueError(f"ts is on {ts.device} but y0 is on {y0.device}; put both on one device")
    if not bool(torch.isfinite(ts).all()):
        raise ValueError(f"ts must be finite; got {ts.tolist()}")
    steps = torch.diff(ts, dim=0)
    if not bool((steps > 0).all()):
        i, *col = torch.nonzero(steps <= 0)[0].tolist()
        where = f"[{i}, {col[0]}]" if col else f"[{i}]"
        after = f"[{i + 1}, {col[0]}]" if col else f"[{i + 1}]"
        raise ValueError(
            f"ts must be strictly increasing; got ts{where}={ts[i][tuple(col)].item():.6g} "
            f"followed by ts{after}={ts[i + 1][tuple(col)].item():.6g}"
        )
    return y0, ts


def _check_method(method, sde):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    cls = METHODS[method]
    combo = f"method={method!r} with sde_type={sde.sde_type!r}, noise_type={sde.noise_type!r}"
    if sde.sde_type not in cls.sde_types or sde.noise_type not in cls.noise_types:
        fits = [name for name, m in sorted(METHODS.items()) if m.fits(sde)]
        raise ValueError(
            f"{combo} is not supported: {method!r} takes sde_type in {cls.sde_types} and "
            f"noise_type in {cls.noise_types}. Methods that fit this SDE: {fits}"
        )
    return cls


def _check_drift_diffusion(sde, fg0, y0):
    f, g = fg0
    if not isinstance(f, torch.Tensor) or tuple(f.shape) != tuple(y0.shape):
        shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
        raise ValueError(f"f(t, y) returned {shape}; expected shape {tuple(y0.shape)} like y0")
    if not isinstance(g, torch.Tensor):
        raise TypeError(f"g(t, y) must return a tensor; got {type(g).__name__}")
    check_diffusion_shape(sde.noise_type, g, y0)
    for name, value in (("f", f), ("g", g)):
        if value.dtype != y0.dtype:
            raise TypeError(
                f"{name}(t, y) returned dtype {value.dtype} for y0 of dtype {y0.dtype}; the "
                f"drift and diffusion must return the state's dtype"
            )
