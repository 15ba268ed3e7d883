"""Heun's method and the midpoint method (Stratonovich)."""

from __future__ import annotations

from .base import Method, register


@register
class Heun(Method):
    """Stochastic Heun: 2 stages, strong order 0.5 (1.0 for commutative noise) and
    order 2 on ODEs; converges to the Stratonovich solution."""

    name = "heun"
    sde_types = ("stratonovich",)
    strong_order = 0.5

    def order(self):
        return 1.0 if self.noise_type in ("additive", "scalar", "diagonal") else 0.5

    def init(self, t0, y0, fg0):
        return fg0

    def step(self, t0, t1, dt, y0, dW, U, state):
        f0, g0 = state if state is not None else self.fg(t0, y0)
        y_pred = self.noise(y0.add(f0, alpha=dt), g0, dW)
        f1, g1 = self.fg(t1, y_pred)
        y1 = self.noise(y0.add(f0 + f1, alpha=0.5 * dt), g0, 0.5 * dW)
        return self.noise(y1, g1, 0.5 * dW), None


@register
class Midpoint(Heun):
    """Stochastic midpoint: 2 stages, strong order 0.5 (1.0 for commutative noise);
    converges to the Stratonovich solution."""

    name = "midpoint"

    def step(self, t0, t1, dt, y0, dW, U, state):
        f0, g0 = state if state is not None else self.fg(t0, y0)
        y_mid = self.noise(y0.add(f0, alpha=0.5 * dt), g0, 0.5 * dW)
        f_mid, g_mid = self.fg(t0 + 0.5 * (t1 - t0), y_mid)
        return self.noise(y0.add(f_mid, alpha=dt), g_mid, dW), None
