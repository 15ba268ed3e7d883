"""SDE transforms: each takes SDE objects and returns a new SDE for ``solve``."""

from __future__ import annotations

import torch

from .sde import SDE, f_and_g


class LogQP(SDE):
    """Posterior SDE augmented with the path-KL channel (Li et al. 2020).

    State ``[y, kl]`` of shape (batch, state + 1) with
    ``d kl = 0.5 |(f_post(t, y) - f_prior(t, y)) / g(t, y)|^2 dt`` and zero noise. By
    Girsanov, ``E[kl(T)]`` is the KL divergence between the path measures of the
    posterior and the prior when both share the diffusion ``g``. Diagonal or scalar noise.
    """

    def __init__(self, posterior, prior):
        if posterior.noise_type not in ("diagonal", "scalar"):
            raise ValueError(
                f"logqp needs diagonal or scalar noise; got noise_type={posterior.noise_type!r}"
            )
        super().__init__(noise_type=posterior.noise_type, sde_type=posterior.sde_type)
        self.posterior, self.prior = posterior, prior

    def f_and_g(self, t, yk):
        y = yk[:, :-1]
        f, g = f_and_g(self.posterior, t, y)
        h = self.prior.f(t, y)
        gs = g.squeeze(-1) if self.noise_type == "scalar" else g
        u = (f - h) / gs
        kl = 0.5 * (u * u).sum(-1, keepdim=True)
        zero = torch.zeros_like(kl)
        if self.noise_type == "scalar":
            zero = zero.unsqueeze(-1)
        return torch.cat([f, kl], -1), torch.cat([g, zero], -2 if g.dim() == 3 else -1)

    def f(self, t, yk):
        return self.f_and_g(t, yk)[0]

    def g(self, t, yk):
        return self.f_and_g(t, yk)[1]


def logqp(posterior, prior) -> LogQP:
    """Return the posterior SDE with an appended path-KL channel (see :class:`LogQP`).

    Example:
        >>> import torch
        >>> from neuralsde import SDE, logqp, solve
        >>> class Drift(SDE):
        ...     def __init__(self, a):
        ...         super().__init__("diagonal", "ito")
        ...         self.a = a
        ...     def f(self, t, y):
        ...         return self.a * y
        ...     def g(self, t, y):
        ...         return torch.ones_like(y)
        >>> aug = logqp(Drift(1.0), Drift(0.0))
        >>> y0 = torch.zeros(4, 3)  # last column starts the KL at 0
        >>> solve(aug, y0, torch.tensor([0.0, 1.0])).shape
        torch.Size([2, 4, 3])
    """
    return LogQP(posterior, prior)


def diffusion_times_score(noise_type: str, g: torch.Tensor, score: torch.Tensor):
    """``g g^T score`` for a diffusion value ``g`` of the given noise type."""
    if noise_type == "diagonal":
        return g * g * score
    if noise_type == "scalar":
        gs = g.squeeze(-1)
        return gs * (gs * score).sum(-1, keepdim=True)
    return torch.bmm(g, torch.bmm(g.transpose(1, 2), score.unsqueeze(-1))).squeeze(-1)


class Reverse(SDE):
    """Time reversal of an Ito SDE whose diffusion does not depend on the state.

    Reverse time ``s`` runs forward while forward time ``t = time(s)`` decreases (by default
    ``t = T - s``), at speed ``k(s) = -dt/ds`` (default 1):

        dx = k(s) [-f + c g g^T score](t, x) ds + sqrt(k(s)) g(t) dW_s,

    with ``c = 1`` for the reverse SDE (Anderson 1982) and ``c = 1/2`` with zero diffusion for
    the probability-flow ODE (Song et al. 2021). ``score_fn(x, t)`` takes ``t`` of shape
    ``(batch,)`` and returns the gradient of ``log p_t`` at ``x``. Subclasses change the time
    map by overriding :meth:`time` and :meth:`speed` (the diffusion samplers do, for their
    sampling schedules), and the score call by overriding :meth:`score_at`.
    """

    def __init__(self, sde, score_fn, T: float, probability_flow: bool = False, sde_type="ito"):
        # the diffusion is state-independent, so the Ito and Stratonovich forms coincide
        super().__init__(noise_type=sde.noise_type, sde_type=sde_type)
        if sde.sde_type != "ito":
            raise ValueError(f"reverse needs an Ito forward SDE; got sde_type={sde.sde_type!r}")
        self.forward_sde, self.score_fn, self.T = sde, score_fn, float(T)
        self.probability_flow = bool(probability_flow)
        self._c = 0.5 if self.probability_flow else 1.0

    def time(self, s):
        """Forward time ``t`` at reverse time ``s``."""
        return self.T - s

    def speed(self, s):
        """``k(s) = -dt/ds``, or ``None`` for 1."""
        return None

    def score_at(self, x, t):
        """``grad log p_t (x): (batch, state)`` for a 0-d or ``(batch,)`` time ``t``."""
        tb = t.expand(x.shape[0]) if torch.is_tensor(t) else torch.full((x.shape[0],), t)
        return self.score_fn(x, tb)

    def _time_and_speed(self, s, x):
        t, k = self.time(s), self.speed(s)
        t = t.to(x.dtype) if torch.is_tensor(t) else t
        k = k.to(x.dtype) if torch.is_tensor(k) else k
        return t, k

    def _diffusion(self, g, k):
        if self.probability_flow:
            return torch.zeros_like(g)
        return g if k is None else g * k**0.5

    def f_and_g(self, s, x):
        t, k = self._time_and_speed(s, x)
        f, g = f_and_g(self.forward_sde, t, x)
        drift = self._c * diffusion_times_score(self.noise_type, g, self.score_at(x, t)) - f
        return (drift if k is None else drift * k), self._diffusion(g, k)

    def f(self, s, x):
        return self.f_and_g(s, x)[0]

    def g(self, s, x):
        # no score evaluation: the diffusion does not need it
        t, k = self._time_and_speed(s, x)
        return self._diffusion(self.forward_sde.g(t, x), k)


def reverse(sde, score, T: float = 1.0, probability_flow: bool = False) -> Reverse:
    """Return the reverse-time SDE (or probability-flow ODE) of ``sde`` on [0, T] as an SDE
    in ``s = T - t`` for ``solve``. See :class:`Reverse`.

    Example:
        >>> import torch
        >>> from neuralsde import SDE, reverse, solve
        >>> class BM(SDE):
        ...     def f(self, t, x):
        ...         return torch.zeros_like(x)
        ...     def g(self, t, x):
        ...         return torch.ones_like(x)
        >>> score = lambda x, t: -x / (1.0 + t[:, None])  # p_t = N(0, 1 + t)
        >>> rev = reverse(BM(), score, T=1.0)
        >>> x1 = torch.randn(4, 2) * 2**0.5
        >>> solve(rev, x1, torch.tensor([0.0, 1.0])).shape
        torch.Size([2, 4, 2])
    """
    return Reverse(sde, score, T, probability_flow)
