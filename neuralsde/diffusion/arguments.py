"""The argument checks ``sample`` and ``log_likelihood`` share, so that both name the user's
argument (``steps``, ``generator``, ``x``, ``eps``, the score's output) the same way."""

from __future__ import annotations

import numbers

import torch

from neuralsde.core.arguments import check_generator, positive_int

__all__ = ["CheckedScore", "check_eps", "check_generator", "check_shape", "check_steps"]


def check_shape(shape) -> tuple[int, ...]:
    """``shape = (batch, *event)`` as a tuple of positive ints."""
    if isinstance(shape, str | bytes) or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape
    ):
        raise TypeError(f"shape must be a tuple of integers (batch, *event); got {shape!r}")
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"shape must be (batch, *event) with positive sizes; got {shape}")
    return shape


def check_steps(steps) -> int:
    """``steps`` as a positive int; TypeError for bools, floats and other types."""
    return positive_int(steps, "steps")


def check_eps(eps, sde) -> float:
    """``eps`` (default ``sde.eps``) as a float in ``[0, T)``."""
    if eps is None:
        return float(sde.eps)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a number; got {type(eps).__name__}")
    if not 0 <= float(eps) < sde.T:
        raise ValueError(f"eps must lie in [0, T={sde.T:g}); got {eps!r}")
    return float(eps)


class CheckedScore:
    """Wraps a score function and checks every output: a floating tensor of the input's shape
    (a ``(B, 1)`` output for ``(B, 2)`` data would otherwise broadcast silently)."""

    def __init__(self, fn, name: str = "score_model"):
        self.fn, self.name = fn, name

    def __call__(self, x, t):
        s = self.fn(x, t)
        if not isinstance(s, torch.Tensor):
            raise TypeError(f"{self.name} must return a tensor; got {type(s).__name__}")
        if s.shape != x.shape:
            raise ValueError(
                f"{self.name} returned shape {tuple(s.shape)} for x of shape {tuple(x.shape)}; "
                f"a score has the shape of its input"
            )
        if not s.is_floating_point():
            raise TypeError(f"{self.name} must return a floating-point tensor; got {s.dtype}")
        return s
