"""The one input gate: every form of user data an estimator accepts, as an ``IrregularBatch``.

:meth:`IrregularBatch.coerce` calls :func:`coerce`; estimators, the change-point detector and
the command line call nothing else to read user input. The forms, and how they are read:

* an ``IrregularBatch``: as it is;
* an xarray ``DataArray``/``Dataset`` (dims ``series``, ``time``, ``channel``):
  :meth:`IrregularBatch.from_xarray`;
* a pandas ``DataFrame``: long (an ``id`` column, a ``time`` column, one column per channel)
  when it has the time column, else wide (the index is the time axis, one column per channel,
  one series);
* a pandas ``Series``: one univariate series over its index;
* a ``(B, L, C)`` or ``(B, L)`` array or tensor, NaN where missing, times ``0 .. L-1`` or
  ``times``; with ``single=True`` an ``(L,)`` / ``(L, C)`` array is one series;
* a list of ragged ``(L_i, C)`` / ``(L_i,)`` arrays (times ``0 .. L_i-1`` or the list
  ``times``), or a list of ``(times, values)`` pairs; a ``(times, values)`` tuple of two
  arrays.

Channels read from a source that names them (columns, a channel coordinate, a Series name)
keep their names, so that estimators match channels by name (:func:`align_channels`).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["align_channels", "check_observed", "coerce", "named_channels"]

_FORMS = (
    "an IrregularBatch, an xarray DataArray/Dataset, a pandas DataFrame (long or wide) or "
    "Series, a (series, time, channel) array with NaN for missing values, or a list of ragged "
    "(time, channel) arrays"
)


def coerce(cls, X, name="X", *, times=None, single=False, id_col=None, time_col=None,
           value_cols=None, label_col=None):  # fmt: skip
    """See :meth:`IrregularBatch.coerce`."""
    if isinstance(X, cls):
        if times is not None:
            raise TypeError(f"times must be None when {name} is an IrregularBatch (it has times)")
        return X
    try:
        return _read(cls, X, name, times, single, id_col, time_col, value_cols, label_col)
    except (TypeError, ValueError) as err:
        message = str(err)
        if message.startswith(name) or message.startswith("times"):
            raise
        raise type(err)(f"{name}: {message}") from None


def _read(cls, X, name, times, single, id_col, time_col, value_cols, label_col):
    module = type(X).__module__
    if module.startswith("xarray"):
        _no_times(times, name, "an xarray object")
        return cls.from_xarray(X, label=label_col)
    if module.startswith("pandas"):
        _no_times(times, name, "a pandas object")
        return _from_pandas(cls, X, name, id_col, time_col, value_cols, label_col)
    if isinstance(X, np.ndarray | torch.Tensor):
        return _from_array(cls, X, name, times, single)
    if isinstance(X, tuple) and len(X) == 2 and times is None and _is_pair(X):
        return cls.from_arrays(X[0], X[1])
    if isinstance(X, list | tuple) and X:
        if any(_is_scalar(s) for s in X):
            if single:
                return _from_array(cls, np.asarray(X, dtype=np.float64), name, times, single)
            raise TypeError(
                f"{name} must be {_FORMS}; got a flat {type(X).__name__} of numbers (pass one "
                f"series as a list holding one array)"
            )
        if all(isinstance(s, tuple) and len(s) == 2 for s in X):
            _no_times(times, name, "a list of (times, values) pairs")
            return cls.from_arrays([s[0] for s in X], [s[1] for s in X])
        if single:
            return _from_array(cls, np.asarray(X, dtype=np.float64), name, times, single)
        if times is None:
            times = [np.arange(len(s), dtype=np.float64) for s in X]
        return cls.from_arrays(times, list(X))
    if isinstance(X, list | tuple):
        raise ValueError(f"{name} must hold at least one series; got an empty {type(X).__name__}")
    raise TypeError(f"{name} must be {_FORMS}; got {type(X).__name__}")


def _is_scalar(s) -> bool:
    return np.isscalar(s) or (isinstance(s, np.ndarray | torch.Tensor) and s.ndim == 0)


def _no_times(times, name, what):
    if times is not None:
        raise TypeError(f"times must be None when {name} is {what} (it carries its own times)")


def _is_pair(X) -> bool:
    """``(times, values)``: a 1-D/2-D times array and a values array of matching leading size."""
    t, v = (np.asarray(a) if not isinstance(a, list) else None for a in X)
    if t is None or v is None or t.dtype == object or v.dtype == object:
        return False
    return t.ndim in (1, 2) and v.ndim >= t.ndim and v.shape[: t.ndim] == t.shape


def _from_array(cls, X, name, times, single):
    if single:
        if X.ndim not in (1, 2):
            raise ValueError(
                f"{name} must be one series of shape (time,) or (time, channel); got shape "
                f"{tuple(X.shape)}"
            )
        t = np.arange(X.shape[0], dtype=np.float64) if times is None else times
        return cls.from_arrays(t, X if X.ndim == 2 else X[:, None])
    if X.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be a (series, time, channel) or (series, time) array; got shape "
            f"{tuple(X.shape)}"
        )
    if times is None:
        times = np.broadcast_to(np.arange(X.shape[1], dtype=np.float64), X.shape[:2])
    elif np.ndim(times) == 1 and len(times) == X.shape[1]:
        times = np.broadcast_to(np.asarray(times), X.shape[:2])
    return cls.from_arrays(times, X)


def _from_pandas(cls, X, name, id_col, time_col, value_cols, label_col):
    import pandas as pd

    if isinstance(X, pd.Series):
        frame = X.to_frame(name=X.name if X.name is not None else "value")
        return _from_wide(cls, frame, f"{name}", None)
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name} must be {_FORMS}; got pandas {type(X).__name__}")
    if X.empty:
        raise ValueError(f"{name} must hold at least one row; got an empty DataFrame")
    long = time_col is not None or id_col is not None or "time" in X.columns
    if not long:
        return _from_wide(cls, X, name, value_cols)
    time_col = time_col or "time"
    if id_col is None and "id" in X.columns:
        id_col = "id"
    if label_col is None and "label" in X.columns:
        label_col = "label"
    reserved = {id_col, time_col, label_col} - {None}
    cols = [c for c in X.columns if c not in reserved] if value_cols is None else value_cols
    _check_numeric_columns(X, cols, name)
    return cls.from_dataframe(X, id_col=id_col, time_col=time_col, value_cols=value_cols,
                              label_col=label_col)  # fmt: skip


def _from_wide(cls, frame, name, value_cols):
    """One series: the index is the time axis, each column a channel."""
    import pandas as pd

    cols = list(frame.columns) if value_cols is None else list(np.atleast_1d(value_cols))
    _check_numeric_columns(frame, cols, name)
    index = frame.index
    if isinstance(index, pd.DatetimeIndex):
        t = index.tz_localize(None).to_numpy() if index.tz is not None else index.to_numpy()
    elif pd.api.types.is_numeric_dtype(index.dtype):
        t = index.to_numpy(dtype=np.float64)
    else:
        raise TypeError(
            f"{name}.index must hold datetimes or numbers (the time axis of a wide table), got "
            f"dtype {index.dtype}; for a long table pass time_col="
        )
    values = frame[cols].to_numpy(dtype=np.float64)
    return cls.from_arrays(t, values, channels=np.asarray(cols, dtype=object))


def _check_numeric_columns(frame, cols, name):
    import pandas as pd

    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(
            f"value_cols {missing} are not columns of {name}; columns: {list(frame.columns)}"
        )
    for c in cols:
        dtype = frame[c].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)):
            raise TypeError(
                f"{name}[{c!r}] has dtype {dtype}, but every value column must be numeric; "
                f"pass value_cols= to choose the value columns"
            )


# ------------------------------------------------------------------------------ channels
def named_channels(channels) -> bool:
    """True when ``channels`` carry names (not the positions ``0 .. C-1`` a bare array gets)."""
    arr = np.asarray(channels)
    positional = np.issubdtype(arr.dtype, np.integer) and np.array_equal(arr, np.arange(len(arr)))
    return not positional


def align_channels(batch, channels, name="X"):
    """``batch`` with its channels in the order of ``channels`` (the fitted ones).

    Named channels are matched by name (reordered; a missing or an unknown channel raises a
    ``ValueError`` naming it); unnamed ones by position (the count must match).
    """
    from dataclasses import replace

    want = list(channels)
    have = batch.channel_names
    if named_channels(have) and named_channels(want):
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        if missing or extra:
            raise ValueError(
                f"{name} has channels {have}, but the estimator was fitted on {want}: "
                f"missing {missing}, unknown {extra}"
            )
        order = [have.index(c) for c in want]
        if order == list(range(len(want))):
            return batch
        return replace(batch, values=batch.values[..., order], channels=np.asarray(want))
    if len(have) != len(want):
        raise ValueError(
            f"{name} has {len(have)} channels but the estimator was fitted on {len(want)}; "
            f"pass series with {len(want)} channels"
        )
    return batch


def check_observed(batch, name="X", channels: bool = True) -> None:
    """Raise a ``ValueError`` naming every series with no observation, and (``channels``) every
    channel that no series observes at all (an estimator would otherwise learn, or invent,
    values for a channel it never saw)."""
    per_series = batch.mask.reshape(batch.batch_size, -1).any(-1)
    if not bool(per_series.all()):
        bad = [str(s) for s in np.asarray(batch.series)[~per_series.cpu().numpy()]]
        raise ValueError(
            f"{name}: series {', '.join(bad)} has no observed value (all NaN); every series "
            f"needs at least one observation"
        )
    seen = batch.mask.reshape(-1, batch.n_channels).any(0)
    if channels and not bool(seen.all()):
        bad = [c for c, ok in zip(batch.channel_names, seen.tolist(), strict=True) if not ok]
        raise ValueError(
            f"{name}: channel(s) {bad} have no observed value in any series; drop them "
            f"(every channel needs at least one observation)"
        )
