"""Turn the inputs a change-point user passes (arrays, xarray, pandas, an IrregularBatch of one
series) into ``times (n,)``, ``values (n, channel)`` with NaN for missing values, and checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Series:
    """One validated series. ``values: (n, channel)`` float64, NaN = missing;
    ``times: (n,)`` strictly increasing float64; ``coord: (n,)`` the user's time labels."""

    times: np.ndarray
    values: np.ndarray
    coord: np.ndarray
    channels: list


def _numeric_times(coord: np.ndarray) -> np.ndarray:
    if np.issubdtype(coord.dtype, np.datetime64):
        return (coord - coord[0]) / np.timedelta64(1, "s")
    if np.issubdtype(coord.dtype, np.timedelta64):
        return coord / np.timedelta64(1, "s")
    try:
        return np.asarray(coord, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"times must be numeric or datetime64; got dtype {coord.dtype}") from err


def _from_xarray(signal) -> tuple[np.ndarray, np.ndarray | None, list]:
    if "time" not in signal.dims:
        raise ValueError(f"signal (xarray) must have a 'time' dimension; got dims {signal.dims}")
    other = [d for d in signal.dims if d != "time"]
    for d in other:
        if d != "channel" and signal.sizes[d] != 1:
            raise ValueError(
                f"signal (xarray) must hold one series: dimension {d!r} has size "
                f"{signal.sizes[d]}; expected dims ('time',) or ('time', 'channel')"
            )
    squeeze = [d for d in other if d != "channel"]
    arr = signal.squeeze(squeeze, drop=True) if squeeze else signal
    arr = arr.transpose("time", ...)
    coord = np.asarray(arr["time"].values) if "time" in arr.coords else None
    chans = list(arr["channel"].values) if "channel" in arr.coords else []
    return np.asarray(arr.values), coord, chans


def _from_irregular_batch(signal) -> tuple[np.ndarray, np.ndarray, list]:
    times = signal.times.detach().cpu().numpy() if hasattr(signal.times, "detach") else signal.times
    vals = (
        signal.values.detach().cpu().numpy() if hasattr(signal.values, "detach") else signal.values
    )
    times, vals = np.asarray(times), np.asarray(vals)
    if times.ndim != 2 or times.shape[0] != 1:
        raise ValueError(
            f"signal (IrregularBatch) must hold exactly one series; got times of shape "
            f"{tuple(times.shape)}, expected (1, length)"
        )
    n = times.shape[1]
    lengths = getattr(signal, "lengths", None)
    if lengths is not None:
        n = int(np.asarray(lengths.detach().cpu() if hasattr(lengths, "detach") else lengths)[0])
    return vals[0, :n], times[0, :n], []


def as_series(signal, times=None) -> Series:
    """Validate ``signal`` (``(n,)`` or ``(n, d)`` array-like, xarray DataArray with a ``time``
    dimension, pandas Series/DataFrame, or an IrregularBatch of one series) and ``times``.

    Rows whose channels are all NaN are dropped (an irregular grid). Raises ValueError for
    NaN-only or infinite channels, a constant series, and times that are not increasing.
    """
    coord = None
    chans: list = []
    if hasattr(signal, "dims") and hasattr(signal, "values") and hasattr(signal, "coords"):
        values, coord, chans = _from_xarray(signal)
    elif hasattr(signal, "times") and hasattr(signal, "values") and hasattr(signal, "mask"):
        values, coord, chans = _from_irregular_batch(signal)
    elif hasattr(signal, "index") and hasattr(signal, "to_numpy"):
        coord = np.asarray(signal.index)
        chans = list(signal.columns) if hasattr(signal, "columns") else []
        values = signal.to_numpy()
    else:
        values = signal
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"signal must be numeric array-like; got {type(signal).__name__}") from err
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"signal must have shape (n,) or (n, channel); got shape {values.shape}")
    n, d = values.shape
    if times is not None:
        coord = np.asarray(times)
        if coord.shape != (n,):
            raise ValueError(f"times must have shape ({n},) to match signal; got {coord.shape}")
    if coord is None:
        coord = np.arange(n)
    t = _numeric_times(np.asarray(coord))
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite; got NaN or infinite time stamps")
    if n > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("times must be strictly increasing; got repeated or decreasing stamps")
    if np.isinf(values).any():
        raise ValueError("signal must not contain infinite values (use NaN for missing ones)")
    observed = ~np.isnan(values)
    empty = np.flatnonzero(~observed.any(0))
    if empty.size:
        raise ValueError(
            f"signal channel(s) {empty.tolist()} are entirely NaN; expected every channel to "
            "hold at least two observed values (drop the channel)"
        )
    keep = observed.any(1)
    values, t, coord = values[keep], t[keep], np.asarray(coord)[keep]
    spread = np.nanmax(values, 0) - np.nanmin(values, 0)
    if np.all(spread == 0):
        raise ValueError(
            "signal is constant (every channel takes a single value); a change-point score "
            "needs a series that varies"
        )
    if not chans:
        chans = list(range(d))
    return Series(times=t, values=values, coord=coord, channels=chans)
