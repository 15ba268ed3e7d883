"""Datetime time stamps to floats and back, with a recorded unit and origin.

Models work on float times; analysts' data carry ``datetime64`` stamps. A time ``t`` is encoded
as ``(t - origin) / unit`` and decoded as ``origin + round(x * unit)``, exactly for stamps that
are whole multiples of ``unit`` away from ``origin`` (the automatic unit guarantees this).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TimeEncoding", "decode_times", "encode_times", "is_datetime"]

_UNITS = ("D", "h", "m", "s", "ms", "us", "ns")
_NS_PER_UNIT = {
    "D": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "ns": 1,
}


@dataclass(frozen=True)
class TimeEncoding:
    """How datetimes were turned into floats: ``float = (datetime - origin) / unit``.

    ``dtype`` is the original numpy datetime dtype (e.g. ``datetime64[us]``), restored on decode.
    """

    unit: str
    origin: np.datetime64
    dtype: str


def is_datetime(t) -> bool:
    """True when ``t`` (array-like) holds ``datetime64`` stamps."""
    return np.issubdtype(np.asarray(t).dtype, np.datetime64)


def encode_times(t, unit: str | None = None, origin=None) -> tuple[np.ndarray, TimeEncoding]:
    """Encode datetime64 stamps ``t`` (any shape, NaT allowed) as float64 offsets.

    Args:
        t: datetime64 array-like.
        unit: one of ``"D", "h", "m", "s", "ms", "us", "ns"``; ``None`` picks the coarsest unit
            in which every offset is a whole number (so decoding is exact).
        origin: the datetime mapped to 0; ``None`` uses the earliest stamp.

    Returns:
        ``(floats, encoding)`` with ``floats`` of the same shape as ``t`` (NaT -> NaN).

    Example:
        >>> x, enc = encode_times(np.array(["2020-01-01", "2020-01-08"], dtype="datetime64[D]"))
        >>> x.tolist(), enc.unit
        ([0.0, 7.0], 'D')
    """
    arr = np.asarray(t)
    if not np.issubdtype(arr.dtype, np.datetime64):
        raise TypeError(f"t must hold datetime64 values, got dtype {arr.dtype}")
    if unit is not None and unit not in _NS_PER_UNIT:
        raise ValueError(f"unit must be one of {_UNITS}, got {unit!r}")
    ns = arr.astype("datetime64[ns]")
    valid = ~np.isnat(ns)
    if not valid.any():
        raise ValueError("t holds no valid datetime (every entry is NaT)")
    origin = ns[valid].min() if origin is None else np.datetime64(origin, "ns")
    offsets = (ns - origin).astype(np.int64)
    if unit is None:
        unit = next(u for u in _UNITS if np.all(offsets[valid] % _NS_PER_UNIT[u] == 0))
    out = np.full(arr.shape, np.nan)
    out[valid] = offsets[valid] / _NS_PER_UNIT[unit]
    return out, TimeEncoding(unit=unit, origin=origin, dtype=str(arr.dtype))


def decode_times(x, encoding: TimeEncoding) -> np.ndarray:
    """Invert :func:`encode_times`: float offsets ``x`` (NaN -> NaT) to ``encoding.dtype``.

    Example:
        >>> x, enc = encode_times(np.array(["2020-01-01", "2020-01-08"], dtype="datetime64[D]"))
        >>> decode_times(x, enc)
        array(['2020-01-01', '2020-01-08'], dtype='datetime64[D]')
    """
    arr = np.asarray(x, dtype=np.float64)
    valid = ~np.isnan(arr)
    ns = np.full(arr.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    # whole units and the fraction separately: float64 cannot hold ~1e18 ns exactly
    whole = np.floor(arr[valid])
    scale = _NS_PER_UNIT[encoding.unit]
    offsets = whole.astype(np.int64) * scale + np.rint((arr[valid] - whole) * scale).astype(
        np.int64
    )
    ns[valid] = encoding.origin + offsets.astype("timedelta64[ns]")
    return ns.astype(encoding.dtype)
