"""Scores of probabilistic forecasts: CRPS from samples or from a Gaussian, interval coverage.

The continuous ranked probability score of a predictive law ``F`` at the outcome ``y`` is
``CRPS(F, y) = int (F(x) - 1{x >= y})^2 dx = E|X - y| - E|X - X'| / 2`` (Gneiting & Raftery
2007), in the units of ``y``; lower is better, and for a point forecast it is the absolute
error. From ``m`` samples the second form is computed exactly for their empirical law, in
``O(m log m)`` through the sorted samples: ``E|X - X'| = 2 / m^2 sum_i (2 i - m - 1) x_(i)``.
For ``N(mu, s^2)``: ``s (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` with ``z = (y - mu) / s``.

Example:
    >>> import numpy as np
    >>> samples = np.random.default_rng(0).normal(size=(4000, 1))
    >>> bool(abs(crps_samples(samples, np.zeros(1))[0] - crps_gaussian(0, 1, 0)) < 0.01)
    True
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

__all__ = ["coverage", "crps_gaussian", "crps_samples"]


def _finite(a, name):
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or inf; mask the missing outcomes out first")
    return a


def crps_samples(samples, y) -> np.ndarray:
    """CRPS of the empirical law of ``samples: (m, *shape)`` at ``y: shape`` (elementwise,
    shape ``shape``)."""
    x = np.sort(_finite(samples, "samples"), axis=0)
    y = _finite(y, "y")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"samples must have a leading sample axis of length >= 1; got shape "
                         f"{x.shape}")  # fmt: skip
    if x.shape[1:] != np.shape(y):
        raise ValueError(f"samples of shape {x.shape} do not match y of shape {np.shape(y)}: "
                         f"expected (m, *y.shape)")  # fmt: skip
    m = x.shape[0]
    w = (2 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * (x.ndim - 1))
    spread = 2 * (w * x).sum(0) / m**2
    return np.abs(x - y).mean(0) - 0.5 * spread


def crps_gaussian(mean, std, y) -> np.ndarray:
    """CRPS of ``N(mean, std^2)`` at ``y`` (broadcast, elementwise); ``std > 0``."""
    mean, std, y = _finite(mean, "mean"), _finite(std, "std"), _finite(y, "y")
    if (std <= 0).any():
        raise ValueError(f"std must be > 0; got minimum {float(std.min())}")
    z = (y - mean) / std
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + erf(z / math.sqrt(2)))
    return std * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def coverage(lower, upper, y) -> float:
    """The fraction of ``y`` inside ``[lower, upper]`` (broadcast)."""
    lower, upper, y = _finite(lower, "lower"), _finite(upper, "upper"), _finite(y, "y")
    return float(((y >= lower) & (y <= upper)).mean())
