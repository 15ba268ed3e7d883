"""The map from observed channels to the latent state the window SDEs live in.

A linear map: standardise each channel, then whiten onto the top principal components.
Why linear: when ``latent_dim >= channels`` the map is invertible and the change score (a
log-likelihood ratio) is *exactly* the one of the data, since the Jacobian of an invertible map
cancels in a ratio; so the score does not depend on units. For more channels PCA keeps the
directions of largest variance. A learned encoder would have to be trained per series, and the
windows would then compare densities under a map fitted to both sides at once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class LinearLatentMap:
    """Standardise-then-PCA map ``z = W^T (x - mean) / std`` whitened to unit variance.

    Missing entries (NaN) in a partially observed row are filled by linear interpolation in
    time for the projection; ``imputed_`` marks those rows so the likelihood can skip them.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(200, 3))
        >>> z = LinearLatentMap(2).fit_transform(np.arange(200.0), x)
        >>> z.shape, bool(np.allclose(z.std(0), 1.0))
        ((200, 2), True)
    """

    def __init__(self, latent_dim: int):
        self.latent_dim = latent_dim

    def fit_transform(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``times: (n,)``, ``values: (n, channel)`` with NaN -> ``z: (n, latent)``."""
        x = values.copy()
        self.imputed_ = np.isnan(x).any(1)
        for c in range(x.shape[1]):
            miss = np.isnan(x[:, c])
            if miss.any():
                x[miss, c] = np.interp(times[miss], times[~miss], x[~miss, c])
        self.mean_ = x.mean(0)
        std = x.std(0)
        self.active_ = std > 0
        x = (x[:, self.active_] - self.mean_[self.active_]) / std[self.active_]
        self.std_ = std
        k = min(self.latent_dim, x.shape[1])
        _, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
        scale = s[:k] / np.sqrt(len(x))
        scale[scale == 0] = 1.0
        self.components_ = vt[:k].T / scale
        self.explained_variance_ratio_ = s[:k] ** 2 / np.sum(s**2)
        return x @ self.components_


class Transitions(NamedTuple):
    """The latent transitions ``z_i -> z_{i+1}`` of a series: ``z: (n, d)``, ``dz: (n-1, d)``,
    ``dt: (n-1,)`` in units of the median gap, ``valid: (n-1,)`` (1 unless an end was
    imputed), ``h: (n-1, d)`` the memory input (the last increment over ``sqrt(gap)``,
    standardised; 0 for the first), and the fitted ``latent_map``."""

    z: torch.Tensor
    dz: torch.Tensor
    dt: torch.Tensor
    valid: torch.Tensor
    h: torch.Tensor
    latent_map: LinearLatentMap


def transitions(times, values, latent_dim: int, dtype=torch.float32) -> Transitions:
    """The window SDEs' data (:class:`Transitions`) of ``values: (n, channel)`` at ``times``."""
    lmap = LinearLatentMap(latent_dim)
    z = torch.as_tensor(lmap.fit_transform(times, values), dtype=dtype)
    t = (times - times[0]) / np.median(np.diff(times))
    dz = z[1:] - z[:-1]
    dt = torch.as_tensor(np.diff(t), dtype=dtype)
    valid = torch.as_tensor(~(lmap.imputed_[1:] | lmap.imputed_[:-1]), dtype=dtype)
    rate = dz / dt.sqrt().unsqueeze(-1)
    h = torch.cat([torch.zeros(1, z.shape[1], dtype=dtype),
                   rate[:-1] / rate.std(0).clamp_min(1e-6)], 0)  # fmt: skip
    return Transitions(z, dz, dt, valid, h, lmap)
