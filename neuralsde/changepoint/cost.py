"""The segment likelihood of the window SDEs as a ruptures cost, so that ruptures' searches
(Pelt, Binseg, BottomUp, Window, Dynp) segment a series with it.

A segment ``[start, end)`` gets its own SDE ``dz = W^T phi(z, h) dt + diag(sigma) dW`` on the
latent map of the series (:class:`~neuralsde.changepoint.latent_map.LinearLatentMap`),
``phi = [1, z, h]`` (an OU process with memory, as ``WindowSDE(features=0)``) or learned
features from a fitted detector. Its cost is the negative maximised Euler log-likelihood of
the segment's inner transitions ``z_i -> z_{i+1}`` (``start <= i < end - 1``):

    cost = sum_c N/2 log(2 pi e sigma_c^2) + 1/2 sum_i w_i d log dt_i,
    sigma_c^2 = RSS_c / N,  N = sum_i w_i,

with ``W`` the ridge least squares of the module :mod:`~neuralsde.changepoint.dynamics`.
Prefix sums of ``phi phi^T dt``, ``phi dz^T`` and ``dz^2 / dt`` make every ``error`` call
``O(p^3)`` whatever the segment's length. The transition that crosses a breakpoint belongs to
no segment (as in the detector's pooled window); a penalty of ``default_pen`` per breakpoint
(half the chi-square quantile of one segment model's ``dof`` at the detector's level) keeps
Pelt from splitting a stationary series.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from ruptures.base import BaseCost

from neuralsde.changepoint.latent_map import transitions

__all__ = ["SDECost"]


class SDECost(BaseCost):
    """ruptures cost ``model="latent_sde"``: the negative log-likelihood of a segment's own
    fitted SDE (module docstring).

    Args:
        latent_dim: size of the latent map (at most the number of channels).
        ridge: ridge of the drift least squares.
        times: ``(n,)`` increasing time stamps of the signal ruptures will pass (default:
            unit steps).
        features: ``(z, h) -> phi`` (e.g. a fitted ``WindowSDE.features``), or None for
            ``[1, z, h]``.
        min_size: the shortest segment (default ``2 (p + 1)`` observations, ``p`` the drift
            features: each segment needs more transitions than parameters).

    Example:
        >>> import numpy as np, ruptures as rpt
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(0, 1, 200), rng.normal(0, 3, 100)])
        >>> cost = SDECost(latent_dim=1)
        >>> rpt.Binseg(custom_cost=cost, jump=1).fit(x).predict(n_bkps=1)[0] in range(190, 211)
        True
    """

    model = "latent_sde"

    def __init__(self, latent_dim=4, ridge=1e-3, times=None, features=None, min_size=None):
        self.latent_dim, self.ridge, self.times = latent_dim, float(ridge), times
        self.feature_fn, self._min_size = features, min_size

    @property
    def min_size(self) -> int:
        if self._min_size is not None:
            return int(self._min_size)
        return 2 * (getattr(self, "p_", 1 + 2 * self.latent_dim) + 1)

    @property
    def dof(self) -> int:
        """Free parameters of one segment's SDE: drift coefficients and diffusions."""
        return self.d_ * (self.p_ + 1)

    def default_pen(self, alpha: float = 0.01) -> float:
        """Half the chi-square(``dof``) quantile at ``alpha / n`` (nats per breakpoint)."""
        from scipy.stats import chi2

        return 0.5 * float(chi2.isf(alpha / self.n_, self.dof))

    def fit(self, signal) -> SDECost:
        """Prefix sums of the signal's transitions: ``signal: (n,)`` or ``(n, channel)``."""
        x = np.asarray(signal, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or len(x) < 3:
            raise ValueError(f"signal must be (n,) or (n, channel) with n >= 3; got {x.shape}")
        n = len(x)
        t = np.arange(n, dtype=np.float64) if self.times is None else np.asarray(self.times, float)
        if t.shape != (n,) or not (np.diff(t) > 0).all():
            raise ValueError(f"times must be ({n},) and strictly increasing; got shape {t.shape}")
        z, dz, dt, valid, h, _ = transitions(t, x, self.latent_dim, torch.float64)
        if self.feature_fn is None:
            phi = torch.cat([torch.ones_like(z[:-1, :1]), z[:-1], h], -1)
        else:
            with torch.no_grad():
                phi = self.feature_fn(z[:-1].float(), h.float()).double()
        w = valid.unsqueeze(-1)

        def prefix(a):
            return torch.cat([torch.zeros_like(a[:1]), a.cumsum(0)], 0)

        self.gram_ = prefix((w * dt.unsqueeze(-1)).unsqueeze(-1) * phi.unsqueeze(-1)
                            * phi.unsqueeze(-2))  # fmt: skip
        self.cross_ = prefix(w.unsqueeze(-1) * phi.unsqueeze(-1) * dz.unsqueeze(-2))
        self.sq_ = prefix(w * dz.square() / dt.unsqueeze(-1))
        self.count_ = prefix(valid)
        self.logdt_ = prefix(valid * dt.log())
        self.n_, self.d_, self.p_ = n, z.shape[1], phi.shape[1]
        self.signal = x
        return self

    def error(self, start, end) -> float:
        """Cost of the segment ``[start, end)`` (its ``end - start - 1`` inner transitions)."""
        if end - start < self.min_size:
            raise ValueError(f"segment [{start}, {end}) is shorter than min_size={self.min_size}")
        a, b = start, end - 1
        n_obs = float(self.count_[b] - self.count_[a])
        if n_obs < self.p_ + 1:
            return 0.0 if n_obs == 0 else math.inf
        gram = self.gram_[b] - self.gram_[a]
        cross = self.cross_[b] - self.cross_[a]
        coef = torch.linalg.solve(gram + self.ridge * torch.eye(self.p_, dtype=gram.dtype), cross)
        rss = (self.sq_[b] - self.sq_[a] - 2 * (coef * cross).sum(0)
               + (coef * (gram @ coef)).sum(0))  # fmt: skip
        var = (rss / n_obs).clamp_min(1e-12)
        logdt = float(self.logdt_[b] - self.logdt_[a])
        return float(0.5 * n_obs * (torch.log(2 * math.pi * var) + 1).sum()
                     + 0.5 * self.d_ * logdt)  # fmt: skip
