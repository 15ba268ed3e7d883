"""Euler-Maruyama."""

from __future__ import annotations

from .base import Method, axpy_, register


@register
class Euler(Method):
    """Euler-Maruyama: 1 stage, strong order 0.5 (1.0 for additive noise), weak order 1.

    Converges to the Ito solution; supports every noise type, one grid per series, and
    adaptive steps by step doubling (it has no embedded error estimate).
    """

    name = "euler"
    sde_types = ("ito",)
    strong_order = 0.5
    per_series = True
    torchsde_name = "euler"

    def order(self):
        return 1.0 if self.noise_type == "additive" else 0.5

    def init(self, t0, t1, y0, fg0):
        return fg0

    def step(self, t0, t1, dt, y0, inc, state):
        f, g = state if state is not None else self.fg(t0, y0)
        return axpy_(self.noise(y0, g, inc.W), f, dt), None, None
