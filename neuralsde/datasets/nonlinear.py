"""Nonlinear SDE benchmarks: the stochastic Lorenz system and a double-well potential.

Both are integrated by Euler-Maruyama on a fine grid (step <= ``dt``) and read off at the
requested stamps; they have no closed-form transition law.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._build import check_positive_int, make_dataset, rng_from, time_grid

__all__ = ["simulate_double_well", "simulate_lorenz"]


def euler_maruyama(
    drift: Callable[[np.ndarray], np.ndarray],
    diffusion: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    times: np.ndarray,
    dt: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Euler-Maruyama for autonomous diagonal-noise SDEs dX = f(X) dt + g(X) * dW.

    Args:
        x0: ``(batch, state)``; ``times: (T,)``; each gap is split into equal substeps <= dt.

    Returns:
        ``(batch, T, state)`` with ``[:, 0] = x0``.
    """
    out = np.empty((x0.shape[0], len(times), x0.shape[1]))
    out[:, 0] = x = x0
    for k, gap in enumerate(np.diff(times)):
        n = max(1, int(np.ceil(gap / dt)))
        h = gap / n
        for _ in range(n):
            noise = rng.standard_normal(x.shape) * np.sqrt(h)
            x = x + drift(x) * h + diffusion(x) * noise
        out[:, k + 1] = x
    return out


def simulate_lorenz(
    n_series: int = 16,
    n_times: int = 100,
    *,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    alpha: tuple[float, float, float] = (0.15, 0.15, 0.15),
    t_end: float = 2.0,
    times=None,
    irregular: bool = False,
    dt: float = 1e-3,
    seed=0,
):
    """Stochastic Lorenz system with multiplicative diagonal noise (as in torchsde's latent-SDE
    example): dx = sigma (y - x) dt + a1 x dW1, dy = (x (rho - z) - y) dt + a2 y dW2,
    dz = (x y - beta z) dt + a3 z dW3, started from N(0, I).

    Returns:
        Dataset ``values (series, time, channel)`` with channels ``x, y, z``.

    Example:
        >>> simulate_lorenz(2, 5, seed=0)["values"].shape
        (2, 5, 3)
    """
    n_series = check_positive_int(n_series, "n_series")
    rng = rng_from(seed)
    t = time_grid(n_times, t_end, times, irregular, rng)
    scale = np.asarray(alpha, dtype=np.float64)

    def drift(s):
        x, y, z = s[:, 0], s[:, 1], s[:, 2]
        return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=1)

    values = euler_maruyama(drift, lambda s: scale * s, rng.standard_normal((n_series, 3)), t,
                            dt, rng)  # fmt: skip
    return make_dataset(
        values,
        t,
        channel=["x", "y", "z"],
        attrs={
            "name": "stochastic Lorenz",
            "source": "neuralsde.datasets.simulate_lorenz (Euler-Maruyama, fine step dt)",
            "licence": "MIT (synthetic)",
            "sigma": sigma,
            "rho": rho,
            "beta": beta,
            "alpha": list(scale),
            "dt": dt,
        },
    )


def simulate_double_well(
    n_series: int = 16,
    n_times: int = 200,
    *,
    noise: float = 0.5,
    x0: float | None = None,
    t_end: float = 50.0,
    times=None,
    irregular: bool = False,
    dt: float = 1e-2,
    seed=0,
):
    """Double-well diffusion dX = (X - X^3) dt + noise dW, i.e. the gradient flow of
    V(x) = (x^2 - 1)^2 / 4 with wells at +-1; its stationary density is proportional to
    exp(-2 V(x) / noise^2). ``x0=None`` starts each series in a random well (+-1).

    Example:
        >>> simulate_double_well(3, 10, seed=0)["values"].shape
        (3, 10, 1)
    """
    n_series = check_positive_int(n_series, "n_series")
    rng = rng_from(seed)
    t = time_grid(n_times, t_end, times, irregular, rng)
    start = (
        rng.choice([-1.0, 1.0], size=(n_series, 1))
        if x0 is None
        else np.full((n_series, 1), float(x0))
    )
    values = euler_maruyama(lambda x: x - x**3, lambda x: noise, start, t, dt, rng)
    return make_dataset(
        values,
        t,
        channel=["x"],
        attrs={
            "name": "double well",
            "source": "neuralsde.datasets.simulate_double_well (Euler-Maruyama, fine step dt)",
            "licence": "MIT (synthetic)",
            "sde": "dX = (X - X^3) dt + noise dW",
            "noise": noise,
            "dt": dt,
        },
    )
