"""Step-size controllers: objects that propose, take and judge steps for the loop.

- :class:`ConstantSteps`: a fixed grid, every step accepted (forwards, or backwards for the
  reversible adjoint);
- :class:`StepDoubling`: the error of a step is the difference between it and two half
  steps (three steps per attempt, any method), with an I controller;
- :class:`PIController`: the method's embedded error estimate (one step per attempt), with
  a PI controller (diffrax's ``PIDController``; Jolicoeur-Martineau et al. 2021).

Both adaptive controllers measure the error against the mixed tolerance
``atol + rtol max(|y_prev|, |y_new|)`` with an RMS norm.
"""

from __future__ import annotations

import copy
import math

import torch

from .brownian import Increment
from .loop import Attempt, DivergenceError, StepLimitError


class ConstantSteps:
    """Step ``i`` goes from ``times[i]`` to ``times[i + 1]`` with size ``dts[i]``.

    Args:
        times: ``(n + 1,)`` step times (or ``(n + 1, batch, 1)``, one grid per series) in the
            state's dtype and device, handed to the SDE.
        dts: ``n`` float step sizes (or an ``(n, batch, 1)`` tensor).
        grid: the float64 grid ``(n + 1,)`` / ``(n + 1, batch)`` as numpy, for sources that
            are queried by time.
        outputs: grid indices whose states are outputs.
        reverse: walk the steps from the last to the first (the state then lands on grid
            index ``i`` after step ``i``).
    """

    def __init__(self, times, dts, grid, outputs, reverse: bool = False):
        self.times, self.dts, self.grid = times, dts, grid
        self.outputs = set(outputs)
        self.n = len(dts)
        self.reverse = reverse
        self.start = self.n if reverse else 0
        self._i = self.n - 1 if reverse else 0

    def attempt(self, step, source, y, state):
        i = self._i
        if i < 0 or i >= self.n:
            return None
        self._i = i - 1 if self.reverse else i + 1
        inc = source.increment(i, self.grid[i], self.grid[i + 1])
        y1, _, state1 = step(self.times[i], self.times[i + 1], self.dts[i], y, inc, state)
        land = i if self.reverse else i + 1
        return Attempt(True, y1, state1, land, land if land in self.outputs else None)

    def time_of(self, index: int):
        """The time of grid ``index``."""
        return self.times[index]


class _Adaptive:
    """Shared proposal logic: steps from ``ts[0]`` that end exactly on every output time.

    A controller object holds settings; :meth:`begin` returns a fresh copy that steps through
    one solve (so one object can configure many solves).
    """

    def __init__(self, rtol: float = 1e-3, atol: float = 1e-6, dt_min: float = 1e-6):
        self.rtol, self.atol, self.dt_min = float(rtol), float(atol), float(dt_min)

    def begin(self, ts, dt0, order, max_steps, dtype, device):
        run = copy.copy(self)
        run.ts = [float(t) for t in ts]
        run.order, run.max_steps = order, max_steps
        run.dtype, run.device = dtype, device
        run.h, run.t, run.k, run.n = float(dt0), run.ts[0], 1, 0
        run.start = 0
        run.reset()
        return run

    def reset(self) -> None:
        return None

    def _time(self, t):
        return torch.tensor(t, dtype=self.dtype, device=self.device)

    @staticmethod
    def time_of(t: float) -> float:
        return t

    def attempt(self, step, source, y, state):
        if self.k == len(self.ts):
            return None
        t, t_out = self.t, self.ts[self.k]
        last = self.h >= t_out - t
        t1 = t_out if last else t + self.h
        h = t1 - t
        # at the floor a step is accepted whatever its error (t + h - t can exceed dt_min
        # by rounding, which used to reject such steps forever)
        at_floor = self.h <= self.dt_min or h <= self.dt_min
        y1, state1, err = self.trial(step, source, t, t1, h, y, state)
        if not math.isfinite(err):  # a finite err implies a finite y1
            if not bool(torch.isfinite(y1).all()):
                raise DivergenceError(t1, self.n + 1)
            err = 1e10
        accepted = err <= 1.0 or at_floor
        self.h = max(self.dt_min, h * self.factor(err, accepted))
        if not accepted:
            return Attempt(False, y, state, t1, None)
        self.t, self.n = t1, self.n + 1
        if self.n >= self.max_steps:
            raise StepLimitError(self.max_steps, t1)
        landing = None
        if last:
            landing, self.k = self.k, self.k + 1
        return Attempt(True, y1, state1, t1, landing)

    def scaled(self, y0, y1, err):
        with torch.no_grad():
            return err / (self.atol + self.rtol * torch.maximum(y0.abs(), y1.abs()))


class StepDoubling(_Adaptive):
    """Accept when the RMS over the whole state of ``(y_two_halves - y_full) / tolerance``
    is at most 1; the next step is ``h (0.9 / err)^(1 / (p + 1/2))``, clipped to
    ``[0.2 h, 5 h]`` (``p``: the method's strong order). The two half steps are kept."""

    needs_error_estimate = False

    def trial(self, step, source, t, t1, h, y, state):
        tm = 0.5 * (t + t1)
        ta, tb, tmid = self._time(t), self._time(t1), self._time(tm)
        y_full, _, _ = step(ta, tb, h, y, source.increment(None, t, t1), state)
        y_mid, _, s_mid = step(ta, tmid, 0.5 * h, y, source.increment(None, t, tm), state)
        y_two, _, s_two = step(tmid, tb, 0.5 * h, y_mid, source.increment(None, tm, t1), s_mid)
        err = float(self.scaled(y, y_two, y_two - y_full).pow(2).mean().sqrt())
        return y_two, s_two, err

    def factor(self, err, accepted):
        grow = 0.9 * (1.0 / max(err, 1e-10)) ** (1.0 / (self.order + 0.5))
        return min(5.0, max(0.2, grow))


class PIController(_Adaptive):
    """One step per attempt, judged by the method's embedded error estimate.

    The error is the RMS over the whole state of ``error / tolerance``, the norm step doubling
    and torchsde use, so a step shared by the batch is judged by the batch's mean square error.
    With ``e_n`` that error and ``k = p + 1/2`` the order of the estimate (``p``: the strong
    order), the next step is ``h safety e_n^(-(beta_p + beta_i) / k) e_{n-1}^(beta_p / k)``,
    clipped to ``[0.2 h, 10 h]`` (``[0.2 h, safety h]`` after a rejection). Defaults
    ``beta_p = 0.1``, ``beta_i = 0.3``: the insensitive PI controller diffrax recommends for SDEs.
    """

    needs_error_estimate = True

    def __init__(self, rtol=1e-3, atol=1e-6, dt_min=1e-6, pcoeff=0.1, icoeff=0.3, safety=0.9):
        super().__init__(rtol, atol, dt_min)
        self.pcoeff, self.icoeff, self.safety = float(pcoeff), float(icoeff), float(safety)

    def reset(self) -> None:
        self.prev = 1.0

    def trial(self, step, source, t, t1, h, y, state):
        y1, err, state1 = step(self._time(t), self._time(t1), h, y,
                               source.increment(None, t, t1), state)  # fmt: skip
        return y1, state1, float(self.scaled(y, y1, err).pow(2).mean().sqrt())

    def factor(self, err, accepted):
        k = self.order + 0.5
        e = max(err, 1e-10)
        grow = (
            self.safety * e ** (-(self.pcoeff + self.icoeff) / k) * self.prev ** (self.pcoeff / k)
        )
        if accepted:
            self.prev = e
            return min(10.0, max(0.2, grow))
        return min(self.safety, max(0.2, grow))


class SeriesController:
    """Adaptive steps with one step size per series (Jolicoeur-Martineau et al. 2021, "Gotta
    Go Fast", Algorithm 1), judged by the method's embedded error estimate.

    Every series keeps its own time and step size; all attempt a step together (``t`` and
    ``dt`` reach the method as ``(batch, 1)`` tensors) and each is accepted or rejected on its
    own error ``E = RMS over the state of error / delta`` with the mixed tolerance
    ``delta = max(atol, rtol max(|y_prev|, |y_new|))``. The next step is
    ``h safety E^(-exponent)`` (at least ``dt_min``); finished series take steps of size 0.
    The Brownian increments come from ``source``; it must answer per-series times, as a
    :class:`~neuralsde.core.brownian.BrownianTree` does (``solve(bm=BrownianTree(...))``), so
    that a rejected step is retried on the same path: drawing fresh noise after a rejection,
    as the paper does, rejects large draws more often and shrinks the sample's spread. Only
    the two output times ``ts = [t0, t1]`` are supported.
    """

    needs_error_estimate = True
    per_series = True

    def __init__(self, rtol=0.05, atol=0.0078, dt_min=1e-6, safety=0.9, exponent=0.9):
        self.rtol, self.atol, self.dt_min = float(rtol), float(atol), float(dt_min)
        self.safety, self.exponent = float(safety), float(exponent)

    def begin(self, ts, dt0, order, max_steps, dtype, device):
        if len(ts) != 2:
            raise ValueError(
                f"a SeriesController supports ts of two times [t0, t1]; got {len(ts)} times"
            )
        run = copy.copy(self)
        run.t0, run.t1 = float(ts[0]), float(ts[-1])
        run.h0, run.max_steps, run.dtype, run.device = float(dt0), max_steps, dtype, device
        run.t = run.h = run.w = None
        run.start, run.attempts = 0, 0
        return run

    @staticmethod
    def time_of(t):
        return t

    def _active(self):
        """``(batch, 1)``: the series that have not reached ``t1``."""
        return self.t < self.t1 - 1e-12 * max(1.0, abs(self.t1))

    def attempt(self, step, source, y, state):
        bm = getattr(source, "bm", None)
        if not hasattr(bm, "value"):
            raise TypeError(
                "a SeriesController needs a Brownian source with per-series times: pass "
                "bm=BrownianTree(t0, t1, (batch, brownian), generator=...) to solve"
            )
        if self.t is None:
            self.t = torch.full((y.shape[0], 1), self.t0, dtype=y.dtype, device=y.device)
            self.h = torch.full_like(self.t, self.h0)
            self.w = bm.value(self.t).to(y.dtype)
        active = self._active()
        if not bool(active.any()):
            return None
        self.attempts += 1
        if self.attempts > self.max_steps:
            raise StepLimitError(self.max_steps)
        h = torch.where(active, torch.minimum(self.h, self.t1 - self.t), torch.zeros_like(self.h))
        t1 = torch.where(active & (h >= self.t1 - self.t), torch.full_like(h, self.t1), self.t + h)
        w1 = bm.value(t1).to(y.dtype)
        y1, err, state1 = step(self.t, t1, h, y, Increment(w1 - self.w), state)
        with torch.no_grad():
            delta = torch.clamp(self.rtol * torch.maximum(y.abs(), y1.abs()), min=self.atol)
            e = (err / delta).pow(2).mean(-1, keepdim=True).sqrt()
            e = torch.where(torch.isfinite(e), e, torch.full_like(e, 1e10))
            accept = active & ((e <= 1.0) | (h <= self.dt_min))
            grow = self.safety * e.clamp_min(1e-10).pow(-self.exponent)
            self.h = torch.where(active, (h * grow).clamp_min(self.dt_min), self.h)
        y_new = torch.where(accept, y1, y)
        self.w = torch.where(accept, w1, self.w)
        self.t = torch.where(accept, t1, self.t)
        done = not bool(self._active().any())
        return Attempt(True, y_new, state1, self.t, 1 if done else None)
