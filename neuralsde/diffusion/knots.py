"""The base of the diffusion samplers that are core methods: steppers that read a schedule's
knots (the forward marginal's ``alpha, sigma`` there) and the data prediction, and take their
noise from the core's Brownian source.

They integrate the reverse process of a Gaussian forward SDE handed to ``neuralsde.solve`` as a
:class:`~neuralsde.diffusion.reverse.ReverseSDE` with ``probability_flow=True`` on the grid of
its knots (``solve(..., grid=rev.knots)``): the drift ``solve`` evaluates at the start gives
the first data prediction, so no evaluation is wasted; stochastic samplers draw
``z = dW / sqrt(du)`` from the Brownian increment of each step, so with a Brownian interval
(``solve(bm=...)``) the same seed gives the same path however the knots fall. They register
with the core's method registry when ``neuralsde.diffusion`` is imported; the core knows
nothing of them.

Notation, in EDM's variables (any ``alpha_t``, ``sigma_t``): ``x_hat = x / alpha``,
``s = sigma / alpha`` (the EDM noise level), ``lambda = -log s``, ``h = lambda_1 - lambda_0``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neuralsde.core.methods import Method

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)


def quad(fn, a: float, b: float) -> float:
    """``int_a^b fn(x) dx`` by 24-point Gauss-Legendre (``fn`` takes a numpy array)."""
    x = 0.5 * (b - a) * _GL_NODES + 0.5 * (b + a)
    return float(0.5 * (b - a) * np.dot(_GL_WEIGHTS, fn(x)))


class Knot(tuple):
    """``(i, alpha, sigma, s, lam)`` of knot ``i`` (floats; ``s = sigma / alpha``,
    ``lam = -log s``)."""

    __slots__ = ()

    def __new__(cls, i, alpha, sigma):
        s = sigma / alpha
        return super().__new__(cls, (i, alpha, sigma, s, -math.log(s)))

    i = property(lambda self: self[0])
    alpha = property(lambda self: self[1])
    sigma = property(lambda self: self[2])
    s = property(lambda self: self[3])
    lam = property(lambda self: self[4])


class KnotMethod(Method):
    """A sampler stepping from knot to knot of a :class:`ReverseSDE` probability flow.

    State: ``(D, history)``: the data prediction at the step's start when already known
    (else None), and the past ``(lam, D)`` pairs a multistep method keeps (newest first).
    """

    sde_types = ("ito", "stratonovich")
    noise_types = ("diagonal",)
    strong_order = 1.0
    adaptive = False
    requires = ("knot_alpha", "knot_sigma", "data_at_knot", "data_from_drift", "knot_index",
                "knots")  # fmt: skip
    history = 0  # past data predictions a multistep method keeps

    def init(self, t0, t1, y0, fg0):
        f0, g0 = fg0
        if bool((g0 != 0).any()):
            raise ValueError(
                f"method={self.name!r} steps the reverse process itself from the data "
                f"prediction: hand it the probability flow (reverse(..., "
                f"probability_flow=True)), whose diffusion is zero"
            )
        self.n = len(self.sde.knots) - 1
        self._next = 0
        return self.sde.data_from_drift(t0, y0, f0), ()

    def knots(self, t0) -> tuple[Knot, Knot]:
        """The knots at the step's ends: the next ones in order (steps come knot after knot),
        found by the time when they do not."""
        u, knots = float(t0), self.sde.knots
        i = self._next
        if i >= self.n or abs(u - knots[i]) > 1e-6 * (1 + abs(knots[-1])):
            i = self.sde.knot_index(u)
        self._next = i + 1
        a, s = self.sde.knot_alpha, self.sde.knot_sigma
        return Knot(i, float(a[i]), float(s[i])), Knot(i + 1, float(a[i + 1]), float(s[i + 1]))

    def is_last(self, k1: Knot) -> bool:
        return k1.i == self.n

    def denoised(self, k: Knot, y0, state):
        """The data prediction at the step's start: carried in ``state``, else evaluated."""
        d = state[0] if state is not None else None
        return self.sde.data_at_knot(k.i, y0) if d is None else d

    def normal(self, inc, dt) -> torch.Tensor:
        """The step's standard normal draw ``dW / sqrt(du)``."""
        return inc.W / math.sqrt(dt)

    def remember(self, history, lam, d):
        return ((lam, d),) + tuple(history)[: max(self.history - 1, 0)]
