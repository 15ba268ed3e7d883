"""Series-chunked dask arrays: the one place that maps a function over the series chunks of
a dask-backed xarray object (``xarray.map_blocks``), for the estimators' chunked inference
and the diffusion models' chunked imputation.

A model travels to the workers as a *payload* of plain values (its saved config and
safetensors weights, never a pickle of torch objects) and a module-level ``build`` function
that rebuilds it, once per worker process (cached on the payload). Blocks hold whole
series: every time stamp and channel.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

import numpy as np

__all__ = ["SERIES", "check_chunks", "is_chunked", "map_series"]

SERIES = "series"


def is_chunked(X) -> bool:
    """Whether ``X`` is an xarray object holding dask arrays."""
    return type(X).__module__.startswith("xarray") and bool(getattr(X, "chunks", None))


def check_chunks(X, name: str = "X"):
    """``X`` with a ``series`` coordinate (labels ``0 .. n-1`` if it had none: blocks then carry
    their global labels), after checking that it is chunked along ``series`` only."""
    if SERIES not in X.dims:
        raise ValueError(
            f"{name} is a dask-backed object with dims {tuple(X.dims)}; chunked inference "
            f"splits it along a {SERIES!r} dimension, which it lacks"
        )
    for dim, sizes in X.chunksizes.items():
        if dim != SERIES and len(sizes) > 1:
            raise ValueError(
                f"{name} is chunked along {dim!r} ({len(sizes)} chunks of {sizes[0]}); chunk "
                f"only along {SERIES!r}: every chunk must hold whole series (rechunk with "
                f"{name}.chunk({{{dim!r}: -1}}))"
            )
    if SERIES not in X.coords:
        X = X.assign_coords({SERIES: np.arange(X.sizes[SERIES])})
    return X


def blocks(X) -> list:
    """The lazy series chunks of ``X`` (xarray objects)."""
    starts = np.cumsum((0, *X.chunksizes[SERIES]))
    return [X.isel({SERIES: slice(a, b)}) for a, b in zip(starts[:-1], starts[1:], strict=True)]


@functools.lru_cache(maxsize=8)
def _model(build, payload):
    return build(*payload)


def _on_worker() -> None:
    """Settings for torch on a dask.distributed worker process.

    * Torch runs one thread per task thread: the worker runs as many blocks at a time as it
      has threads (dask's default: one per core).
    * dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also switches
      off glibc's adaptive mmap threshold: every allocation over 128 KiB is then mapped and
      unmapped by the kernel, and torch, which allocates many such tensors, ran the
      forecaster 1.9x slower (time spent in the kernel). On glibc the worker's thresholds
      are raised once (mmap 32 MiB, trim 128 MiB), as glibc's adaptive rule would.
    """
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    _malloc_thresholds()


@functools.cache
def _malloc_thresholds() -> None:
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 2**20)
    libc.mallopt(m_trim_threshold, 128 * 2**20)


def run_block(block, build, payload, fn, kwargs):
    """``fn(model, block, **kwargs)`` with the model rebuilt from ``payload`` (cached)."""
    _on_worker()
    return fn(_model(build, payload), block, **kwargs)


def _template(probe, X):
    """A lazy object shaped like the result: ``probe`` (the result for one series) with the
    series dimension of ``X`` (its labels and chunks)."""
    import dask.array as da
    import xarray as xr

    chunks, n = X.chunksizes[SERIES], X.sizes[SERIES]
    ds = probe.to_dataset(name="__value__") if isinstance(probe, xr.DataArray) else probe
    out = {}
    for name, var in ds.data_vars.items():
        shape = tuple(n if d == SERIES else var.sizes[d] for d in var.dims)
        sizes = tuple(chunks if d == SERIES else (var.sizes[d],) for d in var.dims)
        out[name] = (var.dims, da.empty(shape, chunks=sizes, dtype=var.dtype))
    coords = {k: c for k, c in ds.coords.items() if SERIES not in c.dims}
    coords[SERIES] = X[SERIES].values
    tmpl = xr.Dataset(out, coords=coords, attrs=ds.attrs)
    if isinstance(probe, xr.DataArray):
        tmpl = tmpl["__value__"].rename(probe.name)
        tmpl.attrs = probe.attrs
    return tmpl


def map_series(X, build, payload: tuple, fn, kwargs: dict, name: str = "X"):
    """The lazy result of ``fn(build(*payload), block, **kwargs)`` over the series chunks of
    ``X`` (each block an in-memory xarray object of whole series), with the dims and
    coordinates ``fn`` gives one series. ``build`` and ``fn`` are module-level functions (they
    travel by name); ``payload`` holds plain values (str, bytes, numbers).
    """
    import xarray as xr

    X = check_chunks(X, name)
    probe = run_block(X.isel({SERIES: slice(0, 1)}).compute(), build, payload, fn, kwargs)
    template = _template(probe, X)
    return xr.map_blocks(run_block, X, args=(build, payload, fn, kwargs), template=template)
