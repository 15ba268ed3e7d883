"""Reference SDEs with closed forms, and a small neural SDE, for tests, demos and benchmarks."""

from __future__ import annotations

import math

import torch
from torch import nn

from .core.sde import SDE


class OU(SDE):
    """Ornstein-Uhlenbeck ``dy = theta (mu - y) dt + sigma dW`` (diagonal noise, Ito).

    Mean ``mu + (y0 - mu) e^{-theta t}``, variance ``sigma^2 (1 - e^{-2 theta t}) / (2 theta)``.
    """

    def __init__(self, theta=1.0, mu=0.0, sigma=0.5, noise_type="diagonal"):
        super().__init__(noise_type=noise_type, sde_type="ito")
        self.theta, self.mu, self.sigma = theta, mu, sigma

    def f(self, t, y):
        return self.theta * (self.mu - y)

    def g(self, t, y):
        if self.noise_type == "additive":
            eye = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
            return (self.sigma * eye).expand(y.shape[0], -1, -1)
        return torch.full_like(y, self.sigma)

    def mean(self, y0, t):
        return self.mu + (y0 - self.mu) * math.exp(-self.theta * t)

    def var(self, t):
        return self.sigma**2 * (1 - math.exp(-2 * self.theta * t)) / (2 * self.theta)


class GBM(SDE):
    """Geometric Brownian motion ``dy = mu y dt + sigma y dW`` (Ito).

    Exact solution ``y0 exp((mu - sigma^2 / 2) t + sigma W_t)``. ``noise_type`` may be
    ``"diagonal"`` (independent W per state) or ``"scalar"`` (one W shared).
    """

    def __init__(self, mu=0.5, sigma=0.8, noise_type="diagonal", sde_type="ito"):
        super().__init__(noise_type=noise_type, sde_type=sde_type)
        self.mu, self.sigma = mu, sigma

    def f(self, t, y):
        if self.sde_type == "stratonovich":
            return (self.mu - 0.5 * self.sigma**2) * y
        return self.mu * y

    def g(self, t, y):
        g = self.sigma * y
        return g.unsqueeze(-1) if self.noise_type == "scalar" else g

    def exact(self, y0, t, w_t):
        """Solution at time ``t`` given ``W_t``: (batch, state) or broadcastable."""
        return y0 * torch.exp((self.mu - 0.5 * self.sigma**2) * t + self.sigma * w_t)


def mlp(inp: int, out: int, width: int = 64, depth: int = 2, activation=nn.Tanh) -> nn.Sequential:
    """A plain MLP: ``depth`` hidden layers of ``width`` units."""
    layers, d = [], inp
    for _ in range(depth):
        layers += [nn.Linear(d, width), activation()]
        d = width
    layers.append(nn.Linear(d, out))
    return nn.Sequential(*layers)


class NeuralSDE(SDE):
    """A neural SDE with MLP drift and diagonal MLP diffusion (sigmoid-bounded).

    ``f(t, y) = MLP([t, y])``, ``g(t, y) = sigmoid(MLP([t, y]))``; y: (batch, state).
    """

    def __init__(self, state: int, width: int = 64, depth: int = 2, sde_type="ito"):
        super().__init__(noise_type="diagonal", sde_type=sde_type)
        self.drift = mlp(state + 1, state, width, depth)
        self.diffusion = mlp(state + 1, state, width, depth)

    def _ty(self, t, y):
        return torch.cat([t.expand(y.shape[0], 1), y], dim=1)

    def f(self, t, y):
        return self.drift(self._ty(t, y))

    def g(self, t, y):
        return torch.sigmoid(self.diffusion(self._ty(t, y)))

    def f_and_g(self, t, y):
        ty = self._ty(t, y)
        return self.drift(ty), torch.sigmoid(self.diffusion(ty))
