"""EDM's Heun sampler and Restart sampling, as core methods on a schedule's knots.

``heun_edm`` (Karras et al. 2022, Algorithm 2): Heun's method on the probability-flow ODE in
EDM's variables, ``dx_hat/ds = (x_hat - D(x_hat, s)) / s``, with optional churn: before step
``i`` the noise level is raised to ``s' = s_i (1 + gamma)``, ``gamma = min(churn / N,
sqrt 2 - 1)`` for ``s_i`` in ``[s_tmin, s_tmax]``, by adding ``sqrt(s'^2 - s_i^2) s_noise z``
(``N``: the schedule's intervals plus the final denoising step, as EDM and k-diffusion count).
Two evaluations per step (one with no churn on the first step, which reuses the start).

``restart`` (Xu et al. 2023, "Restart sampling for improving generative processes"): Heun
steps along a *path* that, after reaching ``t_min``, jumps back up to ``t_max`` ``K`` times
and descends again. The jump draws from the forward SDE's closed-form transition
``x_{t'} | x_t ~ N((alpha_t' / alpha_t) x_t, sigma_t'^2 - (alpha_t' / alpha_t)^2 sigma_t^2)``
(VE, VP and sub-VP alike: all are linear SDEs with these marginals).
"""

from __future__ import annotations

import math

import torch

from neuralsde.core.methods import register
from neuralsde.diffusion.knots import Knot, KnotMethod


@register
class HeunEDM(KnotMethod):
    """EDM's second-order Heun sampler (see the module docstring). Options ``churn``
    (default 0: deterministic), ``s_tmin`` (0), ``s_tmax`` (inf), ``s_noise`` (1)."""

    name = "heun_edm"
    strong_order = 2.0
    option_names = ("churn", "s_tmin", "s_tmax", "s_noise")

    def __init__(self, sde, options=None):
        super().__init__(sde, options)
        o = self.options
        self.churn = float(o.get("churn", 0.0))
        self.s_tmin, self.s_tmax = float(o.get("s_tmin", 0.0)), float(o.get("s_tmax", math.inf))
        self.s_noise = float(o.get("s_noise", 1.0))
        if self.churn < 0:
            raise ValueError(f"method='heun_edm': churn must be >= 0; got {self.churn!r}")

    def step(self, t0, t1, dt, y0, inc, state):
        k0, k1 = self.knots(t0)
        return self.heun(t0, t1, dt, y0, inc, state, k0, k1)

    def heun(self, t0, t1, dt, y0, inc, state, k0: Knot, k1: Knot):
        x, s = y0 / k0.alpha, k0.s
        gamma = 0.0
        if self.churn > 0 and self.s_tmin <= s <= self.s_tmax:
            gamma = min(self.churn / (self.n + 1), math.sqrt(2) - 1)
        if gamma > 0:
            s_hat = s * (1 + gamma)
            x = x + (math.sqrt(s_hat**2 - s**2) * self.s_noise) * self.normal(inc, dt)
            lam_hat = torch.tensor(-math.log(s_hat), dtype=torch.float64)
            t_hat = self.sde.forward_sde.t_from_log_snr(lam_hat)
            a_hat = float(self.sde.forward_sde.alpha(t_hat))
            d0 = self.sde.data_at_time(t_hat, a_hat * x)
            s = s_hat
        else:
            d0 = self.denoised(k0, y0, state)
        slope = (x - d0) / s
        x1 = x + (k1.s - s) * slope
        d1 = self.sde.data_at_knot(k1.i, k1.alpha * x1)
        x1 = x + (0.5 * (k1.s - s)) * (slope + (x1 - d1) / k1.s)
        return k1.alpha * x1, None, None


@register
class Restart(HeunEDM):
    """Restart sampling (Xu et al. 2023) on a path with forward jumps; Heun EDM steps on the
    way down (see the module docstring). Build the path with :func:`restart_path`."""

    name = "restart"
    strong_order = 0.5

    def init(self, t0, t1, y0, fg0):
        state = super().init(t0, t1, y0, fg0)
        self.times = self.sde.knot_times
        return state

    def step(self, t0, t1, dt, y0, inc, state):
        k0, k1 = self.knots(t0)
        if self.times[k1.i] < self.times[k0.i]:
            return self.heun(t0, t1, dt, y0, inc, state, k0, k1)
        ratio = k1.alpha / k0.alpha
        std = math.sqrt(max(k1.sigma**2 - (ratio * k0.sigma) ** 2, 0.0))
        return ratio * y0 + std * self.normal(inc, dt), None, None


def forward_kernel(sde, t: float, t_next: float) -> tuple[float, float]:
    """``(mean ratio, std)`` of the forward transition ``x_{t_next} | x_t`` (``t_next > t``)."""
    tt = torch.tensor([t, t_next], dtype=torch.float64)
    a, s = sde.alpha(tt).double(), sde.sigma(tt).double()
    ratio = float(a[1] / a[0])
    return ratio, math.sqrt(max(float(s[1] ** 2 - (ratio * s[0]) ** 2), 0.0))


def restart_path(knots: torch.Tensor, sde, s_min: float, s_max: float, cycles: int,
                 restart_steps: int) -> torch.Tensor:  # fmt: skip
    """The Restart path: the schedule ``knots`` (forward times, decreasing) with ``t_min``
    (EDM noise level ``s_min``) inserted, and at ``t_min`` ``cycles`` repeats of a jump up to
    ``t_max`` (level ``s_max``) followed by ``restart_steps`` knots back down, uniform in
    ``s^(1/7)`` (EDM's spacing). Returns the float64 path."""
    if not 0 < s_min < s_max:
        raise ValueError(f"restart needs 0 < s_min < s_max; got s_min={s_min}, s_max={s_max}")
    if cycles < 0 or restart_steps < 1:
        raise ValueError(
            f"restart needs cycles >= 0 and restart_steps >= 1; got {cycles}, {restart_steps}"
        )
    lam = torch.log(torch.tensor([s_min, s_max], dtype=torch.float64))
    t_min, t_max = (float(v) for v in sde.t_from_log_snr(-lam).double())
    k = knots.double()
    if not float(k[-1]) < t_min < t_max < float(k[0]):
        raise ValueError(
            f"restart interval t in [{t_min:.4g}, {t_max:.4g}] (levels [{s_min}, {s_max}]) "
            f"must lie inside the schedule's span ({float(k[-1]):.4g}, {float(k[0]):.4g})"
        )
    above, below = k[k > t_min], k[k < t_min]
    r = torch.linspace(0, 1, restart_steps + 1, dtype=torch.float64)
    levels = (s_max ** (1 / 7) + r * (s_min ** (1 / 7) - s_max ** (1 / 7))) ** 7
    down = sde.t_from_log_snr(-torch.log(levels)).double()
    down[0], down[-1] = t_max, t_min
    parts = [above, torch.tensor([t_min], dtype=torch.float64)]
    parts += [down] * cycles
    parts.append(below)
    return torch.cat(parts)
