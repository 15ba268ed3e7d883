"""Stochastic Runge-Kutta methods of Rossler (2010): SRA1 and SRID2 tableaus."""

from __future__ import annotations

import math

from .base import Method, register

# SRA1 (additive noise, strong order 1.5), Rossler 2010, Table 2.
SRA1 = {
    "c0": (0.0, 0.75),
    "c1": (1.0, 0.0),
    "a0": ((), (0.75,)),
    "b0": ((), (1.5,)),
    "alpha": (1 / 3, 2 / 3),
    "beta1": (1.0, 0.0),
    "beta2": (-1.0, 1.0),
}

# SRID2 (diagonal / scalar noise, strong order 1.0), Rossler 2010.
SRID2 = {
    "c0": (0.0, 1.0, 0.5, 0.0),
    "c1": (0.0, 0.25, 1.0, 0.25),
    "a0": ((), (1.0,), (0.25, 0.25), (0.0, 0.0, 0.0)),
    "a1": ((), (0.25,), (1.0, 0.0), (0.0, 0.0, 0.25)),
    "b0": ((), (0.0,), (1.0, 0.5), (0.0, 0.0, 0.0)),
    "b1": ((), (-0.5,), (1.0, 0.0), (2.0, -1.0, 0.5)),
    "alpha": (1 / 6, 1 / 6, 2 / 3, 0.0),
    "beta1": (-1.0, 4 / 3, 2 / 3, 0.0),
    "beta2": (1.0, -4 / 3, 1 / 3, 0.0),
    "beta3": (2.0, -4 / 3, -2 / 3, 0.0),
    "beta4": (-2.0, 5 / 3, -2 / 3, 1.0),
}


@register
class SRK(Method):
    """Stochastic Runge-Kutta (Ito): SRA1 for additive noise (strong order 1.5, needs the
    space-time Levy area), SRID2 for diagonal and scalar noise (strong order 1.0). SRA1 has
    an embedded error estimate, the difference to Euler-Maruyama's drift from its first stage
    (``2/3 dt (f_2 - f_1)``, as in diffrax); SRID2 has none. Evaluates off the step grid."""

    name = "srk"
    sde_types = ("ito",)
    noise_types = ("additive", "diagonal", "scalar")
    strong_order = 1.5
    levy_area = True
    error_noise_types = ("additive",)
    grid_times = False
    torchsde_name = "srk"

    def order(self):
        return 1.5 if self.noise_type == "additive" else 1.0

    def step(self, t0, t1, dt, y0, inc, state):
        if self.noise_type == "additive":
            y1, fs = self._additive(t0, dt, y0, inc.W, inc.U)
            err = (fs[1] - fs[0]) * (dt * 2 / 3) if self.want_error else None
            return y1, err, None
        return self._diagonal(t0, dt, y0, inc.W, inc.U), None, None

    def _additive(self, t0, dt, y0, dW, U):
        tab, sde = SRA1, self.sde
        u_dt = U / dt
        gs = [sde.g(t0 + c * dt, y0) for c in tab["c1"]]
        y1, fs = y0, []
        for s in range(2):
            h = y0
            for j in range(s):
                h = h.add(fs[j], alpha=tab["a0"][s][j] * dt)
                h = self.noise(h, gs[j], tab["b0"][s][j] * u_dt)
            fs.append(sde.f(t0 + tab["c0"][s] * dt, h))
            y1 = y1.add(fs[s], alpha=tab["alpha"][s] * dt)
            y1 = self.noise(y1, gs[s], tab["beta1"][s] * dW + tab["beta2"][s] * u_dt)
        return y1, fs

    def _diagonal(self, t0, dt, y0, dW, U):
        tab, sde = SRID2, self.sde
        sqrt_dt = math.sqrt(dt)
        i_kk = (dW * dW - dt) * 0.5
        i_kkk = (dW**3 - 3 * dt * dW) / 6
        u_dt = U / dt
        y1, fs, gs = y0, [], []
        for s in range(4):
            h0, h1 = y0, y0
            for j in range(s):
                h0 = h0 + tab["a0"][s][j] * fs[j] * dt + tab["b0"][s][j] * gs[j] * u_dt
                h1 = h1 + tab["a1"][s][j] * fs[j] * dt + tab["b1"][s][j] * gs[j] * sqrt_dt
            fs.append(sde.f(t0 + tab["c0"][s] * dt, h0))
            g = sde.g(t0 + tab["c1"][s] * dt, h1)
            gs.append(g.squeeze(-1) if self.noise_type == "scalar" else g)
            weight = (
                tab["beta1"][s] * dW
                + tab["beta2"][s] * i_kk / sqrt_dt
                + tab["beta3"][s] * u_dt
                + tab["beta4"][s] * i_kkk / dt
            )
            y1 = y1 + tab["alpha"][s] * fs[s] * dt + gs[s] * weight
        return y1
