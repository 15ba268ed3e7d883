"""Step grids for fixed steps: one shared grid for ``ts: (T,)``, one grid per series for
``ts: (T, batch)``. Built in float64 on the CPU; ``solve`` hands the grid to the SDE's
``precompute`` hook and the steppers read it on the device."""

from __future__ import annotations

import math

import numpy as np
import torch


def check_steps(n: int, max_steps: int, dt: float) -> None:
    """Raise before allocating a grid of more than ``max_steps`` steps."""
    if n > max_steps:
        raise ValueError(
            f"dt={dt:.6g} needs {n} steps, more than max_steps={max_steps}; increase dt or "
            f"pass a larger max_steps"
        )


def step_grid(ts: torch.Tensor, dt: float, max_steps: int | None = None):
    """Step times ``t0 + k dt`` merged with ``ts: (T,)``. A step point that equals an output time
    up to the rounding of ``ts``'s dtype (float32 ``k * dt`` is off by ~1e-7) is dropped, so
    that output times on the step grid add no extra steps. Returns the float64 grid
    ``(n + 1,)`` and the grid index of each output time (a list of ``T`` ints)."""
    t = ts.detach().to("cpu", torch.float64).numpy()
    n = max(1, math.ceil((t[-1] - t[0]) / dt - 1e-9))
    if max_steps is not None:
        check_steps(n + len(t) - 2, max_steps, dt)
    base = t[0] + dt * np.arange(n + 1)
    tol = 1e-9 * dt + 16 * torch.finfo(ts.dtype).eps * float(np.abs(t).max())
    base = base[base < t[-1] - tol]
    near = np.min(np.abs(base[:, None] - t[None, :]), axis=1) <= tol
    grid = np.union1d(base[~near], t)
    out_index = np.searchsorted(grid, t).tolist()
    return torch.from_numpy(grid), out_index


def series_grid(ts: torch.Tensor, dt: float, max_steps: int | None = None):
    """One grid per series for ``ts: (T, batch)``: every interval ``[ts[k], ts[k+1]]`` of a
    series is cut into ``ceil(gap / dt)`` equal steps, and series that need fewer steps than
    the longest cut their largest interval finer, so that all take the same number ``n`` of
    steps (in lockstep, each with its own sizes). Returns the float64 grid ``(n + 1, batch)``
    and the step index of every output time, ``(T, batch)`` int64.

    Example:
        >>> grid, index = series_grid(torch.tensor([[0.0, 0.0], [1.0, 0.5]]), 0.25)
        >>> grid[:, 1].tolist(), index[:, 1].tolist()
        ([0.0, 0.125, 0.25, 0.375, 0.5], [0, 4])
    """
    t = ts.detach().to("cpu", torch.float64).numpy()
    T, B = t.shape
    gaps = np.diff(t, axis=0)  # (T - 1, B)
    counts = np.maximum(1, np.ceil(gaps / dt - 1e-9)).astype(np.int64)
    n = int(counts.sum(0).max())
    if max_steps is not None:
        check_steps(n, max_steps, dt)
    widest = np.argmax(gaps, axis=0)
    counts[widest, np.arange(B)] += n - counts.sum(0)
    # interval of every step, series by series: each column holds exactly n steps
    flat_counts = counts.T.ravel()
    interval = np.repeat(np.arange(flat_counts.size), flat_counts)
    starts = np.cumsum(flat_counts) - flat_counts
    within = np.arange(interval.size) - starts[interval]
    t0 = t[:-1].T.ravel()[interval]
    frac = within / flat_counts[interval]
    steps = (t0 + gaps.T.ravel()[interval] * frac).reshape(B, n)
    grid = np.concatenate([steps, t[-1:].T], axis=1).T  # (n + 1, B)
    index = np.concatenate([np.zeros((1, B), np.int64), np.cumsum(counts, axis=0)])
    return torch.from_numpy(np.ascontiguousarray(grid)), torch.from_numpy(index)
