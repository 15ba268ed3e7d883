"""Score networks: a sinusoidal time embedding and a time-embedded MLP for vectors and short
trajectories. (The U-Net for 2-D fields lives in ``unet.py``.)"""

from __future__ import annotations

import math

import torch
from torch import nn


class TimeEmbedding(nn.Module):
    """Sinusoidal features of ``t: (batch,)`` at geometric frequencies -> ``(batch, dim)``."""

    def __init__(self, dim: int = 64, max_period: float = 1e4, scale: float = 1000.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"dim must be even; got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.scale = scale

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = self.scale * t.reshape(-1, 1).to(self.freqs.dtype) * self.freqs
        return torch.cat([torch.sin(arg), torch.cos(arg)], -1).to(t.dtype)


class ScoreMLP(nn.Module):
    """MLP ``(x, t) -> (batch, *shape)`` for events of shape ``shape`` (a vector or a short
    trajectory window ``(length, channels)``), conditioned on a time embedding.

    Example:
        >>> import torch
        >>> net = ScoreMLP((16, 1), hidden=32)
        >>> net(torch.zeros(4, 16, 1), torch.rand(4)).shape
        torch.Size([4, 16, 1])
    """

    def __init__(self, shape, hidden: int = 128, depth: int = 3, embed_dim: int = 64):
        super().__init__()
        self.shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
        d = math.prod(self.shape)
        self.embed = nn.Sequential(
            TimeEmbedding(embed_dim), nn.Linear(embed_dim, hidden), nn.SiLU()
        )
        self.inp = nn.Linear(d, hidden)
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, d)
        self.config = {
            "kind": "mlp",
            "shape": list(self.shape),
            "hidden": hidden,
            "depth": depth,
            "embed_dim": embed_dim,
        }

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = self.inp(x.reshape(b, -1)) + self.embed(t)
        for lin in self.blocks:
            h = h + lin(nn.functional.silu(h))
        return self.out(nn.functional.silu(h)).reshape(b, *self.shape)
