"""Exact inversion of the probability-flow ODE: data to the noise (and auxiliary state) from
which sampling reproduces it.

Reversible Heun (McCallum & Foster; Kidger et al. 2021, the scheme the core's
``reversible_heun`` and reversible adjoint use) carries a pair ``(y, z)``:

    z_1 = 2 y_0 - z_0 + f(z_0) h,    y_1 = y_0 + (f(z_0) + f(z_1)) h / 2,

and each step is undone algebraically (``z_0 = 2 y_1 - z_1 - f(z_1) h``, then ``y_0``), so
walking the sampler's steps backwards from ``(x_0, x_0)`` gives ``(noise, aux)`` that the
forward steps map back to ``x_0`` up to floating-point rounding, whatever the step size.
``f`` is the probability-flow drift of the reverse-time SDE on the sampler's knots.

``method="ddim"`` is the naive DDIM inversion (each step run upwards with the data
prediction at its start), kept as the baseline: it does not return exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from neuralsde.core.transforms import reverse
from neuralsde.data.validation import as_float_tensor
from neuralsde.diffusion.arguments import CheckedScore, check_steps
from neuralsde.diffusion.schedules import schedule_times

__all__ = ["INVERSION_METHODS", "Inversion", "invert", "replay"]

INVERSION_METHODS = ("reversible_heun", "reversible_heun_sde", "ddim")


class Inversion(NamedTuple):
    """What :func:`invert` returns and ``sample(..., x_T=inversion)`` replays: the noise
    ``(B, *event)`` at ``T``, the auxiliary state (reversible Heun's ``z``; None for DDIM),
    the method, the knots (forward times) and the dtype of the data. Reversible Heun keeps
    its pair in float64 whatever the model's dtype (the network runs in its own), so that
    the replay meets the inverted data to the data dtype's rounding."""

    noise: torch.Tensor
    aux: torch.Tensor | None
    method: str
    knots: torch.Tensor
    dtype: torch.dtype
    seed: int | None = None  # the Brownian path of the SDE, regenerated (not stored)


def _drift(score_model, sde, knots, shape, stochastic=False):
    """The reverse-time drift ``f(i, y)`` at knot ``i`` (probability flow, or the reverse SDE
    with its diffusion ``g(i)``), evaluated in ``dtype`` and returned in float64."""
    rev = reverse(sde, CheckedScore(score_model), probability_flow=not stochastic, shape=shape,
                  eps=float(knots[-1]), path=knots.numpy(), sde_type="stratonovich")  # fmt: skip
    u = torch.from_numpy(rev.knots)

    def f(i, y, dtype):
        return rev.f(u[i].to(dtype), y.to(dtype)).double()

    def g(i, y):
        return rev.g(u[i].to(torch.float64), y).double()

    return rev, f, g


def _increments(rev, seed, size):
    """``dW_i`` on the knots from a Brownian tree of ``seed``: regenerated, never stored."""
    from neuralsde.core.brownian import BrownianTree

    u = rev.knots
    tree = BrownianTree(0.0, float(u[-1]), size, generator=torch.Generator().manual_seed(seed))
    return lambda i: tree(float(u[i]), float(u[i + 1]))


def invert(score_model, sde, x0, method: str = "reversible_heun", steps: int = 50,
           schedule="logsnr", eps=None, seed: int = 0) -> Inversion:  # fmt: skip
    """The noise from which sampling ``steps`` steps of ``schedule`` reproduces ``x0: (B,
    *event)`` (a state at ``t = eps``): exactly with ``"reversible_heun"``, approximately with
    the naive ``"ddim"`` inversion. Replay with ``sample(score_model, sde, x0.shape,
    x_T=inversion)``.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE, GaussianMixture, sample
        >>> sde, gm = VPSDE(), GaussianMixture.default_2d()
        >>> x0 = gm.sample(8, torch.Generator().manual_seed(0))
        >>> inv = invert(gm.score_fn(sde), sde, x0, steps=20)
        >>> back = sample(gm.score_fn(sde), sde, x0.shape, x_T=inv)
        >>> bool((back - x0).abs().max() < 1e-10)
        True
    """
    if method not in INVERSION_METHODS:
        raise ValueError(
            f"method: {method!r} is not algebraically reversible; invert with one of "
            f"{list(INVERSION_METHODS)} (ddim is the inexact baseline)"
        )
    steps = check_steps(steps)
    x0 = as_float_tensor(x0, "x0", None, min_dim=2)
    knots = schedule_times(schedule, sde, steps, eps)
    shape, dtype = tuple(x0.shape[1:]), x0.dtype
    y = x0.reshape(x0.shape[0], -1)
    stochastic = method == "reversible_heun_sde"
    rev, f, g = _drift(score_model, sde, knots, shape, stochastic)
    dw = _increments(rev, seed, tuple(y.shape)) if stochastic else None
    h = torch.diff(torch.from_numpy(rev.knots))
    n = len(h)
    if method == "ddim":
        for i in range(n, 0, -1):  # from t_i up to t_{i-1}, with D at the start
            y = _ddim_step(rev, i, i - 1, y)
        return Inversion(y.reshape(x0.shape), None, method, knots, dtype)
    y = y.double()
    z, fz = y, f(n, y, dtype)
    for i in range(n, 0, -1):
        hi = float(h[i - 1])
        z_prev = 2 * y - z - fz * hi
        if stochastic:  # the step's noise terms, g at both ends (additive noise)
            w, g0, g1 = dw(i - 1).double(), g(i - 1, y), g(i, y)
            z_prev = z_prev - g1 * w
        f_prev = f(i - 1, z_prev, dtype)
        y = y - 0.5 * (f_prev + fz) * hi
        if stochastic:
            y = y - 0.5 * (g0 + g1) * w
        z, fz = z_prev, f_prev
    return Inversion(y.reshape(x0.shape), z.reshape(x0.shape), method, knots, dtype,
                     seed if stochastic else None)  # fmt: skip


def _ddim_step(rev, i, j, y):
    """DDIM from knot ``i`` to knot ``j`` with the data prediction at knot ``i``."""
    a_i, s_i = float(rev.knot_alpha[i]), float(rev.knot_sigma[i])
    a_j, s_j = float(rev.knot_alpha[j]), float(rev.knot_sigma[j])
    d = rev.data_prediction(torch.tensor(rev.knots[i], dtype=y.dtype), y)
    return (s_j / s_i) * y + (a_j - a_i * s_j / s_i) * d


def replay(score_model, sde, inversion: Inversion) -> torch.Tensor:
    """Sample from an :class:`Inversion` with its own method and knots (no final denoising:
    the result is the state at ``t = eps`` that was inverted)."""
    knots = inversion.knots
    x = inversion.noise
    shape = tuple(x.shape[1:])
    y = x.reshape(x.shape[0], -1)
    stochastic = inversion.method == "reversible_heun_sde"
    rev, f, g = _drift(score_model, sde, knots, shape, stochastic)
    dw = _increments(rev, inversion.seed, tuple(y.shape)) if stochastic else None
    h = torch.diff(torch.from_numpy(rev.knots))
    n = len(h)
    if inversion.method == "ddim":
        for i in range(n):
            y = _ddim_step(rev, i, i + 1, y)
        return y.reshape(x.shape)
    dtype = inversion.dtype
    y, z = y.double(), inversion.aux.reshape(y.shape).double()
    fz = f(0, z, dtype)
    for i in range(n):
        hi = float(h[i])
        z_next = 2 * y - z + fz * hi
        if stochastic:
            w, g0, g1 = dw(i).double(), g(i, y), g(i + 1, y)
            z_next = z_next + g0 * w
        f_next = f(i + 1, z_next, dtype)
        y = y + 0.5 * (fz + f_next) * hi
        if stochastic:
            y = y + 0.5 * (g0 + g1) * w
        z, fz = z_next, f_next
    return y.reshape(x.shape).to(dtype)
