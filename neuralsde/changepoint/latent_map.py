"""The map from observed channels to the latent state the window SDEs live in.

A linear map: standardise each channel, then whiten onto the top principal components.
Why linear: when ``latent_dim >= channels`` the map is invertible and the change score (a
log-likelihood ratio) is *exactly* the one of the data, since the Jacobian of an invertible map
cancels in a ratio; so the score does not depend on units. For more channels PCA keeps the
directions of largest variance. A learned encoder would have to be trained per series, and the
windows would then compare densities under a map fitted to both sides at once.
"""

from __future__ import annotations

import numpy as np


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
