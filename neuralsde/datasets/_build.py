"""Shared helpers of the loaders: time grids, seeds, and the labelled output layout.

Every loader returns an ``xarray.Dataset`` whose ``values`` variable has dims
``("series", "time", "channel")`` with real coordinates, optional ``label`` over ``series``,
and ``attrs`` naming the source and licence.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.arguments import positive_int
from ..data.validation import as_numeric_array, check_strictly_increasing


def rng_from(seed) -> np.random.Generator:
    """A numpy Generator from an int seed, None (seed 0) or a Generator (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(0 if seed is None else seed)


def time_grid(
    n_times: int, t_end: float, times, irregular: bool, rng: np.random.Generator
) -> np.ndarray:
    """Observation times: ``times`` if given (validated), else a regular grid on
    ``[0, t_end]``, or with ``irregular=True`` 0 followed by sorted uniform draws."""
    if times is not None:
        t = as_numeric_array(times, "times")
        if t.ndim != 1:
            raise ValueError(f"times must have shape (n_times,), got {t.shape}")
        check_strictly_increasing(t, "times")
        if t[0] < 0:
            raise ValueError(f"times must be >= 0, got times[0] = {t[0]}")
        return t
    if not isinstance(n_times, (int, np.integer)) or n_times < 2:
        raise ValueError(f"n_times must be an integer >= 2, got {n_times!r}")
    if not t_end > 0:
        raise ValueError(f"t_end must be positive, got {t_end}")
    if irregular:
        draws = np.sort(rng.uniform(0.0, t_end, size=n_times - 1))
        return np.concatenate([[0.0], draws])
    return np.linspace(0.0, t_end, n_times)


def check_positive_int(value, name: str) -> int:
    return positive_int(value, name)


def make_dataset(
    values: np.ndarray,
    time,
    *,
    attrs: dict,
    channel=None,
    series=None,
    labels=None,
    time_attrs: dict | None = None,
    extra: dict | None = None,
) -> xr.Dataset:
    """Wrap ``values: (series, time, channel)`` in the loaders' Dataset layout."""
    n_series, _, n_channels = values.shape
    coords = {
        "series": np.arange(n_series) if series is None else np.asarray(series),
        "time": ("time", np.asarray(time), time_attrs or {}),
        "channel": np.arange(n_channels) if channel is None else np.asarray(channel),
    }
    data = {"values": (("series", "time", "channel"), values)}
    if labels is not None:
        data["label"] = ("series", np.asarray(labels))
    data.update(extra or {})
    return xr.Dataset(data, coords=coords, attrs=attrs)
