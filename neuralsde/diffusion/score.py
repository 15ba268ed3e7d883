"""Wrapping a network as a score model: any callable ``(x, t) -> grad_x log p_t(x)``.

Networks are trained to predict the noise ``z`` in ``x_t = alpha x_0 + sigma z``; the score is
then ``-z_hat / sigma``. The input is scaled by ``1 / sqrt(alpha^2 + sigma^2)`` so that it has
roughly unit variance at every noise level (for data of unit scale), which keeps VE usable.
"""

from __future__ import annotations

import torch
from torch import nn


class ScoreModel(nn.Module):
    """Score ``s(x, t) = -net(c_in(t) x, t) / sigma(t)`` from a noise-prediction network.

    ``net(x, t)`` maps ``x: (batch, *shape)`` and ``t: (batch,)`` to ``(batch, *shape)``.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE, ScoreMLP
        >>> model = ScoreModel(ScoreMLP(2), VPSDE())
        >>> model(torch.zeros(5, 2), torch.full((5,), 0.5)).shape
        torch.Size([5, 2])
    """

    def __init__(self, net: nn.Module, sde):
        super().__init__()
        self.net = net
        self.sde = sde

    def _coefs(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])
        view = (-1,) + (1,) * (x.dim() - 1)
        a = self.sde.alpha(t).reshape(view)
        s = self.sde.sigma(t).reshape(view)
        return t, a, s

    def noise_prediction(self, x, t):
        """The network's estimate of ``z``: ``(batch, *shape)``."""
        t, a, s = self._coefs(x, t)
        return self.net(x * torch.rsqrt(a**2 + s**2), t)

    def forward(self, x, t):
        _, _, s = self._coefs(x, t)
        return -self.noise_prediction(x, t) / s


def check_score_fn(score_model) -> None:
    """Raise TypeError unless ``score_model`` is a callable ``(x, t) -> score``."""
    if not callable(score_model):
        raise TypeError(
            f"score_model must be a callable (x, t) -> score; got {type(score_model).__name__}"
        )
