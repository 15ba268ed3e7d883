"""Reverse-time SDEs of a forward noising SDE, as SDE objects for ``neuralsde.solve``.

The reverse process runs in a reverse time ``u`` that increases while the forward time
``t`` decreases from ``T``; by default ``t = T - u`` on ``[0, T - eps]``:

    dx = [c g^2 score - f](t, x) du + g(t) dW_u,

with ``c = 1`` for the reverse SDE and ``c = 1/2`` (and no noise) for the probability flow.
A sampling schedule is data: its knots ``T = t_0 > t_1 > ... > t_N = eps`` sit at
``u_i = T - t_i``, and the sampler steps exactly from knot to knot (``solve(grid=...)``).
A *path* may also go back up (Restart sampling's forward jumps); ``u`` is then the distance
travelled along it and ``t(u)`` is piecewise linear.

``PredictorCorrectorSDE`` interleaves Langevin corrector steps as extra unit time intervals
whose Euler-Maruyama step *is* the Langevin update, so ``pc`` needs no stepping loop here.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neuralsde.core.sde import SDE
from neuralsde.core.transforms import Reverse


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
    tb = t.reshape(-1).expand(b) if t.numel() == 1 else t.reshape(b)
    return score_fn(y.reshape(b, *shape), tb).reshape(b, -1)


class ReverseSDE(Reverse):
    """Reverse-time SDE (``probability_flow=False``) or probability-flow ODE of ``forward``.

    State ``y: (batch, prod(shape))`` (flattened ``x: (batch, *shape)``), reverse time ``u``
    with forward time ``t = time(u)``. Exposes what the diffusion samplers read at the knots
    of a schedule: ``alpha(u)``, ``sigma(u)`` (the forward marginal's coefficients), the data
    prediction ``data_prediction(u, y) = (y + sigma^2 score) / alpha`` (Tweedie), the knot
    table (``knots``, ``knot_times``, ``knot_alpha``, ``knot_sigma`` in float64, and
    :meth:`data_at_knot`) and :meth:`data_from_drift` (the data prediction recovered from a
    drift value, so the evaluation ``solve`` makes at the start is not repeated).

    Args:
        path: forward times of the knots, ``(N + 1,)``, from ``T``; strictly decreasing for a
            schedule (then ``t = T - u`` exactly), or going back up for Restart's jumps.
            Default: the two knots ``T, eps``.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE
        >>> from neuralsde import reverse
        >>> rev = reverse(VPSDE(), lambda x, t: -x, probability_flow=True, shape=(2,))
        >>> rev.g(torch.tensor(0.5), torch.ones(4, 2)).abs().sum().item()
        0.0
    """

    batched_time = True

    def __init__(
        self,
        forward,
        score_fn,
        probability_flow: bool = False,
        shape=None,
        eps: float | None = None,
        path=None,
        sde_type: str = "ito",
        T: float | None = None,
    ):
        if T is not None and float(T) != forward.T:
            raise ValueError(f"T must be the forward SDE's horizon {forward.T}; got {T!r}")
        super().__init__(forward, score_fn, forward.T, probability_flow, sde_type=sde_type)
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        self.eps = forward.eps if eps is None else float(eps)
        if not 0 <= self.eps < forward.T:
            raise ValueError(f"eps must lie in [0, T={forward.T}); got {self.eps!r}")
        knots = np.array([forward.T, self.eps]) if path is None else _as_knots(path)
        self.knot_times = knots  # float64 forward times t_i
        self.knots = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(knots)))])  # u_i
        self.monotone = bool((np.diff(knots) < 0).all())
        self.t_start = float(knots[0])
        self._times = {}  # (batch, dtype, device) -> the knots' times handed to the score
        t64 = torch.from_numpy(knots)
        self.knot_alpha = forward.alpha(t64).double().numpy()  # alpha, sigma at every knot
        self.knot_sigma = forward.sigma(t64).double().numpy()

    # --- the time map u -> t ----------------------------------------------------------------
    def _segment(self, u):
        """``(i, u)``: the piece of the path that holds ``u`` (right-continuous), as indices."""
        u = torch.as_tensor(u)
        knots = torch.from_numpy(self.knots).to(u.device)
        i = torch.searchsorted(knots, u.detach().double(), right=True) - 1
        return i.clamp(0, len(self.knots) - 2), u

    def time(self, u):
        """Forward time ``t`` at reverse time ``u`` (a float or tensor of any shape)."""
        if self.monotone:
            return self.t_start - u
        i, u = self._segment(u)
        t0 = torch.from_numpy(self.knot_times).to(u.device)[i]
        up = torch.from_numpy(np.sign(np.diff(self.knot_times))).to(u.device)[i]
        return (t0 + up * (u.double() - torch.from_numpy(self.knots).to(u.device)[i])).to(u.dtype)

    def speed(self, u):
        """``-dt/du``: None (1) on a schedule; ``-1`` on the rising pieces of a path."""
        if self.monotone:
            return None
        i, u = self._segment(u)
        down = torch.from_numpy(-np.sign(np.diff(self.knot_times))).to(u.device)
        return down[i].to(u.dtype)

    def knot_index(self, u) -> int:
        """The index ``i`` of the knot nearest to reverse time ``u`` (a float or 0-d tensor:
        knots reach the methods rounded to the state's dtype)."""
        u = float(u)
        i = int(np.searchsorted(self.knots, u))
        if i == len(self.knots) or (i > 0 and u - self.knots[i - 1] < self.knots[i] - u):
            i -= 1
        return i

    # --- structure --------------------------------------------------------------------------
    def _shape(self, y):
        return self.shape if self.shape is not None else (y.shape[-1],)

    def score_at(self, y, t):
        return _flat_score(self.score_fn, self._shape(y), y, torch.as_tensor(t).to(y))

    def score(self, u, y):
        """Score ``grad log p_t`` at ``t = time(u)``, flattened: ``(batch, state)``."""
        return self.score_at(y, self.time(u))

    def alpha(self, u):
        return self.forward_sde.alpha(self.time(u))

    def sigma(self, u):
        return self.forward_sde.sigma(self.time(u))

    def data_prediction(self, u, y):
        """Tweedie's denoiser ``E[x_0 | x_t = y]`` at ``t = time(u)``."""
        return self.data_at_time(self.time(u), y)

    def data_at_knot(self, i: int, y):
        """Tweedie's denoiser at knot ``i``, from the knot table (no time arithmetic)."""
        b = y.shape[0]
        key = (b, y.dtype, y.device)
        if key not in self._times:  # every knot's time, built once: (knots, batch)
            t = torch.as_tensor(self.knot_times, dtype=y.dtype, device=y.device)
            self._times[key] = t[:, None].expand(-1, b)
        score = self.score_fn(y.reshape(b, *self._shape(y)), self._times[key][i]).reshape(b, -1)
        s2, a = float(self.knot_sigma[i]) ** 2, float(self.knot_alpha[i])
        return torch.add(y, score, alpha=s2).div_(a)

    def data_at_time(self, t, y):
        """Tweedie's denoiser at forward time ``t`` (any ``t``, not only knots)."""
        t = torch.as_tensor(t).to(y)
        return tweedie(y, self.score_at(y, t), self.forward_sde.alpha(t), self.forward_sde.sigma(t))

    def data_from_drift(self, u, y, drift):
        """The data prediction at ``(u, y)`` recovered from the drift ``f(u, y)`` already
        evaluated there (``drift = k (c g^2 score - f_fwd)``), without a score evaluation."""
        t, k = self._time_and_speed(u, y)
        f_fwd, g = self._forward.f_and_g(t, y, None)
        drift = drift if k is None else drift / k
        score = (drift + f_fwd) / (self._c * g * g)
        return tweedie(y, score, self.forward_sde.alpha(t).to(y), self.forward_sde.sigma(t).to(y))


def _as_knots(path) -> np.ndarray:
    knots = torch.as_tensor(path).detach().to("cpu", torch.float64).reshape(-1).numpy()
    if knots.size < 2 or not np.isfinite(knots).all() or (np.diff(knots) == 0).any():
        raise ValueError(
            f"path must hold 2 or more finite, distinct consecutive times; got {knots}"
        )
    return knots


class PredictorCorrectorSDE(SDE):
    """Reverse-diffusion predictor + Langevin corrector as one SDE on unit time intervals.

    With the ``n`` knot intervals of ``reverse`` and ``m`` corrector steps each, time runs over
    ``[0, n (m + 1)]``; Euler-Maruyama with ``dt = 1`` takes, on interval ``k``:

    - ``k mod (m + 1) == 0``: the Euler-Maruyama predictor of ``reverse`` from knot ``u_i`` to
      ``u_{i+1}`` (drift ``f du_i``, diffusion ``g sqrt(du_i)``);
    - otherwise a Langevin step at ``u_{i+1}``: drift ``e s``, diffusion ``sqrt(2 e)``, with
      ``e = 2 (snr E|z| / mean_batch |s|)^2`` (Song et al.'s step size from batch-mean norms,
      the noise norm replaced by its expectation ``E|z|`` for ``z ~ N(0, I_d)`` and the
      discrete ``alpha_i`` by 1).
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, reverse: ReverseSDE, snr: float = 0.16, corrector_steps: int = 1):
        super().__init__()
        if reverse.probability_flow:
            raise ValueError("PredictorCorrectorSDE needs a reverse SDE, not a probability flow")
        self.reverse = reverse
        self.n = len(reverse.knots) - 1
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
        u = torch.tensor(self.reverse.knots[min(i + 1, self.n)], dtype=y.dtype)
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
            u = torch.tensor(self.reverse.knots[i], dtype=y.dtype)
            du = float(self.reverse.knots[i + 1] - self.reverse.knots[i])
            f, g = self.reverse.f_and_g(u, y)
            return f * du, g * math.sqrt(du)
        s, e = self._langevin_step(i, y)
        return e * s, torch.sqrt(2 * e) * torch.ones_like(y)
