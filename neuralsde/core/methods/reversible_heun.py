"""Reversible Heun (Kidger et al. 2021): algebraically reversible, Stratonovich."""

from __future__ import annotations

from .base import Method, axpy, register


@register
class ReversibleHeun(Method):
    """Reversible Heun: one f and g evaluation per step, strong order 0.5 (1.0 for
    additive noise), converges to the Stratonovich solution. Its state ``(z, f(z), g(z))``
    can be reconstructed exactly backwards, which ``adjoint="reversible"`` uses to give
    exact discretise-then-optimise gradients in O(1) memory.

    Step: ``z1 = 2 y0 - z0 + f(z0) dt + g(z0) dW``;
    ``y1 = y0 + (f(z0) + f(z1)) dt / 2 + (g(z0) + g(z1)) dW / 2``. Embedded error estimate
    (as in diffrax): ``(f(z1) - f(z0)) dt / 2 + (g(z1) - g(z0)) dW / 2``.
    """

    name = "reversible_heun"
    sde_types = ("stratonovich",)
    strong_order = 0.5
    error_noise_types = ("diagonal", "scalar", "additive", "general")
    per_series = True
    reversible = True
    torchsde_name = "reversible_heun"

    def order(self):
        return 1.0 if self.noise_type == "additive" else 0.5

    def init(self, t0, t1, y0, fg0):
        return (y0, *fg0)

    def step(self, t0, t1, dt, y0, inc, state):
        z0, fz0, gz0 = state
        dW = inc.W
        z1 = self.noise(axpy(2 * y0 - z0, fz0, dt), gz0, dW)
        fz1, gz1 = self.fg(t1, z1)
        y1 = self.noise(axpy(y0, fz0 + fz1, 0.5 * dt), gz0, 0.5 * dW)
        y1 = self.noise(y1, gz1, 0.5 * dW)
        err = None
        if self.want_error:
            err = self.noise((fz1 - fz0) * (0.5 * dt), gz1 - gz0, 0.5 * dW)
        return y1, err, (z1, fz1, gz1)

    def inverse_z(self, dt, y1, inc, state1):
        """``z0`` from ``y1`` and the state after the step."""
        z1, fz1, gz1 = state1
        return self.noise(axpy(2 * y1 - z1, fz1, -dt), gz1, -inc.W)

    def inverse_y(self, dt, y1, inc, fz0, gz0, state1):
        """``y0`` from ``y1``, ``f(z0), g(z0)`` and the state after the step."""
        _, fz1, gz1 = state1
        y0 = self.noise(axpy(y1, fz0 + fz1, -0.5 * dt), gz0, -0.5 * inc.W)
        return self.noise(y0, gz1, -0.5 * inc.W)
