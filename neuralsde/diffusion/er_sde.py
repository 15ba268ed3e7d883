"""ER-SDE solvers (Cui et al. 2023, "Elucidating the solution space of extended reverse-time
SDE for diffusion models"), orders 1 to 3, as a core method on a schedule's knots.

The extended reverse-time SDE with noise-scale function ``phi`` has, in EDM's variables
(``x_hat = x / alpha``, ``s = sigma / alpha``) and with the data prediction ``D`` expanded
around the step's start ``s_0``, the step to ``s_1``

    x_hat_1 = r x_hat_0 + (1 - r) D_0
              + [(s_1 - s_0) + phi(s_1) int_{s_1}^{s_0} ds / phi(s)] D'
              + [(s_1 - s_0)^2 / 2 + phi(s_1) int_{s_1}^{s_0} (s - s_0) / phi(s) ds] D''
              + sqrt(s_1^2 - s_0^2 r^2) z,       r = phi(s_1) / phi(s_0),

with ``D', D''`` the first and (twice the) second divided differences of past data
predictions in ``s`` (order 2 keeps ``D'``, order 3 both). The integrals are computed by
Gauss-Legendre quadrature in ``log s``. ``phi(s) = s`` gives DDIM (no noise), ``phi(s) = s^2``
the reverse SDE with the data prediction frozen over the step (the ancestral sampler); the
default ``phi(s) = s (e^{s^0.3} + 10)`` is the paper's.
"""

from __future__ import annotations

import math

import numpy as np

from neuralsde.core.methods import register
from neuralsde.diffusion.knots import KnotMethod, quad


def default_phi(s):
    """ER-SDE's default noise-scale function ``s (e^{s^0.3} + 10)`` (Cui et al. 2023)."""
    return s * (np.exp(s**0.3) + 10.0)


def _in_log(fn):
    return lambda v: fn(np.exp(v)) * np.exp(v)


@register
class ERSDE(KnotMethod):
    """ER-SDE-Solver (see the module docstring). Options ``order`` (1, 2 or 3; default 3) and
    ``phi`` (a function of numpy arrays; default :func:`default_phi`). One evaluation per
    step."""

    name = "er_sde"
    strong_order = 0.5
    option_names = ("order", "phi")

    def __init__(self, sde, options=None):
        super().__init__(sde, options)
        self.order = self.options.get("order", 3)
        if self.order not in (1, 2, 3):
            raise ValueError(f"method='er_sde': order must be 1, 2 or 3; got {self.order!r}")
        self.history = self.order - 1
        self.phi = self.options.get("phi", default_phi)
        if not callable(self.phi):
            raise TypeError(f"method='er_sde': phi must be callable; got {type(self.phi)!r}")

    def step(self, t0, t1, dt, y0, inc, state):
        k0, k1 = self.knots(t0)
        d0, hist = self.denoised(k0, y0, state), state[1]
        s0, s1, phi = k0.s, k1.s, self.phi
        p0, p1 = float(phi(s0)), float(phi(s1))
        r = p1 / p0
        x = (r / k0.alpha) * y0 + (1 - r) * d0
        order = min(self.order, len(hist) + 1)
        if order >= 2:
            s_1, d_1 = hist[0]
            dd = (d0 - d_1) / (s0 - s_1)
            inv = quad(_in_log(lambda s: 1.0 / phi(s)), math.log(s1), math.log(s0))
            x = x + ((s1 - s0) + p1 * inv) * dd
            if order == 3:
                s_2, d_2 = hist[1]
                dd2 = 2 * (dd - (d_1 - d_2) / (s_1 - s_2)) / (s0 - s_2)
                lin = quad(_in_log(lambda s: (s - s0) / phi(s)), math.log(s1), math.log(s0))
                x = x + (0.5 * (s1 - s0) ** 2 + p1 * lin) * dd2
        var = s1**2 - (s0 * r) ** 2
        if var > 0:
            x = x + math.sqrt(var) * self.normal(inc, dt)
        return k1.alpha * x, None, (None, self.remember(hist, s0, d0))
