"""The SDE protocol shared by every part of neuralsde (the torchsde contract, plus ``args``).

An SDE is any object with ``f``, ``g``, ``noise_type`` and ``sde_type``. ``f`` and ``g`` take
``(t, y)`` as in torchsde, or ``(t, y, args)`` to receive the per-call data handed to
``solve(..., args=...)`` (control paths, contexts, tables), as in diffrax. Two optional hooks:
``f_and_g`` (both at once) and ``precompute(grid, args) -> args``, which ``solve`` calls once
with the step grid it built, so that per-time values can be tabulated for the whole grid.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

NOISE_TYPES = ("diagonal", "scalar", "additive", "general")
SDE_TYPES = ("ito", "stratonovich")


class SDE(nn.Module):
    """Base class for SDEs ``dy = f(t, y) dt + g(t, y) dW``.

    Shapes: ``y: (batch, state)``; ``f -> (batch, state)``; ``g ->`` ``(batch, state)``
    for diagonal noise, ``(batch, state, 1)`` for scalar noise and
    ``(batch, state, brownian)`` for additive or general noise. ``t`` is a 0-d tensor, or
    ``(batch, 1)`` when ``solve`` is given one time grid per series and the SDE declares
    ``batched_time = True``. Subclasses may write ``f(t, y)`` or ``f(t, y, args)``.

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
    batched_time: bool = False

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

    def f_and_g(self, t, y, *args):
        return self.f(t, y, *args), self.g(t, y, *args)


def check_protocol(sde) -> None:
    """Raise TypeError/ValueError unless ``sde`` follows the protocol."""
    for name in ("f", "g"):
        if not callable(getattr(sde, name, None)):
            raise TypeError(f"sde must have a callable `{name}(t, y)`; got {type(sde).__name__}")
    noise_type = getattr(sde, "noise_type", None)
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"sde.noise_type must be one of {NOISE_TYPES}; got {noise_type!r}")
    sde_type = getattr(sde, "sde_type", None)
    if sde_type not in SDE_TYPES:
        raise ValueError(f"sde.sde_type must be one of {SDE_TYPES}; got {sde_type!r}")


def takes_args(fn) -> bool:
    """Whether ``fn`` takes ``args``: a parameter named ``args``, ``*args``, or a third
    positional parameter without a default (``f(t, y, args)`` as in diffrax)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume torchsde style
        return False
    required = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL or p.name == "args":
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            required += 1
    return required >= 3


def _native_f_and_g(sde):
    """``sde.f_and_g`` unless it is the base class's default (which only composes f and g)."""
    fg = getattr(sde, "f_and_g", None)
    if fg is None or getattr(type(sde), "f_and_g", None) is SDE.f_and_g:
        return None
    return fg


class Terms:
    """``f``, ``g`` and ``f_and_g`` of an SDE as ``(t, y, args)`` callables, whatever signature
    the SDE wrote. Built once per solve or per transform: no signature is inspected per step.
    ``uses_args`` says whether the SDE reads ``args`` at all.
    """

    __slots__ = ("f", "g", "f_and_g", "uses_args", "sde")

    def __init__(self, sde):
        native = _native_f_and_g(sde)
        fns = [sde.f, sde.g] + ([native] if native is not None else [])
        flags = [takes_args(fn) for fn in fns]
        wrapped = [fn if flag else _ignore_args(fn) for fn, flag in zip(fns, flags, strict=True)]
        self.sde, self.uses_args = sde, any(flags)
        self.f, self.g = wrapped[0], wrapped[1]
        self.f_and_g = wrapped[2] if native is not None else _both(self.f, self.g)

    def bind(self, args=None) -> Bound:
        """The SDE with ``args`` bound, for the steppers (see :class:`Bound`)."""
        return Bound(self, args)


def _ignore_args(fn):
    def call(t, y, args):
        return fn(t, y)

    return call


def _both(f, g):
    def call(t, y, args):
        return f(t, y, args), g(t, y, args)

    return call


class Bound:
    """An SDE with its ``args`` bound: ``f(t, y)``, ``g(t, y)`` and ``f_and_g(t, y)`` for the
    steppers, and every other attribute of the SDE (``alpha``, ``data_prediction``, ...).
    A torchsde-style SDE is called directly, with no wrapper in between."""

    def __init__(self, terms: Terms, args=None):
        sde = terms.sde
        if args is not None and not terms.uses_args:
            raise TypeError(
                f"args was given, but {type(sde).__name__}.f and .g take (t, y) and cannot "
                f"receive it; write f(t, y, args) and g(t, y, args), or drop args"
            )
        self.sde, self.args = sde, args
        if terms.uses_args:
            f, g, both = terms.f, terms.g, terms.f_and_g
            self.f = lambda t, y: f(t, y, args)
            self.g = lambda t, y: g(t, y, args)
            self.f_and_g = lambda t, y: both(t, y, args)
        else:
            self.f, self.g = sde.f, sde.g
            native = _native_f_and_g(sde)
            f0, g0 = sde.f, sde.g
            self.f_and_g = native if native is not None else (lambda t, y: (f0(t, y), g0(t, y)))
        self.noise_type, self.sde_type = sde.noise_type, sde.sde_type

    def __getattr__(self, name):
        return getattr(self.sde, name)


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
