"""Neural SDE dynamics for many windows at once: a drift that is linear in shared, learned
features of the state, with per-window coefficients solved in closed form, and a per-window
diagonal diffusion; all windows are fitted jointly by the Euler-Maruyama transition likelihood
on the (irregular) observation grid."""

from __future__ import annotations

import torch
from torch import nn

from neuralsde.core.sde import SDE


class WindowSDE(SDE):
    """A batch of latent SDEs, one per window ``k``:

    ``dz = W_k^T phi(z, h) dt + diag(sigma_k) dW``,  ``phi = [1, z, h, MLP(z, h)]``,

    where the MLP (``features`` outputs, tanh) is shared by all windows, ``W_k: (p, latent)``
    and ``sigma_k: (latent,)`` belong to window ``k``. ``h`` is a memory input: the last
    observed latent increment scaled by ``1/sqrt(gap)``, a control through which the drift
    depends on the observed past (as in a controlled / stable neural SDE, ``f(t, z, X(t))``);
    it lets the drift represent the increment correlation of fractional noise and second-order
    (oscillator) dynamics. With ``features=0`` each window is a linear SDE (an OU process with
    memory). A window model has ``dof = latent * (p + 1)`` free parameters (``p`` drift
    coefficients per channel, and the diffusion), ``p = 1 + 2 latent + features``.

    Given ``phi``, the maximum-likelihood ``W_k`` is a weighted least-squares solve
    (``fit_heads``) and ``sigma_k`` the mean squared residual (``profile_sigma``), so gradient
    training only touches the shared MLP.

    As an SDE object (the torchsde protocol) the batch index is the window: ``f(t, z)`` takes
    ``z: (windows, latent)`` and uses ``self.history: (windows, latent)`` (zeros if unset).

    Example:
        >>> import torch
        >>> sde = WindowSDE(n_windows=3, latent_dim=2, features=2)
        >>> sde.f(torch.tensor(0.0), torch.zeros(3, 2)).shape, sde.g(None, torch.zeros(3, 2)).shape
        (torch.Size([3, 2]), torch.Size([3, 2]))
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, n_windows: int, latent_dim: int, features: int = 2, hidden: int = 16):
        super().__init__()
        self.n_features = features
        self.net = (
            nn.Sequential(
                nn.Linear(2 * latent_dim, hidden),
                nn.Tanh(),
                nn.Linear(hidden, features),
                nn.Tanh(),
            )
            if features > 0
            else None
        )
        p = 1 + 2 * latent_dim + features
        self.register_buffer("coef", torch.zeros(n_windows, p, latent_dim))
        self.register_buffer("log_sigma", torch.zeros(n_windows, latent_dim))
        self.history: torch.Tensor | None = None

    @property
    def dof(self) -> int:
        """Free parameters of one window's SDE: drift coefficients plus diffusions."""
        p, d = self.coef.shape[1:]
        return d * (p + 1)

    def features(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``phi(z, h)``: ``z, h: (..., latent)`` -> ``(..., 1 + 2 latent + features)``."""
        parts = [torch.ones_like(z[..., :1]), z, h]
        if self.net is not None:
            parts.append(self.net(torch.cat([z, h], -1)))
        return torch.cat(parts, -1)

    def drift(self, z: torch.Tensor, h: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """Drift of windows ``window: (K,)`` at ``z, h: (K, steps, latent)`` -> same shape."""
        return self.features(z, h) @ self.coef[window]

    def f(self, t, y):
        h = torch.zeros_like(y) if self.history is None else self.history
        return self.drift(y.unsqueeze(1), h.unsqueeze(1), torch.arange(y.shape[0])).squeeze(1)

    def g(self, t, y):
        return self.log_sigma.exp().expand_as(y)


def fit_heads(
    phi: torch.Tensor, dz: torch.Tensor, dt: torch.Tensor, weight: torch.Tensor, ridge: float
) -> torch.Tensor:
    """Per-window maximum-likelihood drift coefficients of the Euler transition density.

    Maximising ``sum_i w_i log N(dz_i; W^T phi_i dt_i, sigma^2 dt_i)`` over ``W`` is the weighted
    least squares ``min sum_i w_i dt_i |dz_i / dt_i - W^T phi_i|^2`` (independent of sigma for
    diagonal noise), solved with a small ridge. Shapes: ``phi: (K, T, p)``, ``dz: (K, T, d)``,
    ``dt, weight: (K, T)`` -> ``(K, p, d)``.
    """
    wd = (weight * dt).unsqueeze(-1)
    gram = phi.transpose(1, 2) @ (wd * phi)
    rhs = phi.transpose(1, 2) @ (weight.unsqueeze(-1) * dz)
    eye = torch.eye(phi.shape[-1], dtype=phi.dtype)
    return torch.linalg.solve(gram + ridge * eye, rhs)


def profile_sigma(resid: torch.Tensor, dt: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Maximum-likelihood diffusion of each window given the drift residuals.

    ``sigma_k^2 = sum_i w_i r_i^2 / dt_i / sum_i w_i``. Shapes: ``resid: (windows, steps,
    latent)``, ``dt, weight: (windows, steps)`` -> ``(windows, latent)``.
    """
    num = (weight.unsqueeze(-1) * resid.square() / dt.unsqueeze(-1)).sum(1)
    return (num / weight.sum(1, keepdim=True).clamp_min(1.0)).clamp_min(1e-10).sqrt()


def _profile_nll(sde, z, h, dz, dt, weight, ridge):
    phi = sde.features(z, h)
    coef = fit_heads(phi, dz, dt, weight, ridge)
    resid = dz - (phi @ coef) * dt.unsqueeze(-1)
    sigma = profile_sigma(resid, dt, weight)
    # profiled Euler NLL, up to constants: 1/2 n_k sum_c log sigma_kc^2
    nll = (weight.sum(1, keepdim=True) * sigma.log()).sum() / weight.sum().clamp_min(1.0)
    return nll, coef, sigma


def train_features(
    sde: WindowSDE,
    z: torch.Tensor,
    h: torch.Tensor,
    dz: torch.Tensor,
    dt: torch.Tensor,
    weight: torch.Tensor,
    epochs: int,
    lr: float = 0.01,
    ridge: float = 1e-3,
    progress: bool = False,
) -> list[float]:
    """Train the shared feature MLP by Adam on the profile negative log-likelihood of blocks.

    Inputs are gathered per block: ``z, h, dz: (blocks, steps, latent)``; ``dt, weight:
    (blocks, steps)`` (weight 0 masks a transition). Each block's drift coefficients and
    diffusion are solved in closed form inside the loss, so only the MLP gets gradients. The
    blocks should be long (the detector uses non-overlapping blocks of several windows): the
    features then describe dynamics shared across the series instead of fitting the noise of
    one short window, and the per-window likelihood ratio keeps its chi-square calibration.
    """
    from tqdm.auto import tqdm

    losses: list[float] = []
    if sde.net is None:
        return losses
    opt = torch.optim.Adam(sde.net.parameters(), lr=lr)
    for _ in tqdm(range(epochs), disable=not progress, desc="SDE features", leave=False):
        opt.zero_grad()
        loss = _profile_nll(sde, z, h, dz, dt, weight, ridge)[0]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def fit_windows(
    sde: WindowSDE,
    z: torch.Tensor,
    h: torch.Tensor,
    dz: torch.Tensor,
    dt: torch.Tensor,
    weight: torch.Tensor,
    ridge: float = 1e-3,
) -> float:
    """Maximum-likelihood drift coefficients and diffusion of every window (closed form), stored
    in ``sde.coef: (windows, p, latent)`` and ``sde.log_sigma: (windows, latent)``. Inputs as in
    ``train_features`` with one row per window. Returns the profile loss."""
    loss, coef, sigma = _profile_nll(sde, z, h, dz, dt, weight, ridge)
    sde.coef = coef
    sde.log_sigma = sigma.log()
    return loss.item()
