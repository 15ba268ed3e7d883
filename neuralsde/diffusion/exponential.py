"""Exponential integrators on the data prediction: DDIM and DPM-Solver++ (ODE and SDE).

In EDM's variables (see :mod:`neuralsde.diffusion.knots`) one step from ``s_0`` to ``s_1``
with ``h = log(s_0 / s_1)``, ``eta >= 0`` (0: the probability-flow ODE) and
``h_eta = (1 + eta) h`` is

    x_hat_1 = (s_1 / s_0) e^{-eta h} x_hat_0 + (1 - e^{-h_eta}) D_0 + corrections
              + s_1 sqrt(1 - e^{-2 eta h}) z,

the exact solution for a data prediction frozen at ``D_0`` (Song et al. 2021, DDIM, for
``eta = 0`` and order 1; Lu et al. 2022, DPM-Solver++, eqs. for (2M) and (3M) and the
SDE-DPM-Solver++ of its section 5). The multistep corrections extrapolate ``D`` from the last
one or two data predictions ``D_{-1}, D_{-2}`` at ``lambda_{-1}, lambda_{-2}``, with
``r_0 = (lambda_0 - lambda_{-1}) / h``, ``r_1 = (lambda_{-1} - lambda_{-2}) / h``:

- order 2, ``"midpoint"``: ``+ (1 - e^{-h_eta}) (D_0 - D_{-1}) / (2 r_0)``;
- order 2, ``"heun"``: ``+ phi_2 (D_0 - D_{-1}) / r_0`` with
  ``phi_2 = 1 - (1 - e^{-h_eta}) / h_eta``;
- order 3: ``+ phi_2 d_1 - 2 phi_3 d_2`` (see below) with ``phi_3 = phi_2 / h_eta - 1/2``,
  ``d_{1,0} = (D_0 - D_{-1}) / r_0``, ``d_{1,1} = (D_{-1} - D_{-2}) / r_1``,
  ``d_1 = d_{1,0} + r_0 (d_{1,0} - d_{1,1}) / (r_0 + r_1)``,
  ``d_2 = (d_{1,0} - d_{1,1}) / (r_0 + r_1)``.

The first steps warm up at the orders the history allows (k-diffusion, diffusers); the first
step's local error ``h^2 dD/dlambda`` is negligible at the prior end, where the data prediction
barely moves with ``lambda``.

The third-order term: with ``D(lambda_0 + tau) = D_0 + tau D' + tau^2 D'' / 2``, the exact
integral gives ``D''`` the weight ``-phi_3 h^2`` while ``d_2`` above estimates ``h^2 D'' / 2``,
so the step adds ``- 2 phi_3 d_2`` (option ``d2_term="taylor"``, the default: global order 3,
tested). DPM-Solver's reference code, k-diffusion and diffusers add ``- phi_3 d_2``
(``d2_term="halved"``): half the Taylor term, a damped extrapolation whose global order is 2.
"""

from __future__ import annotations

import math

import torch

from neuralsde.core.methods import register
from neuralsde.diffusion.knots import KnotMethod


class _DPMSolverPP(KnotMethod):
    """DPM-Solver++ of a given order and ``eta`` (see the module docstring).

    Options: ``eta`` (stochastic samplers; default 1), ``solver_type`` (``"midpoint"`` or
    ``"heun"``: the second-order term), ``lower_order_final`` (default False: take the last
    step one order lower, at most first order for (2M) and second for (3M); diffusers does this
    below 15 steps), ``d2_term`` (third order: ``"taylor"``, default, or ``"halved"``, as the
    reference implementations; see the module docstring), ``prediction`` (``"data"``,
    default, or ``"noise"``: DPM-Solver's noise parametrisation, probability flow only).
    """

    multistep = 1
    stochastic = False
    default_solver = "midpoint"
    option_names = ("lower_order_final", "solver_type", "d2_term", "prediction")

    def __init__(self, sde, options=None):
        super().__init__(sde, options)
        self.history = self.multistep - 1
        self.eta = float(self.options.get("eta", 1.0)) if self.stochastic else 0.0
        if self.eta < 0:
            raise ValueError(f"method={self.name!r}: eta must be >= 0; got {self.eta!r}")
        self.solver_type = self.options.get("solver_type", self.default_solver)
        if self.solver_type not in ("midpoint", "heun"):
            raise ValueError(
                f"method={self.name!r}: solver_type must be 'midpoint' or 'heun'; got "
                f"{self.solver_type!r}"
            )
        d2_term = self.options.get("d2_term", "taylor")
        if d2_term not in ("taylor", "halved"):
            raise ValueError(f"method={self.name!r}: d2_term must be 'taylor' or 'halved'; got "
                             f"{d2_term!r}")  # fmt: skip
        self.d2_weight = 2.0 if d2_term == "taylor" else 1.0
        self.lower_order_final = bool(self.options.get("lower_order_final", False))
        self.prediction = self.options.get("prediction", "data")
        if self.prediction not in ("data", "noise"):
            raise ValueError(f"method={self.name!r}: prediction must be 'data' or 'noise'; got "
                             f"{self.prediction!r}")  # fmt: skip
        if self.prediction == "noise" and self.eta > 0:
            raise ValueError(f"method={self.name!r}: prediction='noise' is for the probability "
                             f"flow (eta = 0); the SDE samplers use the data "
                             f"prediction")  # fmt: skip

    def step(self, t0, t1, dt, y0, inc, state):
        k0, k1 = self.knots(t0)
        d0, hist = self.denoised(k0, y0, state), state[1]
        h = k1.lam - k0.lam
        h_eta = (1 + self.eta) * h
        order = min(self.multistep, len(hist) + 1)
        if self.lower_order_final and self.is_last(k1):
            order = min(order, self.multistep - 1, 2) or 1
        # x_1 = base x_0 + coef (phi1 v_0 + phi2 d_1 + w third d_2) with v the data prediction
        # (EDM variables times alpha_1) or the noise prediction (DPM-Solver, see _coefficients)
        base, coef, v0, phi1, phi2, third = self._coefficients(k0, k1, y0, d0, h, h_eta)
        y1 = torch.add(y0 * base, v0, alpha=coef * phi1)
        if order >= 2:
            lam_1, v_1 = hist[0]
            r0 = (k0.lam - lam_1) / h
            if order == 2:
                c = 0.5 * phi1 if self.solver_type == "midpoint" else phi2
                y1.add_(v0 - v_1, alpha=coef * c / r0)
            else:
                lam_2, v_2 = hist[1]
                r1 = (lam_1 - lam_2) / h
                d10, d11 = (v0 - v_1) / r0, (v_1 - v_2) / r1
                # phi2 d1 + w third d2 with d1 = d10 + r0 (d10 - d11) / (r0 + r1),
                # d2 = (d10 - d11) / (r0 + r1), w = 2 (Taylor) or 1 (halved)
                y1.add_(d10, alpha=coef * phi2).add_(
                    d10 - d11, alpha=coef * (phi2 * r0 + self.d2_weight * third) / (r0 + r1)
                )
        if self.eta > 0:
            y1.add_(
                self.normal(inc, dt), alpha=k1.sigma * math.sqrt(-math.expm1(-2 * self.eta * h))
            )
        return y1, None, (None, self.remember(hist, k0.lam, v0))

    def _coefficients(self, k0, k1, y0, d0, h, h_eta):
        """``(base, coef, v_0, phi1, phi2, third)`` of the step. Data prediction:
        ``(sigma_1/sigma_0) e^{-eta h}, alpha_1, D_0`` and ``phi1 = 1 - e^{-h_eta}``, ``phi2 =
        1 - phi1 / h_eta``, ``third = 1/2 - phi2 / h_eta`` (``-phi_3``). Noise prediction
        (DPM-Solver, Lu et al. 2022a; ``eps = (x - alpha D) / sigma``): ``alpha_1 / alpha_0,
        -sigma_1, eps_0`` and ``psi_1 = e^h - 1``, ``psi_2 = psi_1 / h - 1``, ``psi_3 = psi_2 /
        h - 1/2``, the Taylor weights of ``eps(lambda)``."""
        if self.prediction == "noise":
            psi1 = math.expm1(h)
            psi2 = psi1 / h - 1
            eps0 = (y0 - k0.alpha * d0) / k0.sigma
            return k1.alpha / k0.alpha, -k1.sigma, eps0, psi1, psi2, psi2 / h - 0.5
        one_minus = -math.expm1(-h_eta)
        phi2 = 1 - one_minus / h_eta
        base = (k1.sigma / k0.sigma) * math.exp(-self.eta * h)
        return base, k1.alpha, d0, one_minus, phi2, 0.5 - phi2 / h_eta


@register
class DDIM(_DPMSolverPP):
    """DDIM (Song, Meng & Ermon 2021) with ``eta = 0``: the first-order exponential integrator
    ``x_1 = alpha_1 D_0 + sigma_1 eps_0`` of the probability flow; 1 evaluation per step."""

    name = "ddim"
    option_names = ()
    strong_order = 1.0


@register
class DPMSolverPP2M(_DPMSolverPP):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): second-order multistep on the
    probability flow, 1 evaluation per step (k-diffusion's ``sample_dpmpp_2m``)."""

    name = "dpmpp_2m"
    multistep = 2
    strong_order = 2.0


@register
class DPM2(DPMSolverPP2M):
    """``dpm2``: the earlier name of ``dpmpp_2m``, kept as an alias."""

    name = "dpm2"


@register
class DPMSolverPP3M(_DPMSolverPP):
    """DPM-Solver++(3M) (Lu et al. 2022, appendix): third-order multistep on the probability
    flow, 1 evaluation per step (diffusers' ``DPMSolverMultistepScheduler``, order 3)."""

    name = "dpmpp_3m"
    multistep = 3
    strong_order = 3.0


@register
class DPMSolverPP2MSDE(_DPMSolverPP):
    """SDE-DPM-Solver++(2M) (Lu et al. 2022, section 5) with noise parameter ``eta`` (option,
    default 1; 0 gives ``dpmpp_2m``): 1 evaluation per step, noise from the Brownian source
    (k-diffusion's ``sample_dpmpp_2m_sde``)."""

    name = "dpmpp_2m_sde"
    multistep = 2
    stochastic = True
    strong_order = 0.5
    option_names = ("eta", "lower_order_final", "solver_type", "d2_term")


@register
class DPMSolverPP3MSDE(DPMSolverPP2MSDE):
    """SDE-DPM-Solver++(3M) with ``eta`` (default 1), third-order multistep data term and the
    ``"heun"`` second-order warm-up (k-diffusion's ``sample_dpmpp_3m_sde``)."""

    name = "dpmpp_3m_sde"
    multistep = 3
    default_solver = "heun"
