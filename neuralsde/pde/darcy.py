"""Darcy flow ``-div(a grad u) = f`` on the unit square with ``u = 0`` on the boundary.

A 5-point finite-difference scheme on the ``n x n`` node grid ``x_i = i h``, ``h = 1/(n-1)``,
with face coefficients the arithmetic mean of the two nodes (second order for smooth ``a``),
assembled with ``scipy.sparse`` and solved directly. The coefficient field of the benchmark is
a Gaussian random field with covariance ``(-Laplace + tau^2)^(-alpha)`` thresholded to
``{3, 12}`` (the FNO / DiffusionPDE Darcy data).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

A_LOW, A_HIGH = 3.0, 12.0


def _check_field(name, a, n=None):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 3:
        raise ValueError(f"{name} must be a square (n, n) array with n >= 3; got {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n}, {n}); got {a.shape}")
    return a


def solve_darcy(a, f=1.0) -> np.ndarray:
    """Solve ``-div(a grad u) = f``, ``u = 0`` on the boundary, on the node grid of ``a``.

    ``a: (n, n)`` positive node values; ``f``: a number or an ``(n, n)`` array.
    Returns ``u: (n, n)`` (zero on the boundary rows and columns).

    Example:
        >>> import numpy as np
        >>> u = solve_darcy(np.ones((33, 33)))
        >>> round(float(u.max()), 3)  # -Laplace u = 1 on the unit square: max ~ 0.0737
        0.074
    """
    a = _check_field("a", a)
    n = a.shape[0]
    if not np.all(a > 0):
        raise ValueError(f"a must be positive everywhere; got min {a.min()}")
    f = np.broadcast_to(np.asarray(f, dtype=np.float64), (n, n))
    h = 1.0 / (n - 1)
    m = n - 2
    idx = np.arange(m * m).reshape(m, m)
    ii, jj = np.meshgrid(np.arange(1, n - 1), np.arange(1, n - 1), indexing="ij")
    ae = 0.5 * (a[ii, jj] + a[ii + 1, jj])
    aw = 0.5 * (a[ii, jj] + a[ii - 1, jj])
    an = 0.5 * (a[ii, jj] + a[ii, jj + 1])
    as_ = 0.5 * (a[ii, jj] + a[ii, jj - 1])
    rows, cols, vals = [idx.ravel()], [idx.ravel()], [(ae + aw + an + as_).ravel()]
    for coef, di, dj in ((ae, 1, 0), (aw, -1, 0), (an, 0, 1), (as_, 0, -1)):
        ni, nj = ii + di - 1, jj + dj - 1
        inside = (ni >= 0) & (ni < m) & (nj >= 0) & (nj < m)
        rows.append(idx[inside])
        cols.append(idx[ni[inside], nj[inside]])
        vals.append(-coef[inside])
    mat = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m)
    )
    u = np.zeros((n, n))
    u[1:-1, 1:-1] = spla.spsolve(mat, h * h * f[1:-1, 1:-1].ravel()).reshape(m, m)
    return u


def darcy_residual(a: torch.Tensor, u: torch.Tensor, f: float = 1.0) -> torch.Tensor:
    """Finite-difference residual ``div(a grad u) + f`` at the interior nodes (differentiable).

    ``a, u: (batch, n, n)`` -> ``(batch, n - 2, n - 2)``; zero for the solution of
    :func:`solve_darcy` up to round-off.
    """
    if a.shape != u.shape or a.dim() != 3:
        raise ValueError(
            f"a and u must both be (batch, n, n); got {tuple(a.shape)}, {tuple(u.shape)}"
        )
    n = a.shape[-1]
    h = 1.0 / (n - 1)
    c = a[:, 1:-1, 1:-1]
    ae = 0.5 * (c + a[:, 2:, 1:-1])
    aw = 0.5 * (c + a[:, :-2, 1:-1])
    an = 0.5 * (c + a[:, 1:-1, 2:])
    as_ = 0.5 * (c + a[:, 1:-1, :-2])
    uc = u[:, 1:-1, 1:-1]
    div = (
        ae * (u[:, 2:, 1:-1] - uc)
        - aw * (uc - u[:, :-2, 1:-1])
        + an * (u[:, 1:-1, 2:] - uc)
        - as_ * (uc - u[:, 1:-1, :-2])
    ) / h**2
    return div + f


def gaussian_random_field(
    n: int,
    size: int = 1,
    alpha: float = 2.0,
    tau: float = 3.0,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Samples ``(size, n, n)`` of a periodic GRF with covariance ``(-Laplace + tau^2)^(-alpha)``.

    Spectral synthesis: white noise in Fourier space scaled by
    ``tau^(alpha - 1) (4 pi^2 |k|^2 + tau^2)^(-alpha / 2)`` (the FNO data generator's scaling),
    zero mean mode.
    """
    rng = np.random.default_rng(rng)
    k = np.fft.fftfreq(n, d=1.0 / n)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    sqrt_eig = n * tau ** (alpha - 1) * (4 * np.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha / 2)
    sqrt_eig[0, 0] = 0.0
    noise = rng.standard_normal((size, n, n)) + 1j * rng.standard_normal((size, n, n))
    return np.fft.ifft2(sqrt_eig * noise).real


def threshold_coefficient(field: np.ndarray) -> np.ndarray:
    """``a = 12`` where the field is non-negative, ``3`` elsewhere."""
    return np.where(np.asarray(field) >= 0, A_HIGH, A_LOW)


def _pair(args):
    n, seed = args
    a = threshold_coefficient(gaussian_random_field(n, 1, rng=seed)[0])
    return a, solve_darcy(a)


def darcy_dataset(
    n_samples: int, n: int = 32, seed: int = 0, workers: int = 1, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(a, u)`` training pairs, each ``(n_samples, n, n)`` float32; sample ``k`` uses the
    seed ``(seed, k)`` so the set does not depend on ``workers``.

    Example:
        >>> a, u = darcy_dataset(2, n=16)
        >>> a.shape, sorted(set(a.ravel().tolist())) == [3.0, 12.0]
        ((2, 16, 16), True)
    """
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
    seeds = [np.random.SeedSequence([seed, k]) for k in range(int(n_samples))]
    jobs = [(n, s) for s in seeds]
    if workers > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            pairs = pool.map(_pair, jobs, chunksize=64)
    else:
        it = jobs
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(jobs, desc="darcy")
        pairs = [_pair(j) for j in it]
    a = np.stack([p[0] for p in pairs]).astype(np.float32)
    u = np.stack([p[1] for p in pairs]).astype(np.float32)
    return a, u
