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


def encode_times(
    t, unit: str | None = None, origin=None, name: str = "t"
) -> tuple[np.ndarray, TimeEncoding]:
    """Encode datetime64 stamps ``t`` (any shape, NaT allowed) as float64 offsets.

    Args:
        t: datetime64 array-like.
        unit: one of ``"D", "h", "m", "s", "ms", "us", "ns"``; ``None`` picks the coarsest unit
            in which every offset is a whole number (so decoding is exact). Offsets beyond
            2**53 units (nanosecond stamps spanning more than ~104 days) raise ``ValueError``
            naming a unit that holds them.
        origin: the datetime mapped to 0; ``None`` uses the earliest stamp (floored to whole
            ``unit`` when ``unit`` is given, so stamps on whole units stay exact).
        name: how ``t`` is named in error messages.

    Returns:
        ``(floats, encoding)`` with ``floats`` of the same shape as ``t`` (NaT -> NaN).

    Example:
        >>> x, enc = encode_times(np.array(["2020-01-01", "2020-01-08"], dtype="datetime64[D]"))
        >>> x.tolist(), enc.unit
        ([0.0, 7.0], 'D')
    """
    arr = np.asarray(t)
    if not np.issubdtype(arr.dtype, np.datetime64):
        raise TypeError(f"{name} must hold datetime64 values, got dtype {arr.dtype}")
    if unit is not None and unit not in _NS_PER_UNIT:
        raise ValueError(f"unit must be one of {_UNITS}, got {unit!r}")
    ns = arr.astype("datetime64[ns]")
    valid = ~np.isnat(ns)
    if not valid.any():
        raise ValueError(f"{name} holds no valid datetime (every entry is NaT)")
    if not np.array_equal(ns[valid].astype(arr.dtype), arr[valid]):
        raise ValueError(
            f"{name} holds stamps outside the range of datetime64[ns] (years 1678 to 2261), e.g. "
            f"{arr[valid][ns[valid].astype(arr.dtype) != arr[valid]][0]}"
        )
    if origin is None:  # the earliest stamp, in whole units when the unit is given
        origin = ns[valid].min()
        if unit is not None:
            origin = origin.astype(f"datetime64[{unit}]").astype("datetime64[ns]")
    else:
        origin = np.datetime64(origin, "ns")
    offsets = (ns - origin).astype(np.int64)
    if unit is None:
        unit = next(u for u in _UNITS if np.all(offsets[valid] % _NS_PER_UNIT[u] == 0))
    _check_exact(offsets[valid], unit, name)
    out = np.full(arr.shape, np.nan)
    out[valid] = offsets[valid] / _NS_PER_UNIT[unit]
    return out, TimeEncoding(unit=unit, origin=origin, dtype=str(arr.dtype))


def _check_exact(offsets: np.ndarray, unit: str, name: str) -> None:
    """Float64 offsets are exact whole units only up to 2**53 (about 104 days of
    nanoseconds); refuse stamps that would be rounded, and say which unit would hold them."""
    span = int(np.abs(offsets).max())  # in ns
    largest = span // _NS_PER_UNIT[unit]
    if largest <= 2**53:
        return
    finest = next(u for u in reversed(_UNITS) if span // _NS_PER_UNIT[u] <= 2**53)
    raise ValueError(
        f"{name} spans {largest} {unit} from its origin, beyond 2**53, where float64 offsets "
        f"cannot hold every stamp exactly (stamps would be rounded); pass time_unit="
        f"{finest!r} or coarser: stamps are then exact to that unit, and finer parts "
        f"are kept to float64 precision"
    )


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
