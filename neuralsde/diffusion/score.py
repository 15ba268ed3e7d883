"""Wrapping a network as a score model: any callable ``(x, t) -> grad_x log p_t(x)``.

Two parametrisations of ``x_t = alpha x_0 + sigma z``:

- ``"noise"``: the network predicts ``z``; the score is ``-z_hat / sigma``. The input is scaled
  by ``1 / sqrt(alpha^2 + sigma^2)`` so that it has roughly unit variance at every noise level
  (for data of unit scale), which keeps VE usable.
- ``"edm"`` (Karras et al. 2022, "Elucidating the design space", Table 1): in the scaled
  variables ``x_hat = x / alpha``, ``s = sigma / alpha`` the denoiser is
  ``D = c_skip x_hat + c_out F(c_in x_hat, c_noise)`` with ``c_in = 1 / sqrt(s^2 + sd^2)``,
  ``c_skip = sd^2 / (s^2 + sd^2)``, ``c_out = s sd / sqrt(s^2 + sd^2)``, ``c_noise = log(s) / 4``
  (``sd``: the data's standard deviation), and the score is ``(alpha D - x) / sigma^2``. The
  network's target ``(x_0 - c_skip x_hat) / c_out`` has unit variance at every noise level;
  train it with :func:`~neuralsde.diffusion.losses.edm_loss`.
"""

from __future__ import annotations

import torch
from torch import nn

PRECONDITIONINGS = ("noise", "edm")


class ScoreModel(nn.Module):
    """Score from a network ``net(x, t)`` that maps ``x: (batch, *shape)`` and ``t: (batch,)``
    to ``(batch, *shape)``: a noise prediction (``preconditioning="noise"``, the default) or
    EDM's preconditioned denoiser (``"edm"``, with the data's standard deviation
    ``sigma_data``); see the module docstring.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE, ScoreMLP
        >>> model = ScoreModel(ScoreMLP(2), VPSDE())
        >>> model(torch.zeros(5, 2), torch.full((5,), 0.5)).shape
        torch.Size([5, 2])
    """

    def __init__(self, net: nn.Module, sde, preconditioning: str = "noise",
                 sigma_data: float = 0.5):  # fmt: skip
        super().__init__()
        if preconditioning not in PRECONDITIONINGS:
            raise ValueError(
                f"preconditioning must be one of {list(PRECONDITIONINGS)}; got {preconditioning!r}"
            )
        if not float(sigma_data) > 0:
            raise ValueError(f"sigma_data must be positive; got {sigma_data!r}")
        self.net = net
        self.sde = sde
        self.preconditioning, self.sigma_data = preconditioning, float(sigma_data)

    def config(self) -> dict:
        """The parametrisation, as checkpoints store it."""
        return {"kind": self.preconditioning, "sigma_data": self.sigma_data}

    def _coefs(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])
        view = (-1,) + (1,) * (x.dim() - 1)
        a = self.sde.alpha(t).reshape(view)
        s = self.sde.sigma(t).reshape(view)
        return t, a, s

    def _noise(self, x, t, a, s):
        if self.preconditioning == "noise":
            return self.net(x * torch.rsqrt(a**2 + s**2), t)
        return (x - a * self._denoise(x, a, s)) / s

    def _denoise(self, x, a, s):
        """EDM's preconditioned denoiser (see the module docstring)."""
        sd2, sh = self.sigma_data**2, s / a
        x_hat, norm = x / a, torch.rsqrt(sh**2 + sd2)
        out = self.net(x_hat * norm, (torch.log(sh) / 4).reshape(-1))
        return x_hat * (sd2 * norm**2) + out * (sh * self.sigma_data * norm)

    def denoise(self, x, t):
        """The estimate of ``x_0`` (Tweedie's ``E[x_0 | x_t = x]``): ``(batch, *shape)``."""
        t, a, s = self._coefs(x, t)
        if self.preconditioning == "edm":
            return self._denoise(x, a, s)
        return (x - s * self._noise(x, t, a, s)) / a

    def noise_prediction(self, x, t):
        """The estimate of ``z``: ``(batch, *shape)``."""
        return self._noise(x, *self._coefs(x, t))

    def forward(self, x, t):
        t, a, s = self._coefs(x, t)
        return -self._noise(x, t, a, s) / s


def check_score_fn(score_model) -> None:
    """Raise TypeError unless ``score_model`` is a callable ``(x, t) -> score``."""
    if not callable(score_model):
        raise TypeError(
            f"score_model must be a callable (x, t) -> score; got {type(score_model).__name__}"
        )
