"""Local fallback for the four regime-switching families of the change-point benchmark.

Delete once ``neuralsde.datasets`` ships its regime-switching generator (the benchmark tries
that first). Each generator returns ``(x: (n,), bkps)`` with ruptures-style ``bkps`` (last = n).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cholesky, toeplitz

FAMILIES = ("mean", "volatility", "reversion_speed", "hurst")
EXTRA_FAMILIES = ("mean_slow",)


def _bkps(n: int, rng: np.random.Generator) -> list[int]:
    jitter = rng.integers(-n // 20, n // 20 + 1, size=2)
    return [int(n // 3 + jitter[0]), int(2 * n // 3 + jitter[1]), n]


def _ou_exact(x0, theta, var, mu, m, rng):
    """Exact OU transitions on a unit grid with stationary variance ``var``."""
    a = np.exp(-theta)
    out = np.empty(m)
    x = x0
    for i in range(m):
        x = mu + a * (x - mu) + np.sqrt(var * (1 - a * a)) * rng.normal()
        out[i] = x
    return out


def _fgn(m: int, hurst: float, rng: np.random.Generator) -> np.ndarray:
    """Fractional Gaussian noise (unit variance) by Cholesky of its exact covariance."""
    k = np.arange(m, dtype=float)
    gamma = 0.5 * (np.abs(k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))
    return cholesky(toeplitz(gamma), lower=True) @ rng.normal(size=m)


def regime_switching(family: str, n: int = 1000, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """One series of ``family`` with two planted change points near n/3 and 2n/3.

    mean: OU (theta=1, stationary sd 1) whose mean steps 0 -> 1.5 -> 0. mean_slow: the same with
    theta=0.2 (a hard case for any window method). volatility: OU (theta=0.2) whose stationary sd
    steps 1 -> 2 -> 1. reversion_speed: OU with theta 0.05 -> 0.5 -> 0.05 and stationary
    variance held at 1. hurst: x_{t+1} = 0.95 x_t + 0.3 eps_t with eps fractional Gaussian
    noise of Hurst index 0.3 -> 0.8 -> 0.3 (unit variance).
    """
    rng = np.random.default_rng(seed)
    bkps = _bkps(n, rng)
    bounds = list(zip([0, *bkps[:-1]], bkps, strict=True))
    pieces, x0 = [], 0.0
    for j, (a, b) in enumerate(bounds):
        m = b - a
        odd = j % 2 == 1
        if family == "mean":
            seg = _ou_exact(x0, 1.0, 1.0, 1.5 if odd else 0.0, m, rng)
        elif family == "mean_slow":
            seg = _ou_exact(x0, 0.2, 1.0, 1.5 if odd else 0.0, m, rng)
        elif family == "volatility":
            seg = _ou_exact(x0, 0.2, 4.0 if odd else 1.0, 0.0, m, rng)
        elif family == "reversion_speed":
            seg = _ou_exact(x0, 0.5 if odd else 0.05, 1.0, 0.0, m, rng)
        elif family == "hurst":
            noise = _fgn(m, 0.8 if odd else 0.3, rng)
            seg = np.empty(m)
            x = x0
            for i in range(m):
                x = x - 0.05 * x + 0.3 * noise[i]
                seg[i] = x
        else:
            raise ValueError(
                f"family must be one of {FAMILIES + EXTRA_FAMILIES}; got {family!r}"
            )
        pieces.append(seg)
        x0 = seg[-1]
    return np.concatenate(pieces), bkps
