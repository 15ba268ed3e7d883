"""Exact inversion of the probability-flow ODE and of the reverse SDE: data to the noise (and
auxiliary state) from which sampling reproduces it.

Two algebraically reversible schemes, both carrying a pair ``(y, z)`` and undone step by step
from ``(x_0, x_0)``, so that the forward steps map ``(noise, aux)`` back to ``x_0`` up to
floating-point rounding, whatever the step size:

* ``"reversible_heun"`` (McCallum & Foster; Kidger et al. 2021, the scheme of the core's
  ``reversible_heun`` and reversible adjoint) on the probability flow ``f`` on the sampler's
  knots: ``z_1 = 2 y_0 - z_0 + f(z_0) h``, ``y_1 = y_0 + (f(z_0) + f(z_1)) h / 2``;
  ``"reversible_heun_sde"``: the same on the reverse SDE in Stratonovich form, with ``g dW``
  added to both (``g`` at the step's start in ``z``, the mean of both ends in ``y``).
* ``"rex"`` / ``"rex_sde"``: the Rex construction (Blasingame & Liu 2025): McCallum and
  Foster's coupling

      y_1 = zeta y_0 + (1 - zeta) z_0 + Psi(rho_0, z_0),  z_1 = z_0 - Psi_back(rho_1, y_1),

  around the exponential integrator's first-order step written where it is an Euler step. In
  ``x_hat = x / alpha``, ``s = sigma / alpha = e^{-lambda}``, the probability flow is
  ``d(x_hat / s) = D d(1 / s)`` and the reverse SDE ``d(x_hat / s^2) = D d(1 / s^2) + dB``
  with ``B`` a standard Brownian motion in ``rho = 1 / s^2`` (Ito: the integrating factor
  takes the linear part exactly). So with ``Y = x / sigma, rho = e^lambda`` (ODE) or
  ``Y = x alpha / sigma^2, rho = e^{2 lambda}`` (SDE), ``Psi = D(Y) (rho_1 - rho_0) + dB``
  (DDIM, resp. SDE-DPM-Solver-1) and ``Psi_back = -D(Y) (rho_1 - rho_0) - dB`` at the other
  end. ``zeta = 0.999`` (McCallum & Foster's damping of the coupling). The increments ``dB``
  come from a Brownian tree of ``seed`` queried on the knots: regenerated, never stored.

  The coupling's determinant is ``zeta`` per step, so besides the flow it carries a second,
  parasitic mode whose gain is ``zeta`` over the flow's. Run backwards from ``(x_0, x_0)``
  that mode grows by the forward flow's gain in Rex's variables, which for the reverse SDE
  is ~``(alpha / sigma^2)(eps) / (alpha / sigma^2)(T)``: Rex's SDE inversion returns to
  rounding times that gain (``benchmarks/diffusion_inversion.py``: noise of RMS 1e9 and
  round trips of 1e-8 in float64 on OU windows), where reversible Heun's SDE inversion,
  whose discrete flow contracts less, keeps 1e-12.

``method="ddim"`` is the naive DDIM inversion (each step run upwards with the data
prediction at its start), kept as the baseline: it does not return exactly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from neuralsde.core.transforms import reverse
from neuralsde.data.validation import as_float_tensor
from neuralsde.diffusion.arguments import CheckedScore, check_steps
from neuralsde.diffusion.schedules import schedule_times

__all__ = ["INVERSION_METHODS", "Inversion", "invert", "replay"]

INVERSION_METHODS = ("reversible_heun", "reversible_heun_sde", "rex", "rex_sde", "ddim")
STOCHASTIC = ("reversible_heun_sde", "rex_sde")
ZETA = 0.999  # Rex's coupling


class Inversion(NamedTuple):
    """What :func:`invert` returns and ``sample(..., x_T=inversion)`` replays: the noise
    ``(B, *event)`` at ``T``, the auxiliary state (reversible Heun's ``z``; None for DDIM),
    the method, the knots (forward times) and the dtype of the data. The reversible schemes
    keep their pair in float64 whatever the model's dtype (the network runs in its own), so
    that the replay meets the inverted data to the data dtype's rounding."""

    noise: torch.Tensor
    aux: torch.Tensor | None
    method: str
    knots: torch.Tensor
    dtype: torch.dtype
    seed: int | None = None  # the Brownian path of the SDE, regenerated (not stored)


def _reverse(score_model, sde, knots, shape, stochastic=False):
    """The probability flow, or the reverse SDE in Stratonovich form (reversible Heun's)."""
    return reverse(sde, CheckedScore(score_model), probability_flow=not stochastic, shape=shape,
                   eps=float(knots[-1]), path=knots.numpy(), sde_type="stratonovich")  # fmt: skip


def _heun_terms(rev, seed, size):
    """Reversible Heun's ``f(i, y, dtype)`` (in ``dtype``, returned in float64) and, on the
    reverse SDE, ``g(i)`` (additive) and the increments ``dW_i`` of a Brownian tree of
    ``seed`` on the knots' reverse time (regenerated, never stored)."""
    u = torch.from_numpy(rev.knots)

    def f(i, y, dtype):
        return rev.f(u[i].to(dtype), y.to(dtype)).double()

    if seed is None:
        return f, None, None
    from neuralsde.core.brownian import BrownianTree

    tree = BrownianTree(0.0, float(u[-1]), size, generator=torch.Generator().manual_seed(seed))
    ones = torch.ones(size, dtype=torch.float64)
    return f, lambda i: rev.g(u[i], ones).double(), lambda i: tree(float(u[i]), float(u[i + 1]))


class _Rex:
    """Rex's variables on the knots (module docstring): ``Y = c_i x``, the clock ``rho_i``,
    the data prediction ``D_i(Y)`` in the model's dtype, and the increments ``dB_i``."""

    def __init__(self, rev, stochastic, seed, size, dtype):
        a, s = rev.knot_alpha, rev.knot_sigma
        self.c = a / s**2 if stochastic else 1 / s
        self.rho = (a / s) ** (2 if stochastic else 1)
        self.rev, self.dtype, self.db = rev, dtype, None
        if stochastic:
            from neuralsde.core.brownian import BrownianTree

            u = rev.knots
            tree = BrownianTree(0.0, float(u[-1]), size,
                                generator=torch.Generator().manual_seed(seed))  # fmt: skip
            # a Brownian increment in rho from one over the knots' reverse time
            self.db = lambda i: (
                tree(float(u[i]), float(u[i + 1])).double()
                * math.sqrt((self.rho[i + 1] - self.rho[i]) / (u[i + 1] - u[i]))
            )

    def psi(self, i, j, y):
        """``D_i(y) (rho_j - rho_i)``: the drift part of ``Psi`` (``j = i + 1``) or of
        ``Psi_back`` (``j = i - 1``)."""
        x = (y / float(self.c[i])).to(self.dtype)
        return self.rev.data_at_knot(i, x).double() * float(self.rho[j] - self.rho[i])

    def noise(self, i):
        return 0.0 if self.db is None else self.db(i)


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
    rev = _reverse(score_model, sde, knots, shape, method == "reversible_heun_sde")
    n = len(knots) - 1
    if method == "ddim":
        for i in range(n, 0, -1):  # from t_i up to t_{i-1}, with D at the start
            y = _ddim_step(rev, i, i - 1, y)
        return Inversion(y.reshape(x0.shape), None, method, knots, dtype)
    if method.startswith("reversible_heun"):
        heun_seed = seed if method == "reversible_heun_sde" else None
        y, z = _heun_back(rev, y.double(), dtype, _heun_terms(rev, heun_seed, tuple(y.shape)))
    else:
        rex = _Rex(rev, method == "rex_sde", seed, tuple(y.shape), dtype)
        y = z = y.double() * float(rex.c[n])
        for i in range(n - 1, -1, -1):  # undo step i -> i + 1
            w = rex.noise(i)
            z = z + rex.psi(i + 1, i, y) - w  # z_i = z_{i+1} + Psi_back(rho_{i+1}, y_{i+1})
            y = (y - (1 - ZETA) * z - rex.psi(i, i + 1, z) - w) / ZETA
        y, z = y / float(rex.c[0]), z / float(rex.c[0])
    return Inversion(y.reshape(x0.shape), z.reshape(x0.shape), method, knots, dtype,
                     seed if method in STOCHASTIC else None)  # fmt: skip


def _heun_back(rev, y, dtype, terms):
    """Reversible Heun's steps undone from ``(y, y)`` at the last knot: ``(y, z)`` at T."""
    f, g, dw = terms
    h = torch.diff(torch.from_numpy(rev.knots))
    n = len(h)
    z, fz = y, f(n, y, dtype)
    for i in range(n, 0, -1):
        hi = float(h[i - 1])
        z_prev = 2 * y - z - fz * hi
        if dw is not None:  # additive noise: g at both ends of the step
            w, g0, g1 = dw(i - 1).double(), g(i - 1), g(i)
            z_prev = z_prev - g1 * w
        f_prev = f(i - 1, z_prev, dtype)
        y = y - 0.5 * (f_prev + fz) * hi
        if dw is not None:
            y = y - 0.5 * (g0 + g1) * w
        z, fz = z_prev, f_prev
    return y, z


def _heun_forward(rev, y, z, dtype, terms):
    """Reversible Heun's steps from ``(y, z)`` at T: ``y`` at the last knot."""
    f, g, dw = terms
    h = torch.diff(torch.from_numpy(rev.knots))
    fz = f(0, z, dtype)
    for i in range(len(h)):
        hi = float(h[i])
        z_next = 2 * y - z + fz * hi
        if dw is not None:
            w, g0, g1 = dw(i).double(), g(i), g(i + 1)
            z_next = z_next + g0 * w
        f_next = f(i + 1, z_next, dtype)
        y = y + 0.5 * (fz + f_next) * hi
        if dw is not None:
            y = y + 0.5 * (g0 + g1) * w
        z, fz = z_next, f_next
    return y


def _ddim_step(rev, i, j, y):
    """DDIM from knot ``i`` to knot ``j`` with the data prediction at knot ``i``."""
    a_i, s_i = float(rev.knot_alpha[i]), float(rev.knot_sigma[i])
    a_j, s_j = float(rev.knot_alpha[j]), float(rev.knot_sigma[j])
    d = rev.data_prediction(torch.tensor(rev.knots[i], dtype=y.dtype), y)
    return (s_j / s_i) * y + (a_j - a_i * s_j / s_i) * d


def replay(score_model, sde, inversion: Inversion) -> torch.Tensor:
    """Sample from an :class:`Inversion` with its own method and knots (no final denoising:
    the result is the state at ``t = eps`` that was inverted)."""
    knots, x, dtype = inversion.knots, inversion.noise, inversion.dtype
    y = x.reshape(x.shape[0], -1)
    method = inversion.method
    rev = _reverse(score_model, sde, knots, tuple(x.shape[1:]), method == "reversible_heun_sde")
    n = len(knots) - 1
    if method == "ddim":
        for i in range(n):
            y = _ddim_step(rev, i, i + 1, y)
        return y.reshape(x.shape)
    z = inversion.aux.reshape(y.shape).double()
    y = y.double()
    if method.startswith("reversible_heun"):
        seed = inversion.seed if method == "reversible_heun_sde" else None
        y = _heun_forward(rev, y, z, dtype, _heun_terms(rev, seed, tuple(y.shape)))
        return y.reshape(x.shape).to(dtype)
    rex = _Rex(rev, inversion.method == "rex_sde", inversion.seed, tuple(y.shape), dtype)
    y, z = y * float(rex.c[0]), z * float(rex.c[0])
    for i in range(n):
        w = rex.noise(i)
        y = ZETA * y + (1 - ZETA) * z + rex.psi(i, i + 1, z) + w
        z = z - rex.psi(i + 1, i, y) + w  # z_{i+1} = z_i - Psi_back(rho_{i+1}, y_{i+1})
    return (y / float(rex.c[n])).reshape(x.shape).to(dtype)
