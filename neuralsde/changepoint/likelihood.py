"""Transition log-densities of an Euler-discretised SDE and the Girsanov log-likelihood ratio.

These are the two estimators the change-point score is built from (see ``detector.py``).
"""

from __future__ import annotations

import math

import torch


def euler_log_density(
    dy: torch.Tensor, drift: torch.Tensor, sigma: torch.Tensor, dt: torch.Tensor
) -> torch.Tensor:
    """Log-density of one Euler-Maruyama transition of ``dy = f dt + diag(sigma) dW``.

    ``log N(dy; f dt, diag(sigma^2) dt)`` summed over channels. For a gap ``dt`` that is small
    against the drift's time scale this is the exact transition density to first order.

    Shapes: ``dy, drift: (..., state)``; ``sigma``: broadcastable to ``(..., state)``;
    ``dt: (...)``. Returns ``(...)``.

    Example:
        >>> import torch
        >>> zero = torch.zeros(3, 1)
        >>> lp = euler_log_density(zero, zero, torch.ones(1), torch.ones(3))
        >>> torch.allclose(lp, torch.full((3,), -0.5 * math.log(2 * math.pi)))
        True
    """
    var = sigma.square() * dt.unsqueeze(-1)
    resid = dy - drift * dt.unsqueeze(-1)
    return -0.5 * (resid.square() / var + torch.log(2 * math.pi * var)).sum(-1)


def girsanov_log_ratio(
    dy: torch.Tensor,
    drift1: torch.Tensor,
    drift2: torch.Tensor,
    sigma: torch.Tensor,
    dt: torch.Tensor,
) -> torch.Tensor:
    """Discretised Girsanov log-likelihood ratio ``log dP1/dP2`` of one step, equal diffusions.

    ``(f1 - f2)^T (g g^T)^{-1} dy - 1/2 (f1^T (g g^T)^{-1} f1 - f2^T (g g^T)^{-1} f2) dt``
    with ``g = diag(sigma)``. It equals the difference of the two Euler transition
    log-densities exactly when both share ``sigma`` (the Gaussian normalisers cancel).

    Shapes: ``dy, drift1, drift2: (..., state)``; ``sigma`` broadcastable; ``dt: (...)``.
    Returns ``(...)``.

    Example:
        >>> import torch
        >>> dy, f1, f2 = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
        >>> s, dt = torch.ones(2), torch.full((4,), 0.1)
        >>> a = girsanov_log_ratio(dy, f1, f2, s, dt)
        >>> b = euler_log_density(dy, f1, s, dt) - euler_log_density(dy, f2, s, dt)
        >>> torch.allclose(a, b, atol=1e-5)
        True
    """
    inv = sigma.square().reciprocal()
    dtc = dt.unsqueeze(-1)
    return (
        (drift1 - drift2) * inv * dy - 0.5 * (drift1.square() - drift2.square()) * inv * dtc
    ).sum(-1)
