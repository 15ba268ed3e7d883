"""Control paths X(t) of irregular batches, as torchcde interpolations.

A batch of series with their own time stamps is put on the union grid of all its time stamps
(NaN where a series was not observed), augmented to the channels
``[time, values (C), cumulative observation counts (C)]`` (Kidger et al. 2020, "observational
intensity"), gaps are filled by linear interpolation in time (constant before the first and
after the last observation, zero for a channel never observed; the same fill torchcde applies),
and handed to torchcde. Models call the returned object's ``.evaluate(t)`` / ``.derivative(t)``.
"""

from __future__ import annotations

import torch
import torchcde

__all__ = ["KINDS", "augment", "control_path", "fill_missing", "observation_counts", "union_grid"]

KINDS = ("hermite", "linear", "rectilinear")


def union_grid(
    times: torch.Tensor, values: torch.Tensor, grid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Put padded series on the sorted union of their time stamps.

    Args:
        times: ``(B, L)``, NaN where padded.
        values: ``(B, L, C)``, NaN where missing or padded.
        grid: ``(T,)`` a given sorted grid holding every finite time of ``times`` (the union of
            a larger batch this one is a chunk of), instead of this batch's own union.

    Returns:
        ``grid: (T,)`` the sorted distinct finite times, and ``on_grid: (B, T, C)`` holding each
        series' values at its own stamps and NaN elsewhere.

    Example:
        >>> t = torch.tensor([[0.0, 2.0], [1.0, float("nan")]])
        >>> x = torch.tensor([[[1.0], [3.0]], [[5.0], [float("nan")]]])
        >>> grid, on = union_grid(t, x)
        >>> grid.tolist(), on[1, :, 0].tolist()
        ([0.0, 1.0, 2.0], [nan, 5.0, nan])
    """
    finite = ~torch.isnan(times)
    own = grid is None
    grid = torch.unique(times[finite]) if own else grid.to(times)  # sorted
    batch, _, channels = values.shape
    on_grid = values.new_full((batch, grid.shape[0], channels), float("nan"))
    rows, cols = torch.nonzero(finite, as_tuple=True)
    idx = torch.searchsorted(grid, times[rows, cols])
    if not own and not bool((grid[idx.clamp(max=grid.shape[0] - 1)] == times[rows, cols]).all()):
        raise ValueError("grid must hold every finite time stamp of times")
    on_grid = on_grid.index_put((rows, idx), values[rows, cols])
    return grid, on_grid


def observation_counts(values: torch.Tensor) -> torch.Tensor:
    """Cumulative number of observations per channel: ``(B, T, C) -> (B, T, C)``."""
    return (~torch.isnan(values)).to(values.dtype).cumsum(dim=-2)


def fill_missing(grid: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Fill NaNs by linear interpolation in time, as torchcde does, but vectorised.

    Before the first observation of a channel the first observed value is used, after the last
    the last one; a channel with no observation becomes 0 (torchcde's convention).
    Differentiable with respect to the observed values.

    Args:
        grid: ``(T,)`` increasing times.
        values: ``(..., T, C)`` with NaN for missing.

    Returns:
        ``(..., T, C)`` without NaN.
    """
    observed = ~torch.isnan(values)
    length = grid.shape[0]
    idx = torch.arange(length, device=values.device).view(-1, 1).expand(values.shape[-2:])
    idx = idx.expand(values.shape)
    prev = torch.where(observed, idx, torch.full_like(idx, -1)).cummax(dim=-2).values
    nxt = torch.where(observed, idx, torch.full_like(idx, length))
    nxt = nxt.flip(-2).cummin(dim=-2).values.flip(-2)
    none = prev.eq(-1) & nxt.eq(length)
    prev = torch.where(prev.eq(-1), nxt, prev)
    nxt = torch.where(nxt.eq(length), prev, nxt)
    prev, nxt = prev.clamp(0, length - 1), nxt.clamp(0, length - 1)
    safe = torch.where(observed, values, torch.zeros_like(values))
    x_prev, x_next = safe.gather(-2, prev), safe.gather(-2, nxt)
    t = grid.to(values.dtype)
    t_here, t_prev, t_next = t[idx], t[prev], t[nxt]
    span = t_next - t_prev
    ratio = torch.where(span > 0, (t_here - t_prev) / torch.where(span > 0, span, 1.0), 0.0)
    filled = x_prev + ratio * (x_next - x_prev)
    filled = torch.where(none, torch.zeros_like(filled), filled)
    return torch.where(observed, values, filled)


def augment(grid: torch.Tensor, on_grid: torch.Tensor, intensity: bool = True) -> torch.Tensor:
    """Channels ``[time, values, counts]``: ``(B, T, C) -> (B, T, 1 + 2C)`` (``1 + C`` without
    intensity). Values keep their NaNs; time and counts are always observed."""
    batch, length, _ = on_grid.shape
    time = grid.to(on_grid.dtype).view(1, length, 1).expand(batch, length, 1)
    parts = [time, on_grid]
    if intensity:
        parts.append(observation_counts(on_grid))
    return torch.cat(parts, dim=-1)


def control_path(
    times: torch.Tensor,
    values: torch.Tensor,
    kind: str = "hermite",
    intensity: bool = True,
    grid: torch.Tensor | None = None,
):
    """The torchcde interpolation of ``[time, values, counts]`` for a padded irregular batch.

    Args:
        times: ``(B, L)`` padded with NaN.
        values: ``(B, L, C)`` NaN where missing.
        kind: ``"hermite"`` (cubic Hermite with backward differences, causal between knots),
            ``"linear"``, or ``"rectilinear"`` (time moves first, then values: causal).
        intensity: append the cumulative observation counts.
        grid: ``(T,)`` knots to use instead of the batch's union of time stamps (a superset:
            the union of a larger batch). A chunk of a batch then gets exactly its rows of the
            whole batch's path.

    Returns:
        ``torchcde.CubicSpline`` (hermite) or ``torchcde.LinearInterpolation``; its
        ``.evaluate(t)`` is ``(B, 1 + 2C)``. For ``"hermite"`` and ``"linear"`` the parameter
        ``t`` is physical time on the union grid; for ``"rectilinear"`` it is torchcde's
        interleaved index ``0 .. 2T - 2`` and physical time is channel 0.

    Example:
        >>> t = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
        >>> x = torch.tensor([[[0.0], [float("nan")], [2.0]]], dtype=torch.float64)
        >>> X = control_path(t, x)
        >>> X.evaluate(torch.tensor(2.0, dtype=torch.float64)).tolist()
        [[2.0, 2.0, 2.0]]
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    grid, on_grid = union_grid(times, values, grid)
    data = augment(grid, on_grid, intensity)
    grid = grid.to(values.dtype)
    if kind == "rectilinear":
        filled = _forward_fill(grid, data)
        coeffs = torchcde.linear_interpolation_coeffs(filled, rectilinear=0)
        return torchcde.LinearInterpolation(coeffs)
    filled = fill_missing(grid, data)
    if kind == "hermite":
        coeffs = torchcde.hermite_cubic_coefficients_with_backward_differences(filled, grid)
        return torchcde.CubicSpline(coeffs, grid)
    coeffs = torchcde.linear_interpolation_coeffs(filled, grid)
    return torchcde.LinearInterpolation(coeffs, grid)


def _forward_fill(grid: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """Carry the last observation forward; before the first one use the first one (as
    torchcde's rectilinear scheme does, which warns about it)."""
    observed = ~torch.isnan(data)
    length = grid.shape[0]
    idx = torch.arange(length, device=data.device).view(-1, 1).expand(data.shape[-2:])
    idx = idx.expand(data.shape)
    prev = torch.where(observed, idx, torch.full_like(idx, -1)).cummax(dim=-2).values
    first = torch.where(observed, idx, torch.full_like(idx, length)).min(dim=-2, keepdim=True)
    prev = torch.where(prev.eq(-1), first.values.expand_as(prev), prev).clamp(0, length - 1)
    safe = torch.where(observed, data, torch.zeros_like(data))
    return safe.gather(-2, prev)
