"""SDE transforms: each takes SDE objects and returns a new SDE for ``solve``.

- :func:`controlled`: a posterior written as its prior plus a Brownian control,
  ``f = f_prior + g u``;
- :func:`logqp`: appends the path-KL channel of a posterior against its prior;
- :func:`reverse`: the time reversal of a forward SDE given its score.

Transforms that augment the state share one interface: ``augment(y0, generator=None)`` builds
the initial augmented state and ``split(ys)`` returns its named parts (``state`` first, then,
e.g., ``ou`` for fractional noise and ``kl``), so that no caller slices state columns. They
pass ``args`` on to the SDEs they wrap, and their parts' ``precompute`` hooks are called
once per solve (:func:`precompute_parts`).
"""

from __future__ import annotations

from collections import namedtuple
from functools import cache
from typing import NamedTuple

import torch

from .sde import SDE, Terms, g_prod


# ----------------------------------------------------------------- the shared interface
@cache
def _parts_type(names: tuple[str, ...]):
    return namedtuple("Parts", names)


def parts(**named):
    """A named tuple of state parts: ``parts(state=x, kl=k).kl``; unpacks like a tuple."""
    return _parts_type(tuple(named))(**named)


def augment(sde, y0: torch.Tensor, generator=None) -> torch.Tensor:
    """``sde.augment(y0, generator)`` for a state-augmenting SDE, else ``y0`` itself."""
    fn = getattr(sde, "augment", None)
    return y0 if fn is None else fn(y0, generator)


def split(sde, ys: torch.Tensor):
    """``sde.split(ys)`` for a state-augmenting SDE, else ``parts(state=ys)``."""
    fn = getattr(sde, "split", None)
    return parts(state=ys) if fn is None else fn(ys)


class PartArgs(NamedTuple):
    """The ``args`` of each part of a composite SDE after the parts' ``precompute`` hooks."""

    parts: tuple


def precompute_parts(grid, args, *components):
    """Call each component's ``precompute(grid, args)`` hook; return ``args`` unchanged when
    none has one, else :class:`PartArgs` with one entry per component."""
    hooks = [getattr(c, "precompute", None) for c in components]
    if all(h is None for h in hooks):
        return args
    return PartArgs(tuple(args if h is None else h(grid, args) for h in hooks))


def part_args(args, k: int):
    """The ``args`` of component ``k`` (see :func:`precompute_parts`)."""
    return args.parts[k] if isinstance(args, PartArgs) else args


def equivalent(a, b) -> bool:
    """Whether two SDE objects are the same SDE (the same object, or transforms that say so)."""
    if a is b:
        return True
    same = getattr(a, "same_sde", None)
    return bool(same is not None and same(b))


# ----------------------------------------------------------------- controlled
class Controlled(SDE):
    """``dy = [f_prior(t, y) + g(t, y) u(t, y)] dt + g(t, y) dW``: a posterior whose drift is
    its prior's shifted by a Brownian control ``u`` (Girsanov's form).

    ``control(t, y, args, f, g) -> u: (batch, brownian)`` sees the prior's drift ``f`` and
    diffusion ``g`` at ``(t, y)``, already evaluated. It may carry a ``precompute(grid, args)``
    hook of its own. :func:`logqp` integrates ``0.5 |u|^2`` directly from it.
    """

    def __init__(self, prior, control):
        super().__init__(noise_type=prior.noise_type, sde_type=prior.sde_type)
        if not callable(control):
            raise TypeError(f"control must be callable; got {type(control).__name__}")
        self.prior, self.control = prior, control
        self._prior = Terms(prior)
        self.batched_time = bool(getattr(prior, "batched_time", False))

    def f_g_u(self, t, y, args=None):
        """Drift, diffusion and control at ``(t, y)``."""
        f, g = self._prior.f_and_g(t, y, part_args(args, 0))
        u = self.control(t, y, part_args(args, 1), f, g)
        return f + g_prod(self.noise_type, g, u), g, u

    def f_and_g(self, t, y, args=None):
        f, g, _ = self.f_g_u(t, y, args)
        return f, g

    def f(self, t, y, args=None):
        return self.f_g_u(t, y, args)[0]

    def g(self, t, y, args=None):
        return self._prior.g(t, y, part_args(args, 0))

    def precompute(self, grid, args):
        return precompute_parts(grid, args, self.prior, self.control)

    def augment(self, y0, generator=None):
        return augment(self.prior, y0, generator)

    def split(self, ys):
        return split(self.prior, ys)


def controlled(prior, control) -> Controlled:
    """The SDE ``prior`` with its Brownian motion's drift shifted by ``control``; see
    :class:`Controlled`.

    Example:
        >>> import torch
        >>> from neuralsde import SDE, controlled, logqp, solve
        >>> class BM(SDE):
        ...     def f(self, t, y):
        ...         return torch.zeros_like(y)
        ...     def g(self, t, y):
        ...         return torch.ones_like(y)
        >>> prior = BM()
        >>> post = controlled(prior, lambda t, y, args, f, g: torch.full_like(y, 2.0))
        >>> sde = logqp(post, prior)
        >>> ys = solve(sde, sde.augment(torch.zeros(3, 1)), torch.tensor([0.0, 1.0]))
        >>> sde.split(ys).kl[-1]  # 0.5 |u|^2 over [0, 1]
        tensor([2., 2., 2.])
    """
    return Controlled(prior, control)


# ----------------------------------------------------------------- logqp
class LogQP(SDE):
    """Posterior SDE augmented with the path-KL channel (Li et al. 2020).

    State ``[state..., kl]`` with ``d kl = 0.5 |u|^2 dt`` and zero noise, where ``g u`` is the
    difference of the posterior's and the prior's drifts. By Girsanov, ``E[kl(T)]`` is the KL
    divergence between the path measures of the posterior and the prior when both share the
    diffusion ``g``. A :class:`Controlled` posterior of this prior gives ``u`` directly (any
    noise type, no prior evaluation); otherwise the noise must be diagonal or scalar and
    ``u = (f_post - f_prior) / g``.
    """

    def __init__(self, posterior, prior):
        self.direct = isinstance(posterior, Controlled) and equivalent(posterior.prior, prior)
        if not self.direct and posterior.noise_type not in ("diagonal", "scalar"):
            raise ValueError(
                f"logqp needs diagonal or scalar noise, or a posterior built as "
                f"controlled(prior, u); got noise_type={posterior.noise_type!r}"
            )
        super().__init__(noise_type=posterior.noise_type, sde_type=posterior.sde_type)
        self.posterior, self.prior = posterior, prior
        self._post, self._prior = Terms(posterior), Terms(prior)
        parts_ = (posterior,) if self.direct else (posterior, prior)
        self.batched_time = all(getattr(p, "batched_time", False) for p in parts_)

    def f_and_g(self, t, yk, args=None):
        y = yk[:, :-1]
        pa = part_args(args, 0)
        if self.direct:
            f, g, u = self.posterior.f_g_u(t, y, pa)
        else:
            f, g = self._post.f_and_g(t, y, pa)
            h = self._prior.f(t, y, part_args(args, 1))
            u = (f - h) / (g.squeeze(-1) if self.noise_type == "scalar" else g)
        kl = 0.5 * (u * u).sum(-1, keepdim=True)
        if g.dim() == 3:
            zero = g.new_zeros(g.shape[0], 1, g.shape[2])
            return torch.cat([f, kl], -1), torch.cat([g, zero], -2)
        return torch.cat([f, kl], -1), torch.cat([g, torch.zeros_like(kl)], -1)

    def f(self, t, yk, args=None):
        return self.f_and_g(t, yk, args)[0]

    def g(self, t, yk, args=None):
        return self.f_and_g(t, yk, args)[1]

    def precompute(self, grid, args):
        if self.direct:
            return precompute_parts(grid, args, self.posterior)
        return precompute_parts(grid, args, self.posterior, self.prior)

    def augment(self, y0, generator=None):
        """``y0: (batch, state)`` -> the posterior's augmented state plus ``kl = 0``."""
        inner = augment(self.posterior, y0, generator)
        return torch.cat([inner, inner.new_zeros(inner.shape[0], 1)], -1)

    def split(self, ys):
        """Named parts: the posterior's parts, then ``kl`` (``(..., batch)``)."""
        inner = split(self.posterior, ys[..., :-1])
        return parts(**inner._asdict(), kl=ys[..., -1])


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
        >>> y0 = aug.augment(torch.zeros(4, 2))  # appends the KL channel, 0 at the start
        >>> solve(aug, y0, torch.tensor([0.0, 1.0])).shape
        torch.Size([2, 4, 3])
    """
    return LogQP(posterior, prior)


# ----------------------------------------------------------------- reverse
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
    sampling schedules), and the score call by overriding :meth:`score_at`. Build one with
    :func:`reverse`.
    """

    def __init__(self, sde, score_fn, T: float = 1.0, probability_flow: bool = False,
                 sde_type="ito"):  # fmt: skip
        # the diffusion is state-independent, so the Ito and Stratonovich forms coincide
        super().__init__(noise_type=sde.noise_type, sde_type=sde_type)
        if sde.sde_type != "ito":
            raise ValueError(f"reverse needs an Ito forward SDE; got sde_type={sde.sde_type!r}")
        if not callable(score_fn):
            raise TypeError(f"score_fn must be callable (x, t) -> score; got {type(score_fn)!r}")
        self.forward_sde, self.score_fn, self.T = sde, score_fn, float(T)
        self._forward = Terms(sde)
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

    def f_and_g(self, s, x, args=None):
        t, k = self._time_and_speed(s, x)
        f, g = self._forward.f_and_g(t, x, args)
        drift = self._c * diffusion_times_score(self.noise_type, g, self.score_at(x, t)) - f
        return (drift if k is None else drift * k), self._diffusion(g, k)

    def f(self, s, x, args=None):
        return self.f_and_g(s, x, args)[0]

    def g(self, s, x, args=None):
        # no score evaluation: the diffusion does not need it
        t, k = self._time_and_speed(s, x)
        return self._diffusion(self._forward.g(t, x, args), k)


def reverse(sde, score, T: float | None = None, probability_flow: bool = False, **options):
    """The reverse-time SDE (or probability-flow ODE) of ``sde`` on ``[0, T]``, as an SDE in
    reverse time for ``solve``: the one constructor of reverse-time SDEs.

    A forward SDE may name its own reverse-time class as ``sde.reverse_class`` (the diffusion
    SDEs do, adding sampling schedules and the data prediction; ``options`` go to it);
    otherwise :class:`Reverse` is used, in ``s = T - t``. ``T`` defaults to ``sde.T`` or 1.

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
    cls = getattr(sde, "reverse_class", Reverse)
    T = float(getattr(sde, "T", 1.0)) if T is None else float(T)
    return cls(sde, score, T=T, probability_flow=probability_flow, **options)
