"""Log-densities along a sampling path (the Itô density estimator) and the superposition of
trained models (Skreta et al., ICLR 2025, "The Superposition of Diffusion Models Using the
Itô Density Estimator").

For a forward SDE ``dx = f(t, x) dt + g(t) dW`` with marginals ``q_t``, and a path ``x_u``
that runs backwards in forward time (``t = t(u)`` decreasing) with noise ``g`` (the reverse
SDE, sampled by Euler-Maruyama), Itô's formula and the Fokker-Planck equation give

    d log q_t(x_u) = <dx_u, s> + (div f + <f - g^2 s / 2, s>) (-dt),   s = grad log q_t(x_u),

with no divergence of the score: the Laplacian of ``log q`` from the Fokker-Planck equation
cancels the Itô correction exactly when the path's noise is ``g``. Summed over the steps of
a sampler from ``log q_T(x_T)`` (the prior's density), with the score at each step's start,
it estimates ``log q_eps`` at the last state for the price of the scores the sampler already
evaluates. :class:`PathDensity` does the bookkeeping from the score calls themselves, so any
sampler that evaluates the score once per step at the step's start state (Euler-Maruyama on
the reverse SDE) carries it.
"""

from __future__ import annotations

import math
import numbers

import torch

from neuralsde.data.validation import as_float_tensor

__all__ = ["PathDensity", "superpose"]

LOGP_METHODS = ("euler",)  # samplers whose noise is the forward SDE's diffusion g


class PathDensity:
    """A score function that also tracks ``log q_t`` of the states it is called at.

    Args:
        score_fn: ``(x: (B, *shape), t: (B,)) -> score``.
        sde: the forward SDE (``f = drift_coef(t) x``, ``g = diffusion(t)``).

    Call it as the score; after sampling, :meth:`finish` with the last state gives the
    log-density estimates ``(B,)``. Each call at a new time first adds the increment from the
    previous call (its state, time and score) to the running ``log q``; the first call (at
    ``t = T``) starts from the prior's log-density.
    """

    def __init__(self, score_fn, sde):
        self.score_fn, self.sde = score_fn, sde
        self.logp = None  # (B,) float64
        self.last_step = None  # (B,) the forward time between the last two calls
        self._last = None  # (x, t, score) of the previous call
        self._finished = False

    def _advance(self, x, t) -> None:
        x64 = x.detach().reshape(x.shape[0], -1).double()
        if self._last is None:
            self.logp = self.sde.prior_logp(x64)
            return
        x0, t0, s0 = self._last
        h = (t0 - t.double()).reshape(-1)  # forward time elapsed backwards, > 0
        self.last_step = h
        k, g = self.sde.drift_coef(t0).double(), self.sde.diffusion(t0).double()
        f0 = k.reshape(-1, 1) * x0
        d = x0.shape[1]
        div_f = k.reshape(-1) * d
        drift = div_f + (s0 * (f0 - 0.5 * g.reshape(-1, 1) ** 2 * s0)).sum(-1)
        self.logp = self.logp + (s0 * (x64 - x0)).sum(-1) + drift * h

    def __call__(self, x, t):
        t = torch.as_tensor(t).reshape(-1).expand(x.shape[0])
        if self._finished:
            return self.score_fn(x, t)
        if self._last is None or bool((t.double() < self._last[1]).all()):
            self._advance(x, t)
        elif not bool((t.double() == self._last[1]).all()) or not torch.equal(
            x.detach().reshape(x.shape[0], -1).double(), self._last[0]
        ):
            raise ValueError(
                "the sampler evaluated the score twice in one step (or back in time): the Itô "
                "density estimator needs one evaluation per step, along the path (euler)"
            )
        s = self.score_fn(x, t)
        self._last = (x.detach().reshape(x.shape[0], -1).double(), t.double(),
                      s.detach().reshape(x.shape[0], -1).double())  # fmt: skip
        return s

    def finish(self, x, t) -> torch.Tensor:
        """``log q_t(x)`` estimates ``(B,)`` at the last state ``x`` (forward time ``t``)."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(x.shape[0])
        if self._last is not None and bool((t < self._last[1]).all()):
            self._advance(x, t)
        self._finished = True  # a score call after this (a final denoising step) adds nothing
        return self.logp


def superpose(models, mode: str = "or", temperature: float = 1.0, bias=None, sde=None):
    """A score function that combines trained models without retraining (SuperDiff).

    Every model's log-density is tracked along the shared sampling path with the Itô
    estimator, and the scores are mixed with weights ``kappa``:

    * ``"or"``: ``kappa = softmax(temperature * log q_i + bias_i)``, sampling the mixture
      ``sum_i q_i`` (with equal biases, and ``temperature=1``);
    * ``"and"``: ``kappa`` solves the linear system that makes the next step's expected
      log-density increments bring every ``log q_i + bias_i`` to a common value, so the path
      stays where all models' densities are equally high.

    Args:
        models: score functions ``(x, t) -> score`` (``ScoreModel`` or exact scores) of the
            same forward SDE; each may carry it as ``.sde``.
        sde: the forward SDE (default: the models' ``.sde``, which must all agree).
        bias: ``(M,)`` log-weights (default 0).

    Use with ``sample(..., method="euler")``.
    """
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"models: superpose needs at least 2 score models; got {len(models)}")
    if mode not in ("or", "and"):
        raise ValueError(f"mode must be 'or' or 'and'; got {mode!r}")
    sde = check_same_sde(models, sde)
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not (math.isfinite(temperature) and temperature > 0)
    ):
        raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
    bias = torch.zeros(len(models)) if bias is None else bias
    bias = as_float_tensor(bias, "bias", torch.float64)
    if bias.shape != (len(models),):
        raise ValueError(f"bias must have shape ({len(models)},); got {tuple(bias.shape)}")
    return Superposition([PathDensity(m, sde) for m in models], sde, mode, float(temperature),
                         bias)  # fmt: skip


def check_same_sde(models, sde=None):
    """The forward SDE shared by ``models`` (their ``.sde`` and ``sde``, when given, must
    have equal configs); ValueError names the first that differs."""
    own = [(i, m.sde) for i, m in enumerate(models) if hasattr(m, "sde")]
    if sde is None and not own:
        raise ValueError("sde: the models carry no .sde; pass the forward SDE as sde=")
    ref = sde if sde is not None else own[0][1]
    for i, other in own:
        if other.config() != ref.config():
            raise ValueError(
                f"models[{i}] was trained for another forward SDE ({other.config()}) than "
                f"{ref.config()}: superposed models must share one SDE"
            )
    return ref


class Superposition:
    """The score of :func:`superpose` (one instance per sampling run)."""

    def __init__(self, trackers, sde, mode, temperature, bias):
        self.trackers, self.sde, self.mode = trackers, sde, mode
        self.temperature, self.bias = temperature, bias
        self.kappa = None

    def __call__(self, x, t):
        scores = torch.stack([tr(x, t) for tr in self.trackers])  # (M, B, *shape)
        logp = torch.stack([tr.logp for tr in self.trackers], -1)  # (B, M)
        if self.mode == "or":
            kappa = torch.softmax(self.temperature * logp + self.bias, -1)
        else:
            kappa = self._and_weights(scores, logp, x, t)
        self.kappa = kappa.detach()
        view = (kappa.shape[-1], kappa.shape[0]) + (1,) * (x.dim() - 1)
        return (kappa.T.reshape(view).to(scores.dtype) * scores).sum(0)

    def _and_weights(self, scores, logp, x, t):
        """``kappa (B, M)`` with ``sum kappa = 1`` and equal predicted ``log q_i + bias_i``
        after a step of the reverse SDE's drift (least squares when the system is singular).

        With ``dx = (g^2 sum_j kappa_j s_j - f) h``, the increment of model ``i`` is
        ``h (g^2 sum_j kappa_j <s_i, s_j> + div f - g^2 |s_i|^2 / 2)`` (the ``<f, s_i>``
        terms cancel). Equal increments keep equal levels equal (all models start from the
        same prior); the gap the noise opens is closed over the next step, whose length is
        taken to be the last one's.
        """
        s = scores.reshape(scores.shape[0], scores.shape[1], -1).double()  # (M, B, D)
        gram = torch.einsum("ibd,jbd->bij", s, s)  # (B, M, M)
        half = 0.5 * torch.diagonal(gram, dim1=-2, dim2=-1)  # (B, M)
        level = logp + self.bias
        m = s.shape[0]
        h = self.trackers[0].last_step
        gain = 0.0
        if h is not None:
            g2h = self.sde.diffusion(t.double()).double().reshape(-1) ** 2 * h
            gain = (1.0 / g2h).unsqueeze(-1)
        # rows 0..M-2: (increment_i + level_i) - (increment_{M-1} + level_{M-1}) = 0
        a = gram[:, :-1, :] - gram[:, -1:, :]  # (B, M-1, M)
        rhs = (half[:, :-1] - half[:, -1:]) - gain * (level[:, :-1] - level[:, -1:])
        ones = torch.ones(a.shape[0], 1, m, dtype=a.dtype)
        a = torch.cat([a, ones], 1)
        rhs = torch.cat([rhs, torch.ones(a.shape[0], 1, dtype=a.dtype)], 1)
        return torch.linalg.lstsq(a, rhs.unsqueeze(-1)).solution.squeeze(-1)
