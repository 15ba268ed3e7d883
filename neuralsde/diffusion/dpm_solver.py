"""DPM-Solver++(2M): a second-order multistep exponential integrator for semi-linear ODEs.

For an ODE written through a data prediction, ``dx/dt = (d log sigma/dt) x + (stuff) x0(t, x)``
as the probability flow of ``x_t = alpha_t x_0 + sigma_t z`` is (Lu et al. 2022, DPM-Solver++),
the step from ``t0`` to ``t1`` with ``lambda = log(alpha / sigma)`` and ``h = lambda_1 - lambda_0``
is ``x_1 = (sigma_1 / sigma_0) x_0 - alpha_1 expm1(-h) D`` where ``D`` is the current data
prediction (first step) or its multistep extrapolation
``(1 + 1/(2r)) x0_cur - 1/(2r) x0_prev``, ``r = h_prev / h``.

It needs diffusion structure, so it registers with the core's method registry from here, when
``neuralsde.diffusion`` is imported; the core knows nothing of it.
"""

from __future__ import annotations

import torch

from neuralsde.core.methods import Method, register


@register
class DPMSolver2M(Method):
    """DPM-Solver++(2M): 1 data prediction per step, order 2 on the probability-flow ODE.

    Needs an SDE exposing the semi-linear structure ``alpha(t)``, ``sigma(t)`` and
    ``data_prediction(t, y)`` (``neuralsde.diffusion.ReverseSDE`` with
    ``probability_flow=True`` does). Ignores the Brownian increment, so the diffusion must be
    zero; multistep, hence fixed steps only. Option ``lower_order_final`` (default True) takes
    the last step at first order, which stabilises runs of fewer than ~15 steps.
    """

    name = "dpm2"
    sde_types = ("ito", "stratonovich")
    strong_order = 2.0
    adaptive = False
    option_names = ("lower_order_final",)
    requires = ("alpha", "sigma", "data_prediction")

    def __init__(self, sde, options=None):
        super().__init__(sde, options)
        self.lower_order_final = bool(self.options.get("lower_order_final", True))
        self.final_time = None

    def init(self, t0, t1, y0, fg0):
        self.final_time = float(t1)
        g = fg0[1]
        if bool((g != 0).any()):
            raise ValueError(
                "method='dpm2' integrates an ODE: the diffusion g(t, y) must be zero (use the "
                "probability-flow ODE)"
            )
        return None

    def _log_snr(self, t):
        return torch.log(self.sde.alpha(t)) - torch.log(self.sde.sigma(t))

    def step(self, t0, t1, dt, y0, inc, state):
        lam0, lam1 = self._log_snr(t0), self._log_snr(t1)
        h = (lam1 - lam0).to(y0)
        x0 = self.sde.data_prediction(t0, y0)
        last = abs(float(t1) - self.final_time) < 1e-9
        if state is None or (last and self.lower_order_final):
            d = x0
        else:
            lam_prev, x0_prev = state
            r = (lam0 - lam_prev).to(y0) / h
            d = (1 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
        ratio = (self.sde.sigma(t1) / self.sde.sigma(t0)).to(y0)
        y1 = ratio * y0 - self.sde.alpha(t1).to(y0) * torch.expm1(-h) * d
        return y1, None, (lam0, x0)
