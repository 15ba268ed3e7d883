"""Milstein's method, with the derivative-using and derivative-free variants."""

from __future__ import annotations

import torch

from .base import Method, axpy, register


@register
class Milstein(Method):
    """Milstein: strong order 1.0 for diagonal and scalar (commutative) noise.

    Adds ``0.5 g g' (dW^2 - dt)`` (Ito) or ``0.5 g g' dW^2`` (Stratonovich) to Euler. The
    term ``g g'`` is a vector-Jacobian product, so it assumes ``g_i`` depends on ``y_i``
    only, as in torchsde. ``options={"derivative_free": True}`` replaces it by the finite
    difference ``(g(y + g sqrt(dt)) - g(y)) / sqrt(dt)`` (plus ``f dt`` for Ito).
    """

    name = "milstein"
    sde_types = ("ito", "stratonovich")
    noise_types = ("diagonal", "scalar", "additive")
    strong_order = 1.0
    per_series = True
    torchsde_name = "milstein"
    option_names = ("derivative_free",)

    def step(self, t0, t1, dt, y0, inc, state):
        sde, dW = self.sde, inc.W
        if self.noise_type == "additive":  # g' = 0: Milstein is Euler
            f, g = self.fg(t0, y0)
            return self.noise(axpy(y0, f, dt), g, dW), None, None
        ito = sde.sde_type == "ito"
        v = dW * dW - dt if ito else dW * dW
        if self.options.get("derivative_free", False):
            f, g = self.fg(t0, y0)
            gs = g.squeeze(-1) if self.noise_type == "scalar" else g
            sqrt_dt = dt**0.5
            y_prime = y0 + gs * sqrt_dt
            if ito:
                y_prime = y_prime + f * dt
            g_prime = sde.g(t0, y_prime)
            g_prime = g_prime.squeeze(-1) if self.noise_type == "scalar" else g_prime
            correction = (g_prime - gs) * v / (2 * sqrt_dt)
        else:
            f = sde.f(t0, y0)
            create_graph = torch.is_grad_enabled()
            with torch.enable_grad():
                y = y0 if y0.requires_grad else y0.detach().requires_grad_(True)
                g = sde.g(t0, y)
                gs = g.squeeze(-1) if self.noise_type == "scalar" else g
                gdg = None
                if gs.requires_grad:
                    (gdg,) = torch.autograd.grad(
                        gs,
                        y,
                        gs * v,
                        create_graph=create_graph,
                        retain_graph=True,
                        allow_unused=True,
                    )
            correction = 0.5 * gdg if gdg is not None else torch.zeros_like(y0)
        y1 = torch.addcmul(axpy(y0, f, dt), gs, dW) + correction
        return y1, None, None
