"""Reverse-time SDEs of a forward noising SDE, as SDE objects for ``neuralsde.solve``.

The reverse process runs in a new time ``u in [0, 1]`` with ``t = tau(u)`` decreasing from
``T`` to ``eps`` (``tau`` is the sampling schedule), so the core integrates forward in ``u``:

    dx = [f - c g^2 score](tau(u), x) tau'(u) du + g(tau(u)) sqrt(|tau'(u)|) dW_u,

with ``c = 1`` for the reverse SDE and ``c = 1/2`` (and no noise) for the probability flow.
``PredictorCorrectorSDE`` interleaves Langevin corrector steps as extra unit time intervals
whose Euler-Maruyama step *is* the Langevin update, so ``pc`` needs no stepping loop here.
"""

from __future__ import annotations

import math

import torch

from neuralsde.core.sde import SDE
from neuralsde.core.transforms import Reverse

SCHEDULES = ("linear", "logsnr")


def tweedie(x: torch.Tensor, score: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """Tweedie's denoiser ``E[x_0 | x_t = x] = (x + sigma_t^2 score) / alpha_t`` for a forward
    SDE with marginal ``N(alpha_t x_0, sigma_t^2 I)``; ``alpha, sigma`` broadcast against ``x``.

    Example:
        >>> x = torch.tensor([[2.0]])
        >>> tweedie(x, -x / 2.0, torch.tensor(1.0), torch.tensor(1.0))  # N(0, 1) data, t: var 2
        tensor([[1.]])
    """
    return (x + sigma**2 * score) / alpha


def _flat_score(score_fn, shape, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    b = y.shape[0]
    tb = t.reshape(()).expand(b) if t.dim() == 0 else t
    return score_fn(y.reshape(b, *shape), tb).reshape(b, -1)


class ReverseSDE(Reverse):
    """Reverse-time SDE (``probability_flow=False``) or probability-flow ODE of ``forward``.

    The core :class:`~neuralsde.core.transforms.Reverse` with the sampling schedule as its time
    map: state ``y: (batch, prod(shape))`` (flattened ``x: (batch, *shape)``), time
    ``u in [0, 1]``, ``t = tau(u)``. Exposes the semi-linear structure used by exponential
    integrators (``dpm2``): ``alpha(u)``, ``sigma(u)`` (forward marginal coefficients at
    ``tau(u)``) and the data prediction ``data_prediction(u, y) = (y + sigma^2 score) / alpha``
    (Tweedie).

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE
        >>> from neuralsde import reverse
        >>> rev = reverse(VPSDE(), lambda x, t: -x, probability_flow=True, shape=(2,))
        >>> rev.g(torch.tensor(0.5), torch.ones(4, 2)).abs().sum().item()
        0.0
    """

    def __init__(
        self,
        forward,
        score_fn,
        probability_flow: bool = False,
        shape=None,
        eps: float | None = None,
        schedule: str = "linear",
        sde_type: str = "ito",
        T: float | None = None,
    ):
        if T is not None and float(T) != forward.T:
            raise ValueError(f"T must be the forward SDE's horizon {forward.T}; got {T!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {schedule!r}")
        super().__init__(forward, score_fn, forward.T, probability_flow, sde_type=sde_type)
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        self.eps = forward.eps if eps is None else float(eps)
        if not 0 <= self.eps < forward.T:
            raise ValueError(f"eps must lie in [0, T={forward.T}); got {self.eps!r}")
        self.schedule = schedule
        if schedule == "logsnr":
            self._lam_T = float(forward.log_snr(torch.tensor(forward.T, dtype=torch.float64)))
            self._lam_e = float(forward.log_snr(torch.tensor(self.eps, dtype=torch.float64)))

    # --- the schedule u -> t ---------------------------------------------------------------
    def time(self, u) -> torch.Tensor:
        """Forward time ``t = tau(u)`` for reverse time ``u`` (0-d tensor or float)."""
        u = torch.as_tensor(u)
        if self.schedule == "linear":
            return self.forward_sde.T - u * (self.forward_sde.T - self.eps)
        lam = self._lam_T + u * (self._lam_e - self._lam_T)
        return self.forward_sde.t_from_log_snr(lam)

    def time_derivative(self, u) -> torch.Tensor:
        """``tau'(u)`` (negative)."""
        u = torch.as_tensor(u)
        if self.schedule == "linear":
            return torch.full_like(u, -(self.forward_sde.T - self.eps), dtype=u.dtype)
        t = self.time(u).detach().requires_grad_(True)
        with torch.enable_grad():
            lam = self.forward_sde.log_snr(t)
            (dlam_dt,) = torch.autograd.grad(lam, t)
        return (self._lam_e - self._lam_T) / dlam_dt

    def speed(self, u) -> torch.Tensor:
        return -self.time_derivative(u)

    # --- structure --------------------------------------------------------------------------
    def _shape(self, y):
        return self.shape if self.shape is not None else (y.shape[-1],)

    def score_at(self, y, t):
        return _flat_score(self.score_fn, self._shape(y), y, torch.as_tensor(t).to(y))

    def score(self, u, y):
        """Score ``grad log p_t`` at ``t = tau(u)``, flattened: ``(batch, state)``."""
        return self.score_at(y, self.time(u))

    def alpha(self, u):
        return self.forward_sde.alpha(self.time(u))

    def sigma(self, u):
        return self.forward_sde.sigma(self.time(u))

    def data_prediction(self, u, y):
        """Tweedie's denoiser ``E[x_0 | x_t = y]`` at ``t = tau(u)``."""
        t = self.time(u).to(y)
        return tweedie(y, self.score(u, y), self.forward_sde.alpha(t), self.forward_sde.sigma(t))


class PredictorCorrectorSDE(SDE):
    """Reverse-diffusion predictor + Langevin corrector as one SDE on unit time intervals.

    With ``n`` predictor steps and ``m`` corrector steps each, time runs over
    ``[0, n (m + 1)]``; Euler-Maruyama with ``dt = 1`` takes, on interval ``k``:

    - ``k mod (m + 1) == 0``: the Euler-Maruyama predictor of ``reverse`` from ``u_i`` to
      ``u_i + 1/n`` (drift ``f / n``, diffusion ``g / sqrt(n)``);
    - otherwise a Langevin step at ``t_{i+1}``: drift ``e s``, diffusion ``sqrt(2 e)``, with
      ``e = 2 (snr E|z| / mean_batch |s|)^2`` (Song et al.'s step size from batch-mean norms,
      the noise norm replaced by its expectation ``E|z|`` for ``z ~ N(0, I_d)`` and the
      discrete ``alpha_i`` by 1).
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(
        self, reverse: ReverseSDE, n_steps: int, snr: float = 0.16, corrector_steps: int = 1
    ):
        super().__init__()
        if reverse.probability_flow:
            raise ValueError("PredictorCorrectorSDE needs a reverse SDE, not a probability flow")
        self.reverse = reverse
        self.n = int(n_steps)
        self.m = int(corrector_steps)
        self.snr = float(snr)

    @property
    def t_end(self) -> float:
        return float(self.n * (self.m + 1))

    def _phase(self, tau):
        k = int(math.floor(float(tau) + 1e-6))
        i, j = divmod(k, self.m + 1)
        return i, j

    def _langevin_step(self, i, y):
        u = torch.tensor(min((i + 1) / self.n, 1.0), dtype=y.dtype)
        s = self.reverse.score(u, y)
        d = y.shape[-1]
        noise_norm = math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
        grad_norm = s.norm(dim=-1).mean().clamp_min(1e-12)
        return s, 2 * (self.snr * noise_norm / grad_norm) ** 2

    def f(self, tau, y):
        return self.f_and_g(tau, y)[0]

    def g(self, tau, y):
        return self.f_and_g(tau, y)[1]

    def f_and_g(self, tau, y):
        i, j = self._phase(tau)
        if j == 0:
            u = torch.tensor(i / self.n, dtype=y.dtype)
            f, g = self.reverse.f_and_g(u, y)
            return f / self.n, g / math.sqrt(self.n)
        s, e = self._langevin_step(i, y)
        return e * s, torch.sqrt(2 * e) * torch.ones_like(y)
