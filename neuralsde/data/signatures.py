"""Truncated (log-)signatures of piecewise-linear paths, via signatory or pysiglib.

The signature of a path X: [0, T] -> R^d truncated at depth N is the collection of iterated
integrals S^k = int_{0<t_1<...<t_k<T} dX_{t_1} (x) ... (x) dX_{t_k} for k = 1..N, flattened level
by level (``d + d^2 + ... + d^N`` numbers, no scalar term). Level 1 is the increment
X_T - X_0. The log-signature is its tensor logarithm in the Lyndon-words coordinates (signatory's
``mode="words"``, pysiglib's ``method=1``). signatory is used when importable, else pysiglib;
both are differentiable and agree to round-off.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings

import torch

__all__ = [
    "available_backends",
    "default_backend",
    "logsignature",
    "logsignature_channels",
    "signature",
    "signature_channels",
    "window_edges",
    "windowed_logsignature",
]

_BACKENDS = ("signatory", "pysiglib")


def available_backends() -> tuple[str, ...]:
    """The signature backends importable here, in order of preference."""
    return tuple(b for b in _BACKENDS if importlib.util.find_spec(b) is not None)


@functools.cache
def default_backend() -> str:
    """``"signatory"`` when importable, else ``"pysiglib"`` (warning once that it falls back)."""
    found = available_backends()
    if not found:
        raise ImportError(
            "signatures need signatory or pysiglib; install one (pip install pysiglib)"
        )
    if found[0] != "signatory":
        warnings.warn(
            "signatory is not installed; computing signatures with pysiglib "
            "(install neuralsde[signatures] for signatory)",
            stacklevel=2,
        )
    return found[0]


def _backend(name: str | None) -> str:
    if name is None:
        return default_backend()
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS} or None, got {name!r}")
    if importlib.util.find_spec(name) is None:
        raise ImportError(f"backend {name!r} is not installed")
    return name


def _check_path(path: torch.Tensor, depth: int) -> None:
    if not isinstance(path, torch.Tensor):
        raise TypeError(f"path must be a torch.Tensor, got {type(path).__name__}")
    if path.ndim != 3:
        raise ValueError(
            f"path must have shape (batch, length, channels), got shape {tuple(path.shape)}"
        )
    if path.shape[1] < 2:
        raise ValueError(f"path must have at least 2 points, got length {path.shape[1]}")
    if torch.isnan(path).any():
        raise ValueError("path contains NaN; fill missing values first (see fill_missing)")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")


def signature_channels(channels: int, depth: int) -> int:
    """Length of a depth-``depth`` signature of a ``channels``-dimensional path: sum_k d^k."""
    return sum(channels**k for k in range(1, depth + 1))


def logsignature_channels(channels: int, depth: int) -> int:
    """Length of a depth-``depth`` log-signature (Witt's formula, number of Lyndon words)."""

    def mobius(n: int) -> int:
        result, p, m = 1, 2, n
        while p * p <= m:
            if m % p == 0:
                m //= p
                if m % p == 0:
                    return 0
                result = -result
            p += 1
        return -result if m > 1 else result

    total = 0
    for k in range(1, depth + 1):
        total += sum(mobius(k // j) * channels**j for j in range(1, k + 1) if k % j == 0) // k
    return total


def signature(path: torch.Tensor, depth: int, backend: str | None = None) -> torch.Tensor:
    """Truncated signature of the piecewise-linear path through the points ``path``.

    Args:
        path: ``(batch, length, channels)``, no NaN.
        depth: truncation depth N >= 1.
        backend: ``"signatory"``, ``"pysiglib"`` or ``None`` (the default backend).

    Returns:
        ``(batch, d + d^2 + ... + d^N)``; entries ``[:, :d]`` are ``path[:, -1] - path[:, 0]``.

    Example:
        >>> x = torch.tensor([[[0.0, 0.0], [1.0, 2.0]]], dtype=torch.float64)
        >>> signature(x, 2).tolist()  # [dx, dx (x) dx / 2] for a straight line
        [[1.0, 2.0, 0.5, 1.0, 1.0, 2.0]]
    """
    _check_path(path, depth)
    if _backend(backend) == "signatory":
        import signatory

        return signatory.signature(path, depth)
    import pysiglib.torch_api

    return pysiglib.torch_api.sig(path.contiguous(), depth)


def logsignature(path: torch.Tensor, depth: int, backend: str | None = None) -> torch.Tensor:
    """Truncated log-signature (Lyndon-words coordinates) of the path through ``path``.

    Args:
        path: ``(batch, length, channels)``, no NaN.
        depth: truncation depth N >= 1.
        backend: ``"signatory"``, ``"pysiglib"`` or ``None``.

    Returns:
        ``(batch, logsignature_channels(channels, depth))``; the first ``channels`` entries
        are the increment.

    Example:
        >>> x = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]], dtype=torch.float64)
        >>> logsignature(x, 2).tolist()  # increment (1, 1) and Levy area 1/2
        [[1.0, 1.0, 0.5]]
    """
    _check_path(path, depth)
    if _backend(backend) == "signatory":
        import signatory

        return signatory.logsignature(path, depth, mode="words")
    import pysiglib
    import pysiglib.torch_api

    _prepare_pysiglib(path.shape[-1], depth)
    return pysiglib.torch_api.log_sig(path.contiguous(), depth, method=1)


@functools.cache
def _prepare_pysiglib(channels: int, depth: int) -> None:
    import pysiglib

    pysiglib.prepare_log_sig(channels, depth, 1)


def window_edges(length: int, windows: int) -> list[int]:
    """Knot indices splitting ``length`` points into ``windows`` consecutive windows that share
    their end points: window ``k`` covers ``[edges[k], edges[k + 1]]``.

    Example:
        >>> window_edges(11, 2)
        [0, 5, 10]
    """
    if not isinstance(windows, int) or windows < 1:
        raise ValueError(f"windows must be a positive integer, got {windows!r}")
    if windows > length - 1:
        raise ValueError(
            f"windows must be at most length - 1 = {length - 1} (one segment each), got {windows}"
        )
    return [round(k * (length - 1) / windows) for k in range(windows + 1)]


def windowed_logsignature(
    path: torch.Tensor, depth: int, windows: int, backend: str | None = None
) -> torch.Tensor:
    """Log-signatures over consecutive windows (the log-ODE / Neural RDE summary).

    Args:
        path: ``(batch, length, channels)``.
        windows: number of windows, see :func:`window_edges`.

    Returns:
        ``(batch, windows, logsignature_channels(channels, depth))``.
    """
    edges = window_edges(path.shape[1], windows)
    pieces = [
        logsignature(path[:, a : b + 1], depth, backend)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    return torch.stack(pieces, dim=1)
