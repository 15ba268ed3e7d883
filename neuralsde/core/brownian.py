"""Brownian sources for the solver: one protocol, ``source.increment(i, ta, tb) -> Increment``.

``GridBrownian`` (the fast default) draws the increments of a fixed grid with one
``randn`` call per chunk of steps, and the space-time Levy area with a second call, so
the same seed gives the same path whatever the method; it reads the step index ``i``.
``QueryBrownian`` wraps any torchsde-style ``bm(ta, tb)`` (``bm(ta, tb, return_U=True)`` for
Levy area) and reads the times: torchsde's ``BrownianInterval`` (``interval``) for adaptive
steps, or a user's path shared between solves.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch

from .keyed import MIX1, KeyedGenerator, normals, splitmix

# Increments are drawn one chunk of steps at a time (one randn call per chunk, at most this
# many numbers), which caps their memory however many steps there are.
CHUNK_ELEMENTS = 2**18

# One background thread draws the next chunk while the solver steps through the current
# one (randn releases the GIL), so on a multi-core CPU the noise costs almost no wall time.
_PREFETCH = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neuralsde-noise")


class Increment(NamedTuple):
    """The Brownian increment of one step: ``W: (batch, brownian)`` and, for methods that
    declare ``levy_area``, its time integral ``U = int_ta^tb (W_s - W_ta) ds`` (else None)."""

    W: torch.Tensor
    U: torch.Tensor | None = None


def seed_from(generator: torch.Generator | KeyedGenerator | None) -> int:
    """Draw a 62-bit seed from ``generator`` (or torch's global generator; a keyed one gives
    its next seed)."""
    if isinstance(generator, KeyedGenerator):
        return generator.next_seed()
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(0, 2**62, (), generator=generator, device=device))


class GridBrownian:
    """Increments ``dW_i ~ N(0, h_i)`` and time integrals ``U_i`` on a fixed grid.

    Each chunk of steps takes one ``randn`` call (a whole grid of up to
    ``CHUNK_ELEMENTS`` numbers takes one).

    Args:
        grid: (n + 1,) increasing float64 tensor of step times, or (n + 1, batch) for one
            grid per series (each series' increments scaled by its own step sizes).
        size: (batch, brownian).
        levy_area: also draw ``U_i = int (W_s - W_ti) ds = h_i (dW_i / 2 + H_i)``,
            with ``H_i ~ N(0, h_i / 12)`` the space-time Levy area.

    Chunks of steps are drawn from per-chunk seeds, so a chunk can be regenerated
    (the reversible adjoint walks the steps backwards without storing them).
    """

    def __init__(self, grid, size, *, levy_area=False, generator=None, dtype=None, device=None):
        self.h = torch.diff(grid.to(torch.float64), dim=0)
        self.size = tuple(size)
        self.levy_area = levy_area
        self.dtype, self.device = dtype, device
        n = len(self.h)
        per_step = max(1, math.prod(self.size))
        self.chunk = max(1, min(n, CHUNK_ELEMENTS // per_step))
        n_chunks = -(-n // self.chunk)
        self.seeds = [seed_from(generator) for _ in range(n_chunks)]
        self._cached = (-1, None)
        self._pending: dict = {}

    def _draw(self, c):
        lo, hi = c * self.chunk, min((c + 1) * self.chunk, len(self.h))
        gen = torch.Generator(device=self.device or "cpu").manual_seed(self.seeds[c])
        shape = (hi - lo, *self.size)
        sqrt_h = self.h[lo:hi].sqrt().to(device=self.device, dtype=self.dtype)
        sqrt_h = sqrt_h.view(*sqrt_h.shape, *([1] * (len(self.size) + 1 - sqrt_h.dim())))
        dw = torch.randn(shape, generator=gen, dtype=self.dtype, device=self.device).mul_(sqrt_h)
        u = None
        if self.levy_area:
            z = torch.randn(shape, generator=gen, dtype=self.dtype, device=self.device)
            hh = self.h[lo:hi].to(device=self.device, dtype=self.dtype).view_as(sqrt_h)
            u = z.mul_(sqrt_h / math.sqrt(12.0)).add_(dw, alpha=0.5).mul_(hh)
        if u is None:
            return [Increment(w) for w in dw.unbind(0)]
        return [Increment(w, v) for w, v in zip(dw.unbind(0), u.unbind(0), strict=True)]

    def _fetch(self, c):
        previous = self._cached[0]
        self._cached = (-1, None)  # free the old chunk before drawing the next
        future = self._pending.pop(c, None)
        drawn = future.result() if future is not None else self._draw(c)
        nxt = c - 1 if previous > c else c + 1  # walk on in the direction of travel
        if 0 <= nxt < len(self.seeds) and not self._pending:
            self._pending[nxt] = _PREFETCH.submit(self._draw, nxt)
        return drawn

    def increment(self, i: int, ta=None, tb=None) -> Increment:
        """The increment of step ``i`` (the times are implied by the grid)."""
        c = i // self.chunk
        if self._cached[0] != c:
            self._cached = (c, self._fetch(c))
        return self._cached[1][i - c * self.chunk]


class KeyedGridBrownian:
    """The increments of a fixed grid drawn from a :class:`~neuralsde.core.keyed.
    KeyedGenerator`: step ``i`` of a series is a pure function of the seed, ``i`` and the
    series' key, so a chunk of series draws exactly its rows of the whole batch's increments
    (on the same grid). Same arguments as :class:`GridBrownian`; ``size[0]`` must be the
    generator's number of series."""

    def __init__(self, grid, size, generator: KeyedGenerator, *, levy_area=False, dtype=None,
                 device=None):  # fmt: skip
        if size[0] != len(generator):
            raise ValueError(f"the keyed generator names {len(generator)} series; the solve "
                             f"has {size[0]} rows")  # fmt: skip
        self.levy_area, self.dtype = levy_area, dtype
        self.lanes = generator.lanes(math.prod(size[1:]), device).view(size)
        h = torch.diff(grid.to(torch.float64), dim=0).to(device=device, dtype=dtype)
        if h.dim() > 1:  # one grid per series: (n, batch) -> (n, batch, 1, ...)
            h = h.view(*h.shape, *([1] * (self.lanes.dim() - 1)))
        self.h, self.sqrt_h = h, h.sqrt()
        seeds = (generator.next_seed(), generator.next_seed() if levy_area else 0)
        self.seeds = torch.tensor(seeds, dtype=torch.int64)
        self.mix = torch.tensor(MIX1)

    def increment(self, i: int, ta=None, tb=None) -> Increment:
        steps = splitmix(self.seeds + i * self.mix)  # int64: wraps
        dw = normals(self.lanes ^ steps[0], self.dtype) * self.sqrt_h[i]
        if not self.levy_area:
            return Increment(dw)
        h = self.h[i]
        z = normals(self.lanes ^ steps[1], self.dtype) * (self.sqrt_h[i] / math.sqrt(12.0))
        return Increment(dw, h * (dw / 2 + z))


class QueryBrownian:
    """Wrap a torchsde-style ``bm(ta, tb)`` as a source: ``increment(i, ta, tb)`` reads the
    times and ignores the step index. ``ta, tb`` are floats, or ``(batch,)`` arrays of
    per-series times for a ``bm`` that takes them (:class:`BrownianPath` does)."""

    def __init__(self, bm, levy_area=False):
        self.bm, self.levy_area = bm, levy_area

    def increment(self, i, ta, tb) -> Increment:
        if self.levy_area:
            dw, u = self.bm(ta, tb, return_U=True)
            return Increment(dw, u)
        return Increment(self.bm(ta, tb))


def interval(t0, t1, size, *, levy_area=False, generator=None, dtype=None, device=None,
             dt=None):  # fmt: skip
    """A queryable torchsde ``BrownianInterval`` on [t0, t1] seeded from ``generator``.

    ``dt``: the step size it will be queried at, if known. Without it the interval shapes its
    dependency tree from the queries it sees, and one query over a tiny interval (a step of
    1e-17 left by rounding) makes it split down to that size, which does not end in practice
    (torchsde issue #36)."""
    if isinstance(generator, KeyedGenerator):
        if levy_area:
            raise ValueError(
                "a keyed generator gives adaptive steps a BrownianTree, which has no Levy "
                "area: use fixed steps (dt) or a method without it"
            )
        return BrownianTree(t0, t1, size, generator=generator, dtype=dtype, device=device)
    import torchsde

    return torchsde.BrownianInterval(
        t0=float(t0),
        t1=float(t1),
        size=tuple(size),
        dtype=dtype,
        device=device,
        entropy=seed_from(generator),
        levy_area_approximation="space-time" if levy_area else "none",
        dt=None if dt is None else float(dt),
    )


class BrownianPath:
    """A Brownian path sampled on a fine uniform grid, queryable as ``bm(ta, tb)`` for any
    ``ta < tb`` on that grid (torchsde style, ``return_U=True`` adds the time integral).
    ``ta`` and ``tb`` may also be ``(batch,)`` arrays: each series' own interval.

    Coarse increments and time integrals are exact sums of the fine ones, so solves at
    several step sizes share one path: the fast way to measure convergence orders.

    Args:
        t0, t1: time span; n: number of fine steps; size: (batch, brownian).

    Example:
        >>> bm = BrownianPath(0.0, 1.0, 1024, (3, 2), generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(bm(0.0, 0.5) + bm(0.5, 1.0), bm(0.0, 1.0))
        True
    """

    def __init__(self, t0, t1, n, size, *, generator=None, dtype=torch.float64, device=None):
        self.t0, self.t1, self.n = float(t0), float(t1), int(n)
        self.h = (self.t1 - self.t0) / self.n
        grid = torch.linspace(self.t0, self.t1, self.n + 1, dtype=torch.float64)
        fine = GridBrownian(
            grid, size, levy_area=True, generator=generator, dtype=dtype, device=device
        )
        dw = torch.stack([fine.increment(i).W for i in range(self.n)])
        u = torch.stack([fine.increment(i).U for i in range(self.n)])
        zero = torch.zeros_like(dw[:1])
        self.w = torch.cat([zero, dw.cumsum(0)])
        # A_k = int_{t0}^{t_k} W_s ds; each fine step adds W_j h + U_j.
        self.a = torch.cat([zero, (self.w[:-1] * self.h + u).cumsum(0)])

    def _index(self, t):
        x = (np.asarray(t, dtype=np.float64) - self.t0) / self.h
        i = np.round(x)
        if np.any(np.abs(x - i) > 1e-6) or np.any(i < 0) or np.any(i > self.n):
            raise ValueError(
                f"BrownianPath is queryable on its grid t0 + k h (h={self.h:.6g}, "
                f"0 <= k <= {self.n}); got t={np.asarray(t)}"
            )
        return int(i) if i.ndim == 0 else torch.from_numpy(i.astype(np.int64))

    def _at(self, v, i):
        if isinstance(i, int):
            return v[i]
        return v[i, torch.arange(v.shape[1])]  # (batch, brownian): each series' own time

    def __call__(self, ta, tb, return_U=False):
        i, j = self._index(ta), self._index(tb)
        dw = self._at(self.w, j) - self._at(self.w, i)
        if not return_U:
            return dw
        span = (j - i) * self.h
        if not isinstance(span, float):
            span = span.to(self.w.dtype).unsqueeze(-1)
        return dw, (self._at(self.a, j) - self._at(self.a, i)) - self._at(self.w, i) * span


class BrownianTree:
    """A Brownian motion queryable at *per-series* times, the same path whatever the order of
    the queries: a virtual Brownian tree (Li et al. 2020, "Scalable gradients for SDEs").

    ``W`` is exact on the dyadic grid ``t0 + k (t1 - t0) / 2^depth`` (other times are rounded
    to it): ``W(t1)`` is drawn first, then every midpoint from the Brownian bridge between
    its ends, each draw a pure function of ``(seed, node, series, channel)``. Adaptive steps
    with one step size per series can then reject a step without biasing the path.

    ``bm(ta, tb)`` takes floats or ``(batch,)``/``(batch, 1)`` tensors and returns
    ``(batch, brownian)`` increments.

    ``keys: (batch,)`` integers name the series (default ``0 .. batch-1``): a series' path
    depends only on the seed and its key, so any sub-batch that keeps its series' keys (a
    chunk of a large batch, processed elsewhere) draws exactly the paths those series draw
    in the whole batch.

    Example:
        >>> bm = BrownianTree(0.0, 1.0, (3, 2), generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(bm(0.0, 0.3) + bm(0.3, 1.0), bm(0.0, 1.0))
        True
    """

    def __init__(self, t0, t1, size, *, depth: int = 20, generator=None, dtype=torch.float64,
                 device=None, keys=None):  # fmt: skip
        self.t0, self.t1, self.depth = float(t0), float(t1), int(depth)
        self.batch, self.channels = (int(s) for s in size)
        self.dtype, self.device = dtype, device
        self.seed = seed_from(generator)
        self.cell = (self.t1 - self.t0) / 2**self.depth
        if keys is None and isinstance(generator, KeyedGenerator):
            keys = generator.keys
        if keys is None:
            keys = torch.arange(self.batch, dtype=torch.int64, device=device)
        keys = torch.as_tensor(keys, device=device)
        if keys.shape != (self.batch,) or keys.is_floating_point() or keys.is_complex():
            raise ValueError(
                f"keys must be {self.batch} integers, one per series; got dtype {keys.dtype} "
                f"and shape {tuple(keys.shape)}"
            )
        channel = torch.arange(self.channels, dtype=torch.int64, device=device)
        # one lane per (series key, channel): a pure function of the key, not of the position
        self._lanes = splitmix(keys.to(torch.int64).unsqueeze(-1) * self.channels + channel)

    def _draw(self, node: torch.Tensor) -> torch.Tensor:
        key = splitmix(self.seed + node.unsqueeze(-1) * MIX1)
        return normals(key ^ self._lanes, self.dtype)

    def _index(self, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64, device=self.device).reshape(-1)
        k = torch.round((t - self.t0) / self.cell).to(torch.int64).clamp(0, 2**self.depth)
        return k.expand(self.batch) if k.numel() == 1 else k

    def value(self, t) -> torch.Tensor:
        """``W(t): (batch, brownian)``, ``W(t0) = 0``."""
        k = self._index(t)
        lo, hi = torch.zeros_like(k), torch.full_like(k, 2**self.depth)
        w_lo = torch.zeros(self.batch, self.channels, dtype=self.dtype, device=self.device)
        w_hi = math.sqrt(self.t1 - self.t0) * self._draw(torch.zeros_like(k))
        for level in range(self.depth):
            mid = (lo + hi) // 2
            node = (1 << (level + 1)) + (lo >> (self.depth - level))
            std = torch.sqrt(((hi - lo).to(self.dtype) * self.cell) / 4).unsqueeze(-1)
            w_mid = 0.5 * (w_lo + w_hi) + std * self._draw(node)
            right = (k >= mid).unsqueeze(-1)
            w_lo, w_hi = torch.where(right, w_mid, w_lo), torch.where(right, w_hi, w_mid)
            lo, hi = torch.where(k >= mid, mid, lo), torch.where(k >= mid, hi, mid)
        return torch.where((k == hi).unsqueeze(-1), w_hi, w_lo)

    def __call__(self, ta, tb):
        return self.value(tb) - self.value(ta)
