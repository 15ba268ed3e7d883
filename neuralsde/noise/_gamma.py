"""Regularised incomplete gamma functions differentiable in both arguments.

``torch.special.gammainc`` has no gradient in its first argument ``a``; the Markov fBM
coefficients need one (they depend on the Hurst index through ``a = H + 1/2``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

# Gauss-Laguerre nodes for int_0^inf phi(u) e^{-u} du; phi smooth when x is large.
_LAG_X, _LAG_W = np.polynomial.laguerre.laggauss(48)
_SERIES_MAX_X = 40.0


def _series_terms(a: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Terms ``w_n = x^(a+n) e^-x / Gamma(a+n+1)`` of ``P(a, x) = sum_n w_n`` (x <= 40)."""
    n_terms = int(_SERIES_MAX_X + 10.0 * math.sqrt(_SERIES_MAX_X) + 40)
    n = torch.arange(n_terms, dtype=a.dtype, device=a.device)
    an = a.unsqueeze(-1) + n
    logx = torch.log(x.clamp_min(torch.finfo(x.dtype).tiny)).unsqueeze(-1)
    w = torch.exp(an * logx - x.unsqueeze(-1) - torch.lgamma(an + 1.0))
    return w, an


def _dp_da_series(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # d/da sum_n x^(a+n) e^-x / Gamma(a+n+1) = sum_n w_n (log x - digamma(a+n+1)).
    w, an = _series_terms(a, x)
    logx = torch.log(x.clamp_min(torch.finfo(x.dtype).tiny)).unsqueeze(-1)
    d = (w * (logx - torch.digamma(an + 1.0))).sum(-1)
    return torch.where(x > 0, d, torch.zeros_like(d))


def _dq_da_laguerre(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # Gamma(a, x) = e^-x int_0^inf (x+u)^(a-1) e^-u du; differentiate under the integral.
    u = torch.as_tensor(_LAG_X, dtype=a.dtype, device=a.device)
    w = torch.as_tensor(_LAG_W, dtype=a.dtype, device=a.device)
    xu = x.unsqueeze(-1) + u
    log_xu = torch.log(xu)
    base = torch.exp(
        (a.unsqueeze(-1) - 1.0) * log_xu - x.unsqueeze(-1) - torch.lgamma(a).unsqueeze(-1)
    )
    q = (w * base).sum(-1)
    dlog_upper = (w * base * log_xu).sum(-1)
    return dlog_upper - q * torch.digamma(a)


def dgammainc_da(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``d P(a, x) / d a`` for the regularised lower incomplete gamma ``P``.

    Series ``P = sum_n x^(a+n) e^-x / Gamma(a+n+1)`` for ``x <= 40``; for larger ``x``,
    ``dP/da = -dQ/da`` from Gauss-Laguerre quadrature of ``Gamma(a, x)``.
    """
    a, x = torch.broadcast_tensors(a, x)
    small = x <= _SERIES_MAX_X
    xs = torch.where(small, x, torch.zeros_like(x))
    xl = torch.where(small, torch.full_like(x, 2 * _SERIES_MAX_X), x)
    return torch.where(small, _dp_da_series(a, xs), -_dq_da_laguerre(a, xl))


def _dp_dx(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    logx = torch.log(x.clamp_min(torch.finfo(x.dtype).tiny))
    d = torch.exp((a - 1.0) * logx - x - torch.lgamma(a))
    return torch.where(x > 0, d, torch.zeros_like(d))


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    for i, s in enumerate(shape):
        if s == 1 and grad.shape[i] != 1:
            grad = grad.sum(i, keepdim=True)
    return grad


class _GammaInc(torch.autograd.Function):
    """``P(a, x)`` (``upper=False``) or ``Q(a, x) = 1 - P`` with gradients in ``a`` and ``x``."""

    @staticmethod
    def forward(ctx, a, x, upper):
        ctx.save_for_backward(a, x)
        ctx.upper = upper
        return torch.special.gammaincc(a, x) if upper else torch.special.gammainc(a, x)

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        sign = -1.0 if ctx.upper else 1.0
        ga = gx = None
        if ctx.needs_input_grad[0]:
            ga = _reduce_to(sign * grad * dgammainc_da(a, x), a.shape)
        if ctx.needs_input_grad[1]:
            gx = _reduce_to(sign * grad * _dp_dx(*torch.broadcast_tensors(a, x)), x.shape)
        return ga, gx, None


def gammainc(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Regularised lower incomplete gamma ``P(a, x)``, differentiable in ``a`` and ``x``.

    Example:
        >>> a = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
        >>> gammainc(a, torch.tensor(2.0, dtype=torch.float64)).backward()
        >>> bool(a.grad < 0)
        True
    """
    return _GammaInc.apply(a, x, False)


def gammaincc(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Regularised upper incomplete gamma ``Q(a, x) = 1 - P(a, x)``, differentiable in both."""
    return _GammaInc.apply(a, x, True)


def exp_gammaincc(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``exp(x) Q(a, x)``, stable for large ``x`` (Gauss-Laguerre there), differentiable.

    For ``x > 40``: ``exp(x) Q(a, x) = Gamma(a)^-1 int_0^inf (x+u)^(a-1) e^-u du``.
    """
    a, x = torch.broadcast_tensors(a, x)
    small = x <= _SERIES_MAX_X
    xs = torch.where(small, x, torch.zeros_like(x))
    xl = torch.where(small, torch.full_like(x, 2 * _SERIES_MAX_X), x)
    u = torch.as_tensor(_LAG_X, dtype=a.dtype, device=a.device)
    w = torch.as_tensor(_LAG_W, dtype=a.dtype, device=a.device)
    large = (w * torch.exp((a.unsqueeze(-1) - 1.0) * torch.log(xl.unsqueeze(-1) + u))).sum(-1)
    large = large * torch.exp(-torch.lgamma(a))
    return torch.where(small, torch.exp(xs) * gammaincc(a, xs), large)
