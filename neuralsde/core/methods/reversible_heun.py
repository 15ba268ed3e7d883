"""Reversible Heun (Kidger et al. 2021): algebraically reversible, Stratonovich."""

from __future__ import annotations

from .base import Method, register


@register
class ReversibleHeun(Method):
    """Reversible Heun: one f and g evaluation per step, strong order 0.5 (1.0 for
    additive noise), converges to the Stratonovich solution. Its state ``(z, f(z), g(z))``
    can be reconstructed exactly backwards, which ``adjoint="reversible"`` uses to give
    exact discretise-then-optimise gradients in O(1) memory.

    Step: ``z1 = 2 y0 - z0 + f(z0) dt + g(z0) dW``;
    ``y1 = y0 + (f(z0) + f(z1)) dt / 2 + (g(z0) + g(z1)) dW / 2``.
    """

    name = "reversible_heun"
    sde_types = ("stratonovich",)
    strong_order = 0.5

    def order(self):
        return 1.0 if self.noise_type == "additive" else 0.5

    def init(self, t0, y0, fg0):
        return (y0, *fg0)

    def step(self, t0, t1, dt, y0, dW, U, state):
        z0, fz0, gz0 = state
        z1 = self.noise((2 * y0 - z0).add(fz0, alpha=dt), gz0, dW)
        fz1, gz1 = self.fg(t1, z1)
        y1 = self.noise(y0.add(fz0 + fz1, alpha=0.5 * dt), gz0, 0.5 * dW)
        y1 = self.noise(y1, gz1, 0.5 * dW)
        return y1, (z1, fz1, gz1)

    def inverse_z(self, dt, y1, dW, state1):
        """``z0`` from ``y1`` and the state after the step."""
        z1, fz1, gz1 = state1
        return self.noise((2 * y1 - z1).add(fz1, alpha=-dt), gz1, -dW)

    def inverse_y(self, dt, y1, dW, fz0, gz0, state1):
        """``y0`` from ``y1``, ``f(z0), g(z0)`` and the state after the step."""
        _, fz1, gz1 = state1
        y0 = self.noise(y1.add(fz0 + fz1, alpha=-0.5 * dt), gz0, -0.5 * dW)
        return self.noise(y0, gz1, -0.5 * dW)
