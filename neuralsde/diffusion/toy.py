"""Toy data with exact answers: a Gaussian mixture whose score is known at every noise level,
and the two-moons / checkerboard sets used to benchmark trained samplers.

Under a linear forward SDE ``x_t = alpha x_0 + sigma z`` a mixture of Gaussians
``sum_k w_k N(mu_k, S_k)`` stays one: ``sum_k w_k N(alpha mu_k, alpha^2 S_k + sigma^2 I)``.
"""

from __future__ import annotations

import math

import torch


class GaussianMixture:
    """Mixture ``sum_k w_k N(mu_k, S_k)`` in ``d`` dimensions with exact diffused scores.

    ``weights: (K,)``, ``means: (K, d)``, ``covs: (K, d, d)``.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE
        >>> gm = GaussianMixture.default_2d()
        >>> score = gm.score_fn(VPSDE())
        >>> score(torch.zeros(3, 2), torch.full((3,), 0.5)).shape
        torch.Size([3, 2])
    """

    def __init__(self, weights, means, covs, dtype=torch.float64):
        self.weights = torch.as_tensor(weights, dtype=dtype)
        self.means = torch.as_tensor(means, dtype=dtype)
        self.covs = torch.as_tensor(covs, dtype=dtype)
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covs.shape != (k, d, d):
            raise ValueError(
                f"weights (K,), means (K, d), covs (K, d, d) expected; got "
                f"{tuple(self.weights.shape)}, {tuple(self.means.shape)}, {tuple(self.covs.shape)}"
            )
        if not torch.allclose(self.weights.sum(), torch.ones((), dtype=dtype)):
            raise ValueError(f"weights must sum to 1; got sum {float(self.weights.sum())}")
        self.weights = self.weights / self.weights.sum()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @classmethod
    def default_2d(cls, dtype=torch.float64) -> GaussianMixture:
        """Three anisotropic, unequally weighted components in 2-D (the test reference)."""
        means = [[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]]
        covs = [[[0.3, 0.1], [0.1, 0.2]], [[0.15, 0.0], [0.0, 0.4]], [[0.25, -0.1], [-0.1, 0.2]]]
        return cls([0.5, 0.3, 0.2], means, covs, dtype=dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, d)``."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        chol = torch.linalg.cholesky(self.covs)
        z = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype)
        return self.means[comp] + (chol[comp] @ z.unsqueeze(-1)).squeeze(-1)

    def _log_components(self, x, alpha, sigma):
        # alpha^2 S_k + sigma^2 I = U_k (alpha^2 L_k + sigma^2) U_k^T with S_k = U_k L_k U_k^T
        lam, vec = torch.linalg.eigh(self.covs)  # (K, d), (K, d, d)
        ev = alpha[:, None, None] ** 2 * lam + sigma[:, None, None] ** 2  # (B, K, d)
        diff = x[:, None, :] - alpha[:, None, None] * self.means  # (B, K, d)
        proj = torch.einsum("bkd,kde->bke", diff, vec)
        maha = (proj**2 / ev).sum(-1)
        logc = -0.5 * (maha + torch.log(ev).sum(-1) + self.dim * math.log(2 * math.pi))
        sol = torch.einsum("bke,kde->bkd", proj / ev, vec)  # (alpha^2 S + sigma^2 I)^-1 diff
        return logc + torch.log(self.weights), sol

    def log_prob(self, x: torch.Tensor, sde=None, t=None) -> torch.Tensor:
        """``log p_t(x)`` (``log p_0`` when ``sde`` is None). ``x: (B, d)`` -> ``(B,)``."""
        alpha, sigma = self._coefs(x, sde, t)
        logc, _ = self._log_components(x.to(self.means.dtype), alpha, sigma)
        return torch.logsumexp(logc, dim=-1).to(x.dtype)

    def score(self, x: torch.Tensor, sde=None, t=None) -> torch.Tensor:
        """Exact ``grad_x log p_t(x)``: ``x: (B, d)``, ``t: (B,)`` -> ``(B, d)``."""
        alpha, sigma = self._coefs(x, sde, t)
        logc, sol = self._log_components(x.to(self.means.dtype), alpha, sigma)
        resp = torch.softmax(logc, dim=-1)
        return -(resp.unsqueeze(-1) * sol).sum(1).to(x.dtype)

    def denoiser(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """EDM's exact denoiser ``D(x, sigma) = E[x_0 | x_0 + sigma z = x]`` (Tweedie):
        ``x: (B, d)``, ``sigma``: a number or ``(B,)`` -> ``(B, d)``."""
        b, dt = x.shape[0], self.means.dtype
        s = torch.as_tensor(sigma, dtype=dt).reshape(-1).expand(b)
        logc, sol = self._log_components(x.to(dt), torch.ones(b, dtype=dt), s)
        score = -(torch.softmax(logc, dim=-1).unsqueeze(-1) * sol).sum(1)
        return (x.to(dt) + s[:, None] ** 2 * score).to(x.dtype)

    def score_fn(self, sde):
        """The exact score as a ``(x, t) -> score`` callable for ``sample``/``log_likelihood``;
        it refuses ``x`` that is not ``(batch, dim)``."""

        def score(x, t):
            if x.dim() != 2 or x.shape[1] != self.dim:
                raise ValueError(
                    f"x must have shape (batch, {self.dim}) for this {self.dim}-D mixture; "
                    f"got shape {tuple(x.shape)} (check shape)"
                )
            return self.score(x, sde, t)

        return score

    def _coefs(self, x, sde, t):
        b = x.shape[0]
        dt = self.means.dtype
        if sde is None:
            return torch.ones(b, dtype=dt), torch.zeros(b, dtype=dt)
        t = torch.as_tensor(t, dtype=dt).reshape(-1).expand(b)
        return sde.alpha(t).to(dt), sde.sigma(t).to(dt)


def two_moons(
    n: int, noise: float = 0.05, generator: torch.Generator | None = None, dtype=torch.float32
) -> torch.Tensor:
    """Two interleaved half circles, standardised to roughly unit scale: ``(n, 2)``."""
    n1 = n // 2
    n2 = n - n1
    a1 = torch.rand(n1, generator=generator, dtype=torch.float64) * math.pi
    a2 = torch.rand(n2, generator=generator, dtype=torch.float64) * math.pi
    x1 = torch.stack([torch.cos(a1), torch.sin(a1)], -1)
    x2 = torch.stack([1 - torch.cos(a2), 0.5 - torch.sin(a2)], -1)
    x = torch.cat([x1, x2])
    x = x + noise * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    x = (x - torch.tensor([0.5, 0.25], dtype=torch.float64)) / torch.tensor(
        [0.87, 0.5], dtype=torch.float64
    )
    perm = torch.randperm(n, generator=generator)
    return x[perm].to(dtype)


def checkerboard(
    n: int, generator: torch.Generator | None = None, dtype=torch.float32
) -> torch.Tensor:
    """Uniform on the black squares of a 4 x 4 checkerboard on ``[-2, 2]^2``: ``(n, 2)``."""
    x1 = torch.rand(n, generator=generator, dtype=torch.float64) * 4 - 2
    x2_ = (
        torch.rand(n, generator=generator, dtype=torch.float64)
        - torch.randint(0, 2, (n,), generator=generator).to(torch.float64) * 2
    )
    x2 = x2_ + (torch.floor(x1) % 2)
    return torch.stack([x1, x2], -1).to(dtype)
