"""``solve``: the one integrator every model, sampler and detector in neuralsde uses."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from .brownian import GridBrownian, GridQuery, QueryBrownian, interval
from .methods import METHODS
from .sde import brownian_size, check_diffusion_shape, check_protocol, f_and_g

ADJOINTS = (None, "reversible", "backsolve")


class DivergenceError(FloatingPointError):
    """Raised when the state stops being finite; ``.time`` and ``.step`` say where."""

    def __init__(self, time: float, step: int):
        self.time, self.step = time, step
        super().__init__(
            f"the solution stopped being finite at t={time:.6g} (step {step}); "
            "try a smaller dt, an adaptive method (rtol/atol) or check the drift and diffusion"
        )


def solve(
    sde,
    y0: torch.Tensor,
    ts: torch.Tensor,
    method: str = "euler",
    dt: float | None = None,
    adjoint: str | None = None,
    bm=None,
    generator: torch.Generator | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    options: dict | None = None,
    dt_min: float = 1e-6,
    max_steps: int = 1_000_000,
    adjoint_params=None,
    check_every: int = 32,
) -> torch.Tensor:
    """Integrate ``dy = f(t, y) dt + g(t, y) dW`` and return the solution at ``ts``.

    Args:
        sde: any object with ``f(t, y)``, ``g(t, y)``, ``noise_type`` and ``sde_type``
            (the torchsde protocol; ``t`` is passed as a 0-d tensor).
        y0: (batch, state) initial state.
        ts: (T,) strictly increasing output times.
        method: one of ``neuralsde.core.methods.METHODS`` (euler, milstein, srk, heun,
            midpoint, reversible_heun, ...).
        dt: fixed step (default ``(ts[-1] - ts[0]) / 100``); with ``rtol``/``atol`` it is
            the initial step. Output times off the step grid are added to the grid.
        adjoint: None (backpropagate through the steps), ``"reversible"`` (exact
            gradients of reversible Heun in O(1) memory) or ``"backsolve"`` (torchsde's
            stochastic adjoint; ``sde`` must be an ``nn.Module``).
        bm: optional torchsde-style Brownian object ``bm(ta, tb)``, to share a path.
        generator: seeds the Brownian path; the same seed gives the same path for
            every method on the same grid.
        rtol, atol: switch on adaptive steps controlled by the step-doubling error.
        options: method options, e.g. ``{"derivative_free": True}`` for Milstein.

    Returns:
        (T, batch, state) tensor.

    Example:
        >>> import torch
        >>> from neuralsde import SDE, solve
        >>> class OU(SDE):
        ...     noise_type, sde_type = "diagonal", "ito"
        ...     def f(self, t, y):
        ...         return -y
        ...     def g(self, t, y):
        ...         return 0.5 * torch.ones_like(y)
        >>> ys = solve(OU(), torch.ones(8, 2), torch.linspace(0, 1, 5), dt=0.01,
        ...            generator=torch.Generator().manual_seed(0))
        >>> ys.shape
        torch.Size([5, 8, 2])
    """
    check_protocol(sde)
    y0, ts = _check_y0_ts(y0, ts)
    cls = _check_method(method, sde)
    if adjoint not in ADJOINTS:
        raise ValueError(f"adjoint must be one of {ADJOINTS}; got {adjoint!r}")
    if adjoint == "reversible" and method != "reversible_heun":
        raise ValueError(
            f"adjoint='reversible' needs method='reversible_heun' (the algebraically "
            f"reversible scheme); got method={method!r}"
        )
    adaptive = rtol is not None or atol is not None
    if adaptive:
        rtol = 1e-3 if rtol is None else _positive("rtol", rtol)
        atol = 1e-6 if atol is None else _positive("atol", atol)
        if not cls.adaptive:
            raise ValueError(f"method={method!r} does not support adaptive steps (rtol/atol)")
        if adjoint == "reversible":
            raise ValueError("adjoint='reversible' needs fixed steps; drop rtol/atol")
    span = float(ts[-1] - ts[0])
    dt = span / 100 if dt is None else _positive("dt", dt)

    if adjoint == "backsolve":
        return _backsolve(
            sde, y0, ts, method, dt, bm, generator, rtol, atol, options, adjoint_params
        )

    stepper = cls(sde, options)
    t0 = ts[0]
    fg0 = f_and_g(sde, t0, y0)
    _check_drift_diffusion(sde, fg0, y0)
    size = (y0.shape[0], brownian_size(sde.noise_type, fg0[1]))
    dtype, device = y0.dtype, y0.device

    if adaptive:
        if bm is None:
            bm = interval(
                ts[0],
                ts[-1],
                size,
                levy_area=cls.levy_area,
                generator=generator,
                dtype=dtype,
                device=device,
            )
        source = QueryBrownian(bm, cls.levy_area)
        return _adaptive(stepper, y0, ts, dt, rtol, atol, dt_min, max_steps, source, fg0)

    grid, out_index = step_grid(ts, dt)
    if bm is None:
        noise = GridBrownian(
            grid, size, levy_area=cls.levy_area, generator=generator, dtype=dtype, device=device
        )
    else:
        noise = GridQuery(QueryBrownian(bm, cls.levy_area), grid)
    times = grid.to(dtype=dtype, device=device)  # indexed per step: no per-step objects up front
    dts = np.diff(grid.numpy())  # np.float64 is a float; an array keeps memory flat
    if adjoint == "reversible":
        from .adjoint import reversible_solve

        return reversible_solve(
            stepper, y0, times, dts, noise, out_index, fg0, check_every, adjoint_params
        )
    return fixed_steps(stepper, y0, times, dts, noise, out_index, fg0, check_every)[0]


def fixed_steps(stepper, y0, times, dts, noise, out_index, fg0, check_every):
    """The fixed-step loop: ``len(dts)`` steps, outputs at the grid indices ``out_index``.

    Returns ``(ys, state)``: the stacked outputs and the stepper state after the last step.
    """
    step, n = stepper.step, len(dts)
    state = stepper.init(times[0], y0, fg0)
    out = iter(out_index)
    next_out = next(out)
    outs = []
    if next_out == 0:
        outs.append(y0)
        next_out = next(out, -1)
    y = y0
    recent = []
    for i, dt in enumerate(dts):
        dw, u = noise[i]
        y, state = step(times[i], times[i + 1], dt, y, dw, u, state)
        recent.append(y)
        if i + 1 == next_out:
            outs.append(y)
            next_out = next(out, -1)
        if len(recent) == check_every or i + 1 == n:
            check_finite(recent, i + 2 - len(recent), times)
            recent = []
    return torch.stack(outs), state


def check_finite(states, first_step, times):
    """Raise ``DivergenceError`` at the first non-finite state; ``states[k]`` is the
    state after step ``first_step + k`` (ending at ``times[first_step + k]``)."""
    if bool(torch.isfinite(states[-1]).all()):
        return
    for k, s in enumerate(states):
        if not bool(torch.isfinite(s).all()):
            step = first_step + k
            raise DivergenceError(float(times[step]), step)


def _adaptive(stepper, y0, ts, dt, rtol, atol, dt_min, max_steps, source, fg0):
    """Adaptive steps: accept when the step-doubling error ``|y_two_halves - y_full|``
    is within ``atol + rtol |y|`` (RMS norm); new step ``h (0.9 / err)^(1/(p + 1/2))``."""
    step, dtype, device = stepper.step, y0.dtype, y0.device
    exponent = 1.0 / (stepper.order() + 0.5)

    def tensor(t):
        return torch.tensor(t, dtype=dtype, device=device)

    t, y = float(ts[0]), y0
    state = stepper.init(ts[0], y0, fg0)
    outs, h, n = [y0], dt, 0
    for t_out in ts[1:].tolist():
        while t < t_out:
            last = h >= t_out - t
            t1 = t_out if last else t + h
            h_try, tm = t1 - t, 0.5 * (t + t1)
            ta, tb, tmid = tensor(t), tensor(t1), tensor(tm)
            dw, u = source(t, t1)
            y_full, _ = step(ta, tb, h_try, y, dw, u, state)
            dw1, u1 = source(t, tm)
            dw2, u2 = source(tm, t1)
            y_mid, s_mid = step(ta, tmid, 0.5 * h_try, y, dw1, u1, state)
            y_two, s_two = step(tmid, tb, 0.5 * h_try, y_mid, dw2, u2, s_mid)
            with torch.no_grad():
                scale = atol + rtol * torch.maximum(y.abs(), y_two.abs())
                err = float(((y_two - y_full) / scale).pow(2).mean().sqrt())
            if not math.isfinite(err):  # a finite err implies a finite y_two
                if not bool(torch.isfinite(y_two).all()):
                    raise DivergenceError(t1, n + 1)
                err = 1e10
            if err <= 1.0 or h_try <= dt_min:
                t, y, state, n = t1, y_two, s_two, n + 1
                if n >= max_steps:
                    raise RuntimeError(
                        f"adaptive solve exceeded max_steps={max_steps} at t={t:.6g}"
                    )
            factor = 0.9 * (1.0 / max(err, 1e-10)) ** exponent
            h = max(dt_min, h_try * min(5.0, max(0.2, factor)))
        outs.append(y)
    return torch.stack(outs)


def step_grid(ts: torch.Tensor, dt: float):
    """Step times: ``t0 + k dt`` merged with ``ts``. A step point that equals an output time up
    to the rounding of ``ts``'s dtype (float32 ``k * dt`` is off by ~1e-7) is dropped, so that
    output times on the step grid add no extra steps. Returns the float64 grid and the grid
    index of each output time."""
    t = ts.detach().to("cpu", torch.float64).numpy()
    n = max(1, math.ceil((t[-1] - t[0]) / dt - 1e-9))
    base = t[0] + dt * np.arange(n + 1)
    tol = 1e-9 * dt + 16 * torch.finfo(ts.dtype).eps * float(np.abs(t).max())
    base = base[base < t[-1] - tol]
    near = np.min(np.abs(base[:, None] - t[None, :]), axis=1) <= tol
    grid = np.union1d(base[~near], t)
    out_index = np.searchsorted(grid, t).tolist()
    return torch.from_numpy(grid), out_index


def _backsolve(sde, y0, ts, method, dt, bm, generator, rtol, atol, options, adjoint_params):
    import torchsde

    if not isinstance(sde, torch.nn.Module):
        raise TypeError(
            f"adjoint='backsolve' needs the sde to be a torch.nn.Module (so its parameters "
            f"are known); got {type(sde).__name__}"
        )
    if bm is None:
        fg0 = f_and_g(sde, ts[0], y0)
        _check_drift_diffusion(sde, fg0, y0)
        size = (y0.shape[0], brownian_size(sde.noise_type, fg0[1]))
        bm = interval(
            ts[0],
            ts[-1],
            size,
            levy_area=method == "srk",
            generator=generator,
            dtype=y0.dtype,
            device=y0.device,
        )
    adaptive = rtol is not None
    kwargs = dict(rtol=rtol, atol=atol) if adaptive else {}
    return torchsde.sdeint_adjoint(
        sde,
        y0,
        ts,
        bm=bm,
        method=method,
        dt=dt,
        adaptive=adaptive,
        options=options,
        adjoint_params=adjoint_params,
        **kwargs,
    )


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number; got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite; got {value}")
    return float(value)


def _check_y0_ts(y0, ts):
    if not isinstance(y0, torch.Tensor):
        raise TypeError(
            f"y0 must be a torch.Tensor of shape (batch, state); got {type(y0).__name__}"
        )
    if y0.dim() != 2:
        raise ValueError(f"y0 must have shape (batch, state); got shape {tuple(y0.shape)}")
    if not y0.is_floating_point():
        raise TypeError(f"y0 must be a floating-point tensor; got dtype {y0.dtype}")
    if not bool(torch.isfinite(y0).all()):
        bad = torch.nonzero(~torch.isfinite(y0))[0].tolist()
        raise ValueError(f"y0 must be finite; found {y0[tuple(bad)].item()} at index {tuple(bad)}")
    if not isinstance(ts, torch.Tensor):
        ts = torch.as_tensor(ts, dtype=y0.dtype, device=y0.device)
    if ts.dim() != 1 or len(ts) < 2:
        raise ValueError(
            f"ts must be a 1-D tensor of at least 2 times; got shape {tuple(ts.shape)}"
        )
    if ts.device != y0.device:
        raise ValueError(f"ts is on {ts.device} but y0 is on {y0.device}; put both on one device")
    if not bool(torch.isfinite(ts).all()):
        raise ValueError(f"ts must be finite; got {ts.tolist()}")
    steps = torch.diff(ts)
    if not bool((steps > 0).all()):
        i = int(torch.nonzero(steps <= 0)[0])
        raise ValueError(
            f"ts must be strictly increasing; got ts[{i}]={ts[i].item():.6g} followed by "
            f"ts[{i + 1}]={ts[i + 1].item():.6g}"
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
