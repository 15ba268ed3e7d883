"""Backward filtering, forward guiding: a posterior that sees every later observation.

The prior is the Euler chain ``s_{k+1} = s_k + f(s_k) dt_k + G(s_k) dW_k`` (``dW_k ~ N(0, dt_k
I)``) of an SDE on a per-series grid, observed as ``y_k = W s_k + b + N(0, diag R)`` where
observed. A linear auxiliary chain (``f`` and ``G`` linearised once, at a reference state) has
a Gaussian backward filter: ``h_k(s) = p(y_k, ..., y_T | s_k = s) ~ exp(-s'H_k s/2 + F_k's)``,
computed from the last grid point backwards (information form, so ``H = 0`` after the last
observation is fine). The guided chain draws each increment from

    q(dW_k | s_k) ~ N(dW_k; 0, dt_k I) h_{k+1}(s_k + f(s_k) dt_k + G(s_k) dW_k),

a Gaussian with precision ``P = I / dt + G'H G`` and mean ``P^-1 G'(F - H m)``, ``m = s_k + f
dt`` (van der Meulen & Schauer's guided proposals, in discrete time). Its KL to the prior's
increment is closed form, so ``E_q[log p(y | s)] - KL`` is an ELBO of the Euler chain; when the
prior is itself linear with constant noise it is the exact log-likelihood for every sample, and
its gradient is the likelihood's. The last step into an observation shrinks its variance, which
no drift correction of a continuous-time posterior can do.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from neuralsde.core.keyed import normal


class Linear(NamedTuple):
    """The auxiliary chain: drift ``J s + c`` and noise ``G`` (constant). ``J: (n, n)``, ``c:
    (n,)``, ``G: (n, m)``."""

    J: torch.Tensor
    c: torch.Tensor
    G: torch.Tensor


def drift_and_noise(sde, t, s: torch.Tensor):
    """``f (B, n)`` and ``G (B, n, m)`` of ``sde`` at states ``s (B, n)``, any noise type."""
    if getattr(sde, "batched_time", False):
        t = t.expand(s.shape[0]) if t.dim() == 0 else t
    f, g = sde.f_and_g(t, s)
    if sde.noise_type == "diagonal":
        g = torch.diag_embed(g)
    elif g.dim() == 2:  # scalar noise given as (B, n)
        g = g.unsqueeze(-1)
    return f, g


def linearise(sde, t, s_ref: torch.Tensor) -> Linear:
    """``f(s) ~ f(s_ref) + J (s - s_ref)``, ``G ~ G(s_ref)`` at one state ``s_ref: (n,)``."""

    def drift(s):
        return drift_and_noise(sde, t, s.unsqueeze(0))[0][0]

    J = torch.autograd.functional.jacobian(drift, s_ref, create_graph=torch.is_grad_enabled())
    f, G = drift_and_noise(sde, t, s_ref.unsqueeze(0))
    return Linear(J, f[0] - J @ s_ref, G[0])


def backward_filter(aux: Linear, ts, y, W, bias, R):
    """Information-form backward filter of the auxiliary chain on per-series grids.

    Args:
        aux: :class:`Linear`.
        ts: ``(T, B)`` increasing times per series.
        y: ``(T, B, C)`` observations on the grids, NaN where there is none.
        W, bias, R: observation ``y = W s + bias + N(0, diag R)``: ``(C, n)``, ``(C,)``, ``(C,)``.

    Returns:
        ``H: (T, B, n, n)``, ``F: (T, B, n)``; ``h_k`` includes the observation at ``k``.

    Example:
        A Brownian motion observed once, ``y = s(1) + N(0, 1) = 2``: from ``s(0)``, ``y ~ N(s(0),
        2)``, so ``h_0(s) ~ exp(-(2 - s)^2 / 4)``: ``H = 1/2``, ``F = 1``.

        >>> one = torch.ones(1, 1, dtype=torch.float64)
        >>> aux = Linear(0 * one, torch.zeros(1, dtype=torch.float64), one)
        >>> ts = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
        >>> y = torch.tensor([[[float("nan")]], [[2.0]]], dtype=torch.float64)
        >>> H, F = backward_filter(aux, ts, y, one, torch.zeros(1, dtype=torch.float64), one[0])
        >>> H[0].item(), F[0].item()
        (0.5, 1.0)
    """
    T, B = ts.shape
    n = W.shape[1]
    dtype = W.dtype
    eye = torch.eye(n, dtype=dtype)
    Q1 = aux.G @ aux.G.T
    mask = torch.isfinite(y)
    prec = mask / R  # (T, B, C)
    resid = torch.where(mask, y - bias, torch.zeros((), dtype=dtype))
    H = torch.zeros(B, n, n, dtype=dtype)
    F = torch.zeros(B, n, dtype=dtype)
    Hs, Fs = [None] * T, [None] * T
    for k in range(T - 1, -1, -1):
        H = H + torch.einsum("ci,bc,cj->bij", W, prec[k], W)
        F = F + (prec[k] * resid[k]) @ W
        Hs[k], Fs[k] = H, F
        if k:
            dt = (ts[k] - ts[k - 1]).to(dtype)[:, None, None]
            phi = eye + aux.J * dt
            A = torch.linalg.solve(eye + H @ (Q1 * dt), torch.cat([H, F.unsqueeze(-1)], -1))
            KH, AF = A[..., :n], A[..., n]
            v = AF - (KH @ (aux.c * dt[..., 0]).unsqueeze(-1))[..., 0]
            F = (phi.transpose(-1, -2) @ v.unsqueeze(-1))[..., 0]
            H = phi.transpose(-1, -2) @ KH @ phi
            H = 0.5 * (H + H.transpose(-1, -2))
    return torch.stack(Hs), torch.stack(Fs)


def gaussian_draw(L: torch.Tensor, rhs: torch.Tensor, eps: torch.Tensor):
    """Mean ``P^-1 rhs`` and a draw ``mean + L^-T eps`` of ``N(P^-1 rhs, P^-1)`` from the
    Cholesky factor ``L`` of the precision ``P``: ``L (B, m, m)``, ``rhs (B, m, 1)``, ``eps (B,
    m)`` standard normals -> ``(B, m)`` each."""
    mu = torch.cholesky_solve(rhs, L)[..., 0]
    noise = torch.linalg.solve_triangular(L.transpose(-1, -2), eps.unsqueeze(-1), upper=True)
    return mu, mu + noise[..., 0]


def guided_chain(sde, s0: torch.Tensor, ts, H, F, generator=None, rows=None):
    """Guided Euler chain from ``s0 (B, n)`` on ``ts (T, B)`` with the filter ``H, F``
    (``(T, B', n, n)``, ``(T, B', n)``; row ``rows[i]`` of the filter guides chain row ``i``,
    default ``rows = arange(B)``: several draws per series share one filter).

    Returns the states ``(T, B, n)`` and ``log q - log p`` of the drawn increments ``(B,)``
    (an unbiased estimate of their KL, exact for every draw when the filter is).
    """
    s, states = s0, [s0]
    kl = torch.zeros(s0.shape[0], dtype=s0.dtype)
    m = None
    for k in range(ts.shape[0] - 1):
        dt = (ts[k + 1] - ts[k]).to(s0.dtype)[:, None]
        f, G = drift_and_noise(sde, ts[k].to(s0.dtype), s)
        mean = s + f * dt
        Gt = G.transpose(-1, -2)
        if m is None:
            m = G.shape[-1]
            eye = torch.eye(m, dtype=s0.dtype)
        Hk, Fk = (H[k + 1], F[k + 1]) if rows is None else (H[k + 1][rows], F[k + 1][rows])
        L = torch.linalg.cholesky(eye / dt[..., None] + Gt @ Hk @ G)
        eps = normal((s.shape[0], m), generator, dtype=s0.dtype)
        rhs = Gt @ (Fk - (Hk @ mean.unsqueeze(-1))[..., 0]).unsqueeze(-1)
        dW = gaussian_draw(L, rhs, eps)[1]
        # log q(dW) - log p(dW) at the draw: unbiased for the KL, and zero-variance in the
        # ELBO when the guide is exact.
        logdet_p = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        kl = kl + 0.5 * (logdet_p - (eps * eps).sum(-1) + (dW * dW).sum(-1) / dt[:, 0]
                         + m * torch.log(dt[:, 0]))  # fmt: skip
        s = mean + (G @ dW.unsqueeze(-1))[..., 0]
        states.append(s)
    return torch.stack(states), kl


__all__ = ["Linear", "backward_filter", "drift_and_noise", "gaussian_draw", "guided_chain",
           "linearise"]  # fmt: skip
