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


def _merged(t: np.ndarray, dt: float, eps: float):
    """Step points ``t[0] + k dt`` merged with the increasing times ``t`` (float64), without
    points that equal an output time up to the rounding of the times' dtype (``eps``)."""
    n = max(1, math.ceil((t[-1] - t[0]) / dt - 1e-9))
    base = t[0] + dt * np.arange(n + 1)
    tol = 1e-9 * dt + 16 * eps * float(np.abs(t).max())
    base = base[base < t[-1] - tol]
    near = np.min(np.abs(base[:, None] - t[None, :]), axis=1) <= tol
    grid = np.union1d(base[~near], t)
    return grid, np.searchsorted(grid, t)


def step_grid(ts: torch.Tensor, dt: float, max_steps: int | None = None):
    """Step times ``t0 + k dt`` merged with ``ts: (T,)``. A step point that equals an output time
    up to the rounding of ``ts``'s dtype (float32 ``k * dt`` is off by ~1e-7) is dropped, so
    that output times on the step grid add no extra steps. Returns the float64 grid
    ``(n + 1,)`` and the grid index of each output time (a list of ``T`` ints)."""
    t = ts.detach().to("cpu", torch.float64).numpy()
    if max_steps is not None:
        check_steps(math.ceil((t[-1] - t[0]) / dt - 1e-9) + len(t) - 2, max_steps, dt)
    grid, index = _merged(t, dt, torch.finfo(ts.dtype).eps)
    return torch.from_numpy(grid), index.tolist()


def given_grid(ts: torch.Tensor, grid, max_steps: int | None = None):
    """A step grid given as data (a sampling schedule): ``grid`` strictly increasing, from
    ``ts[0]`` to ``ts[-1]``, holding every output time of ``ts: (T,)`` (to the rounding of
    ``ts``'s dtype). Returns the float64 grid and the grid index of each output time."""
    g = torch.as_tensor(grid).detach().to("cpu", torch.float64).reshape(-1).numpy()
    t = ts.detach().to("cpu", torch.float64).numpy()
    if g.size < 2 or not np.isfinite(g).all() or not (np.diff(g) > 0).all():
        raise ValueError(f"grid must be a strictly increasing, finite 1-D tensor; got {g.tolist()}")
    if max_steps is not None:
        check_steps(g.size - 1, max_steps, float(g[1] - g[0]))
    tol = 16 * torch.finfo(ts.dtype).eps * max(1.0, float(np.abs(g).max()))
    index = np.searchsorted(g, t - tol)
    index = np.minimum(index, g.size - 1)
    if not (np.abs(g[index] - t) <= tol).all() or index[0] != 0 or index[-1] != g.size - 1:
        raise ValueError(
            f"grid must run from ts[0] to ts[-1] and hold every time of ts; got grid from "
            f"{g[0]:.6g} to {g[-1]:.6g} and ts={t.tolist()}"
        )
    g[index] = t  # output times exactly as the user gave them
    return torch.from_numpy(g), index.tolist()


def series_grid(ts: torch.Tensor, dt: float, max_steps: int | None = None):
    """One grid per series for ``ts: (T, batch)``: each series' own :func:`step_grid` (its
    times merged with ``t0 + k dt``), with the steps of series that need fewer than the longest
    cut into equal pieces until all take the same number ``n`` (the largest steps first, so the
    longest step of each series is as short as it can be). The series then step in lockstep,
    each with its own sizes. Returns the float64 grid ``(n + 1, batch)`` and the step index of
    every output time, ``(T, batch)`` int64.

    Example:
        >>> grid, index = series_grid(torch.tensor([[0.0, 0.0], [1.0, 0.5]]), 0.25)
        >>> grid[:, 1].tolist(), index[:, 1].tolist()
        ([0.0, 0.125, 0.25, 0.375, 0.5], [0, 4])
    """
    t = ts.detach().to("cpu", torch.float64).numpy()
    T, B = t.shape
    if max_steps is not None:
        widest = float((t[-1] - t[0]).max())
        check_steps(math.ceil(widest / dt - 1e-9) + T - 2, max_steps, dt)
    eps = torch.finfo(ts.dtype).eps
    uniq, inverse = np.unique(t, axis=1, return_inverse=True)
    if uniq.shape[1] < B:  # repeated series (posterior samples): each distinct one once
        grid, index = _series_grid(uniq, dt, eps)
        inverse = inverse.reshape(-1)
        return torch.from_numpy(np.ascontiguousarray(grid[:, inverse])), index[:, inverse]
    grid, index = _series_grid(t, dt, eps)
    return torch.from_numpy(np.ascontiguousarray(grid)), index


def _series_grid(t: np.ndarray, dt: float, eps: float):
    """:func:`series_grid` on float64 times ``t: (T, B)``: ``(grid array, index tensor)``."""
    T, B = t.shape
    merged = [_merged(t[:, b], dt, eps) for b in range(B)]
    steps = max(len(g) for g, _ in merged) - 1
    gaps = np.zeros((steps, B))
    for b, (g, _) in enumerate(merged):
        gaps[: len(g) - 1, b] = np.diff(g)
    counts = _pieces(gaps, steps)  # (steps, B): equal pieces per merged step
    flat_counts = counts.T.ravel()
    interval = np.repeat(np.arange(flat_counts.size), flat_counts)
    starts = np.cumsum(flat_counts) - flat_counts
    within = np.arange(interval.size) - starts[interval]
    left = np.zeros((steps, B))
    for b, (g, _) in enumerate(merged):
        left[: len(g) - 1, b] = g[:-1]
    frac = within / flat_counts[interval]
    points = (left.T.ravel()[interval] + gaps.T.ravel()[interval] * frac).reshape(B, steps)
    grid = np.concatenate([points, t[-1:].T], axis=1).T  # (steps + 1, B)
    ends = np.concatenate([np.zeros((1, B), np.int64), np.cumsum(counts, axis=0)])
    index = np.stack([ends[merged[b][1], b] for b in range(B)], axis=1)
    return grid, torch.from_numpy(index)


def _pieces(gaps: np.ndarray, n: int) -> np.ndarray:
    """For each column of step sizes (0 = no step), how many equal pieces to cut each step into
    so that the column has ``n`` pieces and its longest piece is as short as possible: the
    smallest ``h`` with ``sum ceil(gap / h) <= n`` by bisection, then one more piece for the
    steps whose pieces are then longest."""
    valid = gaps > 0
    hi, lo = gaps.max(0), np.zeros(gaps.shape[1])
    safe = np.where(valid, gaps, 1.0)

    def count(h):
        return np.where(valid, np.maximum(1, np.ceil(safe / h[None] - 1e-12)), 0)

    for _ in range(60):
        mid = 0.5 * (lo + hi)
        ok = count(np.maximum(mid, 1e-300)).sum(0) <= n
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    pieces = count(hi).astype(np.int64)
    left = n - pieces.sum(0)
    while left.any():
        length = np.where(valid, safe / np.maximum(pieces, 1), -np.inf)
        rank = np.argsort(np.argsort(-length, axis=0, kind="stable"), axis=0)
        extra = (rank < left[None]) & valid
        pieces += extra
        left = n - pieces.sum(0)
    return pieces
