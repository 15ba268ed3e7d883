"""Ornstein-Uhlenbeck and geometric Brownian motion, sampled exactly at any time stamps.

OU: dX = theta (mu - X) dt + sigma dW, transition X_{t+h} | X_t ~
N(mu + (X_t - mu) e^{-theta h}, sigma^2 (1 - e^{-2 theta h}) / (2 theta)).
GBM: dX = mu X dt + sigma X dW, X_{t+h} = X_t exp((mu - sigma^2 / 2) h + sigma (W_{t+h} - W_t)).
"""

from __future__ import annotations

import numpy as np

from ._build import check_positive_int, make_dataset, rng_from, time_grid

__all__ = ["simulate_gbm", "simulate_ou"]


def simulate_ou(
    n_series: int = 16,
    n_times: int = 100,
    *,
    theta: float = 1.0,
    mu: float = 0.0,
    sigma: float = 0.5,
    x0: float | None = None,
    t_end: float = 10.0,
    times=None,
    irregular: bool = False,
    n_channels: int = 1,
    seed=0,
):
    """Exact OU paths at the given (possibly irregular) times.

    Args:
        x0: start value; None draws it from the stationary law N(mu, sigma^2 / (2 theta)).
        times: ``(n_times,)`` increasing times (overrides ``n_times``, ``t_end``).
        irregular: sorted uniform times on ``[0, t_end]`` instead of a regular grid.
        n_channels: independent copies per series.
        seed: int or ``numpy.random.Generator``.

    Returns:
        Dataset ``values (series, time, channel)``; the parameters are in ``attrs``.

    Example:
        >>> ds = simulate_ou(4, 50, theta=2.0, seed=1)
        >>> ds["values"].shape
        (4, 50, 1)
    """
    n_series, n_channels = (
        check_positive_int(n_series, "n_series"),
        check_positive_int(n_channels, "n_channels"),
    )
    if not theta > 0 or not sigma >= 0:
        raise ValueError(f"theta must be > 0 and sigma >= 0, got theta={theta}, sigma={sigma}")
    rng = rng_from(seed)
    t = time_grid(n_times, t_end, times, irregular, rng)
    x = np.empty((n_series, len(t), n_channels))
    stationary_sd = sigma / np.sqrt(2 * theta)
    x[:, 0] = mu + stationary_sd * rng.standard_normal((n_series, n_channels)) if x0 is None else x0
    for k, h in enumerate(np.diff(t)):
        a = np.exp(-theta * h)
        sd = stationary_sd * np.sqrt(1 - a * a)
        x[:, k + 1] = mu + (x[:, k] - mu) * a + sd * rng.standard_normal((n_series, n_channels))
    return make_dataset(
        x,
        t,
        attrs={
            "name": "Ornstein-Uhlenbeck",
            "source": "neuralsde.datasets.simulate_ou (exact Gaussian transitions)",
            "licence": "MIT (synthetic)",
            "sde": "dX = theta (mu - X) dt + sigma dW",
            "theta": theta,
            "mu": mu,
            "sigma": sigma,
            "x0": "stationary" if x0 is None else x0,
        },
    )


def simulate_gbm(
    n_series: int = 16,
    n_times: int = 100,
    *,
    mu: float = 0.05,
    sigma: float = 0.2,
    x0: float = 1.0,
    t_end: float = 1.0,
    times=None,
    irregular: bool = False,
    n_channels: int = 1,
    seed=0,
):
    """Exact geometric Brownian motion paths started at ``X(times[0]) = x0``.

    With ``s = t - times[0]``: ``E X_t = x0 e^{mu s}`` and
    ``Var X_t = x0^2 e^{2 mu s} (e^{sigma^2 s} - 1)``.

    Example:
        >>> float(simulate_gbm(2, 10, seed=0)["values"][0, 0, 0])
        1.0
    """
    n_series, n_channels = (
        check_positive_int(n_series, "n_series"),
        check_positive_int(n_channels, "n_channels"),
    )
    if not x0 > 0 or not sigma >= 0:
        raise ValueError(f"x0 must be > 0 and sigma >= 0, got x0={x0}, sigma={sigma}")
    rng = rng_from(seed)
    t = time_grid(n_times, t_end, times, irregular, rng)
    dt = np.diff(t)
    dw = rng.standard_normal((n_series, len(dt), n_channels)) * np.sqrt(dt)[None, :, None]
    log_inc = (mu - 0.5 * sigma**2) * dt[None, :, None] + sigma * dw
    log_x = np.concatenate(
        [np.zeros((n_series, 1, n_channels)), np.cumsum(log_inc, axis=1)], axis=1
    )
    x = x0 * np.exp(log_x)
    return make_dataset(
        x,
        t,
        attrs={
            "name": "geometric Brownian motion",
            "source": "neuralsde.datasets.simulate_gbm (exact log-normal transitions)",
            "licence": "MIT (synthetic)",
            "sde": "dX = mu X dt + sigma X dW",
            "mu": mu,
            "sigma": sigma,
            "x0": x0,
        },
    )
