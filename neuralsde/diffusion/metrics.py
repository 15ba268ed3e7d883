"""Two-sample distances for checking generated samples: MMD and sliced Wasserstein.

Both come with a *noise floor*: the same statistic between two independent samples of the
target, whose spread says how far a perfect sampler may land from the target by chance.
"""

from __future__ import annotations

import torch


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidths=(0.2, 0.5, 1.0, 2.0)) -> torch.Tensor:
    """Unbiased squared MMD with a sum of Gaussian kernels ``exp(-|a-b|^2 / (2 h^2))``.

    ``x: (n, d)``, ``y: (m, d)`` -> 0-d tensor (can be slightly negative by chance).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 3
        >>> bool(mmd2(x, y) > 0.5)
        True
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x: (n, d) and y: (m, d) expected; got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    x, y = x.to(torch.float64), y.to(torch.float64)
    n, m = x.shape[0], y.shape[0]

    def k(a, b):
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * h**2)) for h in bandwidths)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2 * kxy.mean()


def sliced_wasserstein(
    x: torch.Tensor,
    y: torch.Tensor,
    n_projections: int = 128,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sliced 2-Wasserstein distance between equal-size samples ``x, y: (n, d)``."""
    if x.shape != y.shape or x.dim() != 2:
        raise ValueError(f"x and y must both be (n, d); got {tuple(x.shape)}, {tuple(y.shape)}")
    x, y = x.to(torch.float64), y.to(torch.float64)
    theta = torch.randn(x.shape[1], n_projections, generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, _ = torch.sort(x @ theta, dim=0)
    py, _ = torch.sort(y @ theta, dim=0)
    return (px - py).pow(2).mean().sqrt()


def noise_floor(sampler, statistic=mmd2, n: int = 2000, repeats: int = 10, seed: int = 0):
    """Mean and std of ``statistic(a, b)`` over ``repeats`` pairs of independent target samples.

    ``sampler(n, generator) -> (n, d)``. Returns ``(mean, std)`` as floats.
    """
    vals = []
    for r in range(repeats):
        g = torch.Generator().manual_seed(seed + 1000 * r)
        vals.append(float(statistic(sampler(n, g), sampler(n, g))))
    v = torch.tensor(vals)
    return float(v.mean()), float(v.std())
