"""SA-Solver (Xue et al. 2023, "SA-Solver: stochastic Adams solver for fast sampling of
diffusion models"): a stochastic Adams predictor-corrector on the data prediction, as a core
method on a schedule's knots.

With ``lambda = log(alpha / sigma)``, ``h = lambda_1 - lambda_0`` and the noise scale ``tau``
held constant over a step, the variance-controlled reverse SDE has the step

    x_1 = (sigma_1 / sigma_0) e^{-tau^2 h} x_0 + sum_j b_j D_j
          + sigma_1 sqrt(1 - e^{-2 tau^2 h}) xi,
    b_j = alpha_1 (1 + tau^2) int_{lambda_0}^{lambda_1} e^{-(1 + tau^2)(lambda_1 - l)} L_j(l) dl,

where ``L_j`` are the Lagrange basis polynomials through the ``lambda`` of the data predictions
used: the predictor's ``D_0, D_{-1}, D_{-2}`` (order 3) and the corrector's
``D_1, D_0, D_{-1}, D_{-2}`` (order 4), ``D_1`` evaluated at the predicted point. Predictor and
corrector share ``xi``; the next step starts from the corrected point with ``D_1`` reused, so
each step costs one evaluation. With two nodes, the authors' implementation (ported to
diffusers) adds an ``O(h^3)`` term that keeps the order and helps at few steps: with
``c = 1 + tau^2`` it moves ``alpha_1 c (h^2/2 - (c h - 1 + e^{-c h}) / c^2) / (lambda_0 -
lambda_{-1})`` of weight from ``D_{-1}`` to ``D_0`` in the predictor and
``alpha_1 c (h/2 - (c h - 1 + e^{-c h}) / (c^2 h))`` from ``D_0`` to ``D_1`` in the
corrector (option ``order2_adjust``, default True). ``tau = 0`` gives a deterministic Adams
method on the probability flow; ``tau = 1`` the reverse SDE.
"""

from __future__ import annotations

import math

import numpy as np

from neuralsde.core.methods import register
from neuralsde.diffusion.knots import KnotMethod, quad


def default_tau(t_fraction: float) -> float:
    """SA-Solver's default noise scale: 1 for ``t / T`` in ``[0.2, 0.8]``, else 0."""
    return 1.0 if 0.2 <= t_fraction <= 0.8 else 0.0


def adams_weights(nodes, lam0: float, lam1: float, tau: float, alpha1: float) -> list[float]:
    """``b_j`` of the module docstring for Lagrange nodes ``nodes`` (lambdas)."""
    c = 1.0 + tau * tau
    out = []
    for j, lj in enumerate(nodes):
        others = [m for k, m in enumerate(nodes) if k != j]

        def integrand(lam, lj=lj, others=others):
            basis = np.ones_like(lam)
            for m in others:
                basis = basis * (lam - m) / (lj - m)
            return np.exp(-c * (lam1 - lam)) * basis

        out.append(alpha1 * c * quad(integrand, lam0, lam1))
    return out


@register
class SASolver(KnotMethod):
    """SA-Solver (see the module docstring). Options ``predictor_order`` (1-3, default 3),
    ``corrector_order`` (0-4, default 4; 0: no corrector) and ``tau`` (a function of
    ``t / T``; default :func:`default_tau`) and ``lower_order_final`` (default True: the
    orders fall to the number of steps left, predictor ``min(p, n - i)`` and corrector
    ``min(c, n - i + 1)`` at step ``i`` of ``n``, as diffusers does; the last interval of a
    schedule is often long in ``lambda``, where a high-order extrapolation is wild), and
    ``final_corrector`` (default False: the last step is the predictor alone, as in diffusers,
    which saves the evaluation there; the final denoising step follows)."""

    name = "sa_solver"
    strong_order = 0.5
    option_names = ("predictor_order", "corrector_order", "tau", "lower_order_final",
                    "final_corrector", "order2_adjust")  # fmt: skip

    def __init__(self, sde, options=None):
        super().__init__(sde, options)
        self.p = int(self.options.get("predictor_order", 3))
        self.c = int(self.options.get("corrector_order", 4))
        if self.p not in (1, 2, 3) or self.c not in (0, 1, 2, 3, 4):
            raise ValueError(
                f"method='sa_solver': predictor_order must be 1-3 and corrector_order 0-4; "
                f"got {self.p}, {self.c}"
            )
        self.history = max(self.p, self.c) - 1
        self.lower_order_final = bool(self.options.get("lower_order_final", True))
        self.final_corrector = bool(self.options.get("final_corrector", False))
        self.order2_adjust = bool(self.options.get("order2_adjust", True))
        self.tau = self.options.get("tau", default_tau)
        if not callable(self.tau):
            raise TypeError(f"method='sa_solver': tau must be callable; got {type(self.tau)!r}")

    def step(self, t0, t1, dt, y0, inc, state):
        k0, k1 = self.knots(t0)
        d0, hist = self.denoised(k0, y0, state), state[1]
        tau = float(self.tau(float(self.sde.knot_times[k0.i]) / self.sde.T))
        h = k1.lam - k0.lam
        base = (k1.sigma / k0.sigma) * math.exp(-tau * tau * h) * y0
        xi = self.normal(inc, dt)
        noise = k1.sigma * math.sqrt(-math.expm1(-2 * tau * tau * h)) if tau else 0.0
        past = [(k0.lam, d0)] + list(hist)
        left = self.n - k0.i if self.lower_order_final else self.n
        p = min(self.p, len(past), left)

        def adams(nodes, adjust):
            weights = adams_weights([lam for lam, _ in nodes], k0.lam, k1.lam, tau, k1.alpha)
            if adjust and self.order2_adjust:
                weights[0], weights[1] = weights[0] + adjust, weights[1] - adjust
            y = base
            for w, (_, d) in zip(weights, nodes, strict=True):
                y = y + w * d
            return y + noise * xi if noise else y

        y_pred = adams(
            past[:p], self._adjust(h, tau, k1.alpha, k0.lam - past[1][0]) if p == 2 else 0
        )
        if self.is_last(k1) and not self.final_corrector:
            return y_pred, None, (None, ())
        d1 = self.sde.data_at_knot(k1.i, y_pred)
        c = min(self.c, len(past) + 1, left + 1)
        y1 = y_pred
        if c >= 1:
            nodes = [(k1.lam, d1)] + past[: c - 1]
            y1 = adams(nodes, self._adjust(h, tau, k1.alpha, h) * h if c == 2 else 0)
        return y1, None, (d1, self.remember(hist, k0.lam, d0))

    def _adjust(self, h, tau, alpha1, gap):
        """The two-node adjustment of the module docstring (``h^2`` form over ``gap``)."""
        c = 1 + tau * tau
        return alpha1 * c * (h * h / 2 - (c * h + math.expm1(-c * h)) / (c * c)) / gap
