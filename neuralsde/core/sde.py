"""The SDE protocol shared by every part of neuralsde (the torchsde contract).

An SDE is any object with ``f(t, y)``, ``g(t, y)``, ``noise_type`` and ``sde_type``.
Subclassing :class:`SDE` is optional; it only adds a default ``f_and_g``.
"""

from __future__ import annotations

import torch
from torch import nn

NOISE_TYPES = ("diagonal", "scalar", "additive", "general")
SDE_TYPES = ("ito", "stratonovich")


class SDE(nn.Module):
    """Base class for SDEs ``dy = f(t, y) dt + g(t, y) dW``.

    Shapes: ``y: (batch, state)``; ``f -> (batch, state)``; ``g ->`` ``(batch, state)``
    for diagonal noise, ``(batch, state, 1)`` for scalar noise and
    ``(batch, state, brownian)`` for additive or general noise. ``t`` is a 0-d tensor.

    Example:
        >>> import torch
        >>> class OU(SDE):
        ...     noise_type, sde_type = "diagonal", "ito"
        ...     def f(self, t, y):
        ...         return -y
        ...     def g(self, t, y):
        ...         return torch.ones_like(y)
        >>> OU().f(torch.tensor(0.0), torch.ones(2, 1)).shape
        torch.Size([2, 1])
    """

    noise_type: str = "diagonal"
    sde_type: str = "ito"

    def __init__(self, noise_type: str | None = None, sde_type: str | None = None):
        super().__init__()
        if noise_type is not None:
            self.noise_type = noise_type
        if sde_type is not None:
            self.sde_type = sde_type

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def f_and_g(self, t: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.f(t, y), self.g(t, y)


def check_protocol(sde) -> None:
    """Raise TypeError/ValueError unless ``sde`` follows the torchsde protocol."""
    for name in ("f", "g"):
        if not callable(getattr(sde, name, None)):
            raise TypeError(f"sde must have a callable `{name}(t, y)`; got {type(sde).__name__}")
    noise_type = getattr(sde, "noise_type", None)
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"sde.noise_type must be one of {NOISE_TYPES}; got {noise_type!r}")
    sde_type = getattr(sde, "sde_type", None)
    if sde_type not in SDE_TYPES:
        raise ValueError(f"sde.sde_type must be one of {SDE_TYPES}; got {sde_type!r}")


def f_and_g(sde, t, y):
    """Evaluate drift and diffusion together, using ``sde.f_and_g`` when it exists."""
    fg = getattr(sde, "f_and_g", None)
    if fg is not None:
        return fg(t, y)
    return sde.f(t, y), sde.g(t, y)


def g_prod(noise_type: str, g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Diffusion-vector product ``g v`` for a noise type. ``v: (batch, brownian)``."""
    if noise_type == "diagonal":
        return g * v
    if noise_type == "scalar":
        return g.squeeze(-1) * v
    return torch.bmm(g, v.unsqueeze(-1)).squeeze(-1)


def brownian_size(noise_type: str, g: torch.Tensor) -> int:
    """Number of Brownian channels implied by a diffusion value."""
    if noise_type == "diagonal":
        return g.shape[-1]
    if noise_type == "scalar":
        return 1
    return g.shape[-1]


def check_diffusion_shape(noise_type: str, g: torch.Tensor, y: torch.Tensor) -> None:
    """Raise ValueError naming the noise type if ``g`` has the wrong shape for ``y``."""
    b, d = y.shape
    if noise_type == "diagonal":
        ok, want = tuple(g.shape) == (b, d), f"({b}, {d})"
    elif noise_type == "scalar":
        ok, want = tuple(g.shape) == (b, d, 1), f"({b}, {d}, 1)"
    else:
        ok, want = g.dim() == 3 and tuple(g.shape[:2]) == (b, d), f"({b}, {d}, brownian)"
    if not ok:
        raise ValueError(
            f"g(t, y) returned shape {tuple(g.shape)} for noise_type={noise_type!r}; "
            f"expected {want} for y of shape {tuple(y.shape)}"
        )
