"""Random draws keyed by series: :class:`KeyedGenerator`, a stand-in for ``torch.Generator``.

Every number it draws for a series is a pure function of ``(seed, draw number, series key,
position in the series' row)`` (SplitMix64 hashing, Steele et al. 2014, then Box-Muller), not
of where the series sits in the batch or of which other series are in it. A chunk of series
processed on another worker, with the same keys, draws exactly its rows of the whole batch's
draws: this is what makes chunked inference equal in-memory inference.

``solve(..., generator=KeyedGenerator(...))`` takes one: fixed steps then draw each step's
increments from the keys (:class:`~neuralsde.core.brownian.KeyedGridBrownian`), adaptive steps
from a keyed :class:`~neuralsde.core.brownian.BrownianTree`.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

__all__ = ["KeyedGenerator", "label_keys", "normal", "repeat_rows"]

_GOLDEN, MIX1, _MIX2 = (c - (1 << 64) for c in (
    0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))  # fmt: skip


def shr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def splitmix(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64 on int64 tensors (wrapping arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ shr(z, 30)) * MIX1
    z = (z ^ shr(z, 27)) * _MIX2
    return z ^ shr(z, 31)


def normals(keys: torch.Tensor, dtype) -> torch.Tensor:
    """One standard normal per int64 key, a pure function of the key (Box-Muller)."""
    a, b = splitmix(keys), splitmix(keys ^ _MIX2)
    u1 = (shr(a, 11).to(torch.float64) + 1.0) * 2.0**-53  # (0, 1]
    u2 = shr(b, 11).to(torch.float64) * 2.0**-53
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)).to(dtype)


def _int64(x: int) -> int:
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def label_keys(labels) -> torch.Tensor:
    """``(B,)`` int64 keys from series labels (numbers, strings, dates): a stable hash of each
    label's text, the same in every process and Python version."""
    out = []
    for label in np.asarray(labels, dtype=object).reshape(-1):
        value = label.item() if isinstance(label, np.generic) else label
        digest = hashlib.blake2b(repr(value).encode(), digest_size=8).digest()
        out.append(_int64(int.from_bytes(digest, "little")))
    return torch.tensor(out, dtype=torch.int64)


class KeyedGenerator:
    """Normal draws keyed by series, usable wherever neuralsde takes a ``generator`` for
    per-series noise (``solve``, the latent SDE's posterior, the stable models).

    Args:
        seed: an int.
        keys: ``(B,)`` integers naming the rows of the batch (``label_keys(series)`` for
            series labels). Rows with equal keys draw equal numbers.

    Each call draws a fresh set of numbers (a counter advances, as a generator's state does),
    so the same sequence of calls draws the same numbers for a series in any batch.

    Example:
        >>> whole = KeyedGenerator(0, torch.arange(6))
        >>> part = KeyedGenerator(0, torch.arange(6)[2:4])
        >>> torch.equal(whole.randn((6, 3))[2:4], part.randn((2, 3)))
        True
    """

    def __init__(self, seed: int, keys, *, _calls: list | None = None):
        keys = torch.as_tensor(keys)
        if keys.dim() != 1 or keys.is_floating_point() or keys.is_complex():
            raise ValueError(f"keys must be a 1-d tensor of integers; got dtype {keys.dtype} "
                             f"and shape {tuple(keys.shape)}")  # fmt: skip
        self.seed = int(seed)
        self.keys = keys.to(torch.int64)
        self._calls = [0] if _calls is None else _calls

    @classmethod
    def for_labels(cls, seed: int, labels) -> KeyedGenerator:
        """A generator keyed by series labels (see :func:`label_keys`)."""
        return cls(seed, label_keys(labels))

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def subset(self, rows) -> KeyedGenerator:
        """The generator of ``rows`` of this batch, with its own copy of the draw counter: a
        sub-batch (a chunk) draws what those rows draw in the whole batch from here on."""
        return KeyedGenerator(self.seed, self.keys[rows], _calls=list(self._calls))

    def repeat(self, n: int, interleave: bool = False) -> KeyedGenerator:
        """The generator of ``n`` samples per series, rows sample-major (row ``s * B + b`` is
        sample ``s`` of series ``b``), as ``tensor.repeat(n, ...)`` lays them out, or with
        ``interleave`` series-major (row ``b * n + s``, as ``repeat_interleave(n, 0)``). It
        shares the draw counter with this one."""
        sample = torch.arange(int(n), dtype=torch.int64).unsqueeze(-1)
        keys = splitmix(splitmix(self.keys.unsqueeze(0)) + sample * _MIX2)  # (n, B)
        keys = keys.T if interleave else keys
        return KeyedGenerator(self.seed, keys.reshape(-1), _calls=self._calls)

    def next_seed(self) -> int:
        """A fresh int64 seed for one draw (advances the counter)."""
        call = self._calls[0]
        self._calls[0] += 1
        mixed = splitmix(torch.tensor(_int64(self.seed * 0x2545F4914F6CDD1D + call)))
        return int(mixed)

    def lanes(self, inner: int, device=None) -> torch.Tensor:
        """``(B, inner)`` int64 lane keys, one per (row, position in the row)."""
        pos = torch.arange(int(inner), dtype=torch.int64, device=device)
        return splitmix(splitmix(self.keys.to(device).unsqueeze(-1)) + pos)

    def randn(self, shape, dim: int = 0, dtype=None, device=None) -> torch.Tensor:
        """Standard normals of ``shape``, whose axis ``dim`` is the batch (``len(self)``)."""
        shape = tuple(int(s) for s in shape)
        dim = dim % len(shape)
        if shape[dim] != len(self):
            raise ValueError(f"shape {shape} has {shape[dim]} rows on axis {dim}; this "
                             f"generator is keyed for {len(self)} series")  # fmt: skip
        rest = shape[:dim] + shape[dim + 1 :]
        lanes = self.lanes(math.prod(rest), device) ^ self.next_seed()
        z = normals(lanes, dtype or torch.get_default_dtype()).reshape(len(self), *rest)
        return z.movedim(0, dim)


def normal(shape, generator=None, dtype=None, device=None, dim: int = 0) -> torch.Tensor:
    """``torch.randn(shape, generator=generator)``, or keyed draws with the batch on axis
    ``dim`` when ``generator`` is a :class:`KeyedGenerator`."""
    if isinstance(generator, KeyedGenerator):
        return generator.randn(shape, dim, dtype, device)
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def repeat_rows(generator, n: int):
    """The generator for ``n`` sample-major repeats of the batch's rows: ``generator.repeat(n)``
    for a keyed one; a ``torch.Generator`` (or None) as it is."""
    return generator.repeat(n) if isinstance(generator, KeyedGenerator) else generator
