"""Heun's method and the midpoint method (Stratonovich)."""

from __future__ import annotations

from .base import Method, axpy, register


@register
class Heun(Method):
    """Stochastic Heun: 2 stages, strong order 0.5 (1.0 for commutative noise) and
    order 2 on ODEs; converges to the Stratonovich solution. Embedded error estimate: the
    difference to its Euler predictor, at no extra evaluation."""

    name = "heun"
    sde_types = ("stratonovich",)
    strong_order = 0.5
    error_noise_types = ("diagonal", "scalar", "additive", "general")
    per_series = True
    torchsde_name = "heun"

    def order(self):
        return 1.0 if self.noise_type in ("additive", "scalar", "diagonal") else 0.5

    def init(self, t0, t1, y0, fg0):
        return fg0

    def step(self, t0, t1, dt, y0, inc, state):
        f0, g0 = state if state is not None else self.fg(t0, y0)
        dW = inc.W
        y_pred = self.noise(axpy(y0, f0, dt), g0, dW)
        f1, g1 = self.fg(t1, y_pred)
        y1 = self.noise(axpy(y0, f0 + f1, 0.5 * dt), g0, 0.5 * dW)
        y1 = self.noise(y1, g1, 0.5 * dW)
        return y1, (y1 - y_pred if self.want_error else None), None


@register
class Midpoint(Heun):
    """Stochastic midpoint: 2 stages, strong order 0.5 (1.0 for commutative noise);
    converges to the Stratonovich solution. Embedded error estimate: the difference to the
    Euler step from the same first stage. Evaluates off the step grid (at midpoints)."""

    name = "midpoint"
    grid_times = False
    per_series = False
    torchsde_name = "midpoint"

    def step(self, t0, t1, dt, y0, inc, state):
        f0, g0 = state if state is not None else self.fg(t0, y0)
        dW = inc.W
        y_mid = self.noise(axpy(y0, f0, 0.5 * dt), g0, 0.5 * dW)
        f_mid, g_mid = self.fg(t0 + 0.5 * (t1 - t0), y_mid)
        y1 = self.noise(axpy(y0, f_mid, dt), g_mid, dW)
        err = None
        if self.want_error:
            err = y1 - self.noise(axpy(y0, f0, dt), g0, dW)
        return y1, err, None
