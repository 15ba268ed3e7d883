"""Checks of scalar arguments that every layer shares, so that the same mistake gives the same
message wherever it is made: a TypeError for the wrong type (a bool or a float where a count
belongs), a ValueError for a value out of range, each naming the user's argument."""

from __future__ import annotations

import math
import numbers

import torch

__all__ = [
    "check_device",
    "check_generator",
    "check_seed",
    "non_negative",
    "positive",
    "positive_int",
]


def positive_int(value, name: str, *, allow_none: bool = False, minimum: int = 1) -> int | None:
    """``value`` as an int ``>= minimum`` (``None`` passes when ``allow_none``).

    Example:
        >>> positive_int(3, "epochs")
        3
        >>> positive_int(2.5, "epochs")
        Traceback (most recent call last):
        ...
        TypeError: epochs must be a positive integer; got float 2.5
    """
    if value is None and allow_none:
        return None
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be {what}{' or None' if allow_none else ''}; got "
            f"{type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}; got {value}")
    return int(value)


def positive(value, name: str, *, allow_none: bool = False) -> float | None:
    """``value`` as a finite float ``> 0`` (``None`` passes when ``allow_none``)."""
    return _number(value, name, allow_none, lambda v: v > 0, "positive and finite")


def non_negative(value, name: str, *, allow_none: bool = False) -> float | None:
    """``value`` as a finite float ``>= 0`` (``None`` passes when ``allow_none``)."""
    return _number(value, name, allow_none, lambda v: v >= 0, "finite and >= 0")


def _number(value, name, allow_none, ok, what):
    if value is None and allow_none:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and ok(value)):
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}; got {value}")
    return float(value)


def check_seed(value, name: str = "random_state") -> int | None:
    """A seed: None or an integer in ``[0, 2**32)`` (what numpy and torch both take)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be None or an integer seed; got {type(value).__name__} {value!r}"
        )
    if not 0 <= value < 2**32:
        raise ValueError(f"{name} must lie in [0, 2**32); got {value}")
    return int(value)


def check_generator(generator) -> None:
    """Refuse anything but a ``torch.Generator``, a keyed generator or None, saying how to
    make one."""
    from .keyed import KeyedGenerator

    if generator is not None and not isinstance(generator, torch.Generator | KeyedGenerator):
        raise TypeError(
            f"generator must be a torch.Generator or None; got {type(generator).__name__} "
            f"(seed one with torch.Generator().manual_seed(seed))"
        )


_AVAILABLE = {
    "cpu": lambda: True,
    "cuda": lambda: torch.cuda.is_available(),
    "mps": lambda: torch.backends.mps.is_available(),
}


def check_device(device, name: str = "device") -> torch.device:
    """``device`` (a string or ``torch.device``) as a ``torch.device`` this machine has.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
    """
    if not isinstance(device, str | torch.device):
        raise TypeError(
            f"{name} must be a string such as 'cpu' or 'cuda:0', or a torch.device; got "
            f"{type(device).__name__} {device!r}"
        )
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"{name} must name a device such as 'cpu', 'cuda' or 'cuda:0'; got {device!r}"
        ) from None
    if dev.type not in _AVAILABLE:
        raise ValueError(f"{name} must be one of {sorted(_AVAILABLE)} devices; got {device!r}")
    if not _AVAILABLE[dev.type]():
        raise ValueError(
            f"{name}={device!r}, but this machine has no {dev.type} device "
            f"(torch.{dev.type if dev.type != 'mps' else 'backends.mps'}.is_available() is "
            f"False); use {name}='cpu'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"{name}={device!r}, but this machine has {torch.cuda.device_count()} CUDA devices"
        )
    return dev
