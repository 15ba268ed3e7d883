"""Conversions between ``IrregularBatch`` and xarray / pandas / numpy containers.

The batch remembers the layout of what it was built from (dimension names and order,
coordinates, attrs, dtypes, datetime encoding) in ``meta`` so that ``to_xarray`` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .interpolation import union_grid
from .timeaxis import decode_times, encode_times, is_datetime
from .validation import as_numeric_array, validate_series

__all__ = [
    "encode_time_list",
    "from_dataframe",
    "from_xarray",
    "infer_dtype",
    "to_dataframe",
    "to_dataset",
    "to_xarray",
]


def infer_dtype(values) -> torch.dtype:
    """float32 when every input array is float32, else float64 (precision is never lost)."""
    items = values if isinstance(values, (list, tuple)) else [values]
    dtypes = {getattr(v, "dtype", None) for v in items}
    if dtypes and dtypes <= {np.dtype(np.float32), torch.float32}:
        return torch.float32
    return torch.float64


def encode_time_list(times, unit: str | None = None):
    """Encode datetime times (one array or a list of per-series arrays) with one shared origin.

    Returns ``(times, encoding)``: float arrays and a ``TimeEncoding``, or the input unchanged
    and ``None`` when the times are not datetimes.
    """
    if isinstance(times, torch.Tensor):
        return times, None
    if isinstance(times, np.ndarray) or not isinstance(times, Sequence):
        if is_datetime(times):
            out, enc = encode_times(times, unit, name="times")
            return out, enc
        return times, None
    arrays = [np.asarray(t) for t in times]
    flags = [np.issubdtype(a.dtype, np.datetime64) for a in arrays]
    if not any(flags):
        return times, None
    if not all(flags):
        bad = flags.index(False)
        raise TypeError(
            f"times[{bad}] has dtype {arrays[bad].dtype} but other series have datetime64 "
            "times; all series must use the same kind of time stamps"
        )
    if all(a.ndim == 0 for a in arrays):  # a flat list of stamps is one series
        out, enc = encode_times(np.asarray(arrays), unit, name="times")
        return out, enc
    flat, enc = encode_times(np.concatenate([a.ravel() for a in arrays]), unit, name="times")
    splits = np.cumsum([a.size for a in arrays])[:-1]
    return [p.reshape(a.shape) for p, a in zip(np.split(flat, splits), arrays, strict=True)], enc


def validate_encoded(times, values, encoding, **names):
    """``validate_series`` whose messages say how datetimes were encoded, if they were."""
    try:
        return validate_series(times, values, **names)
    except ValueError as err:
        if encoding is None:
            raise
        raise ValueError(
            f"{err} (times encoded as {encoding.unit} since {encoding.origin})"
        ) from None


# ---------------------------------------------------------------------------- xarray
def from_xarray(cls, obj, time_dim, series_dim, channel_dim, *, variable, label, dtype, time_unit):
    """See :meth:`IrregularBatch.from_xarray`."""
    import xarray as xr

    labels = None
    if isinstance(obj, xr.Dataset):
        if variable is None and "values" in obj.data_vars:
            variable = "values"
        if variable is not None:
            if variable not in obj.data_vars:
                raise ValueError(
                    f"variable {variable!r} is not in obj; data variables: {list(obj.data_vars)}"
                )
            da = obj[variable]
        else:
            names = [v for v in obj.data_vars if time_dim in obj[v].dims]
            if not names:
                raise ValueError(f"obj has no data variable with dimension {time_dim!r}")
            da = obj[names].to_dataarray(dim="channel")
            channel_dim = channel_dim or "channel"
        label = label if label is not None else ("label" if "label" in obj.variables else None)
        if label is not None:
            labels = np.asarray(obj[label].values)
    elif isinstance(obj, xr.DataArray):
        da = obj
        label = label if label is not None else ("label" if "label" in da.coords else None)
        if label is not None:
            labels = np.asarray(da[label].values)
    else:
        raise TypeError(f"obj must be an xarray DataArray or Dataset, got {type(obj).__name__}")

    if time_dim not in da.dims:
        raise ValueError(f"obj has dims {da.dims}; time_dim {time_dim!r} is not one of them")
    series_dim = series_dim or ("series" if "series" in da.dims else None)
    channel_dim = channel_dim or ("channel" if "channel" in da.dims else None)
    for arg, d in (("series_dim", series_dim), ("channel_dim", channel_dim)):
        if d is not None and d not in da.dims:
            raise ValueError(f"obj has dims {da.dims}; {arg} {d!r} is not one of them")
    extra = [d for d in da.dims if d not in (time_dim, series_dim, channel_dim)]
    if extra:
        raise ValueError(
            f"obj has dims {da.dims}; dims {extra} are neither time_dim, series_dim nor "
            "channel_dim (pass series_dim= / channel_dim=)"
        )
    arr = as_numeric_array(da.transpose(*[d for d in (series_dim, time_dim, channel_dim) if d])
                           .values, "obj")  # fmt: skip
    if series_dim is None:
        arr = arr[None]
    if channel_dim is None:
        arr = arr[..., None]
    n_series, n_times, _ = arr.shape

    has_time_coord = time_dim in da.coords
    t = da[time_dim].values if has_time_coord else np.arange(n_times)
    t, encoding = encode_time_list(np.asarray(t), time_unit)
    t_list, v_list = validate_encoded(
        np.broadcast_to(np.asarray(t, dtype=np.float64), (n_series, n_times)),
        arr,
        encoding,
        times_name=f"obj[{time_dim!r}]",
        values_name="obj",
    )
    if labels is not None and labels.shape != (n_series,):
        raise ValueError(f"label {label!r} must have shape ({n_series},), got {labels.shape}")

    def index_of(dim, n):
        return np.asarray(da[dim].values) if dim is not None and dim in da.coords else np.arange(n)

    def coords_along(dim):
        if dim is None:
            return {}
        return {
            k: np.asarray(c.values) for k, c in da.coords.items() if c.dims == (dim,) and k != dim
        }

    meta = {
        "source": "xarray",
        "dims": tuple(da.dims),
        "time_dim": time_dim,
        "series_dim": series_dim,
        "channel_dim": channel_dim,
        "name": da.name,
        "attrs": dict(da.attrs),
        "time_attrs": dict(da[time_dim].attrs) if has_time_coord else {},
        "has_time_coord": has_time_coord,
        "time_dtype": str(np.asarray(da[time_dim].values).dtype) if has_time_coord else None,
        "has_series_index": series_dim is not None and series_dim in da.coords,
        "has_channel_index": channel_dim is not None and channel_dim in da.coords,
        "series_coords": coords_along(series_dim),
        "channel_coords": coords_along(channel_dim),
        "other_coords": {
            k: c.variable.copy()
            for k, c in da.coords.items()
            if k not in da.dims and c.dims != (series_dim,) and c.dims != (channel_dim,)
        },  # fmt: skip
        "values_dtype": str(np.asarray(da.values).dtype),
    }
    return cls._from_lists(
        t_list,
        v_list,
        dtype=dtype or infer_dtype(np.asarray(da.values)),
        series=index_of(series_dim, n_series),
        channels=index_of(channel_dim, arr.shape[2]),
        labels=labels,
        time_encoding=encoding,
        meta=meta,
    )


def _grid_and_values(batch) -> tuple[np.ndarray, np.ndarray, bool]:
    """Shared stamps when all series have them (returns True), else the union grid."""
    t = batch.times
    shared = bool((batch.lengths == t.shape[1]).all()) and bool((t == t[:1]).all())
    if shared:
        grid, vals = t[0], batch.values
    else:
        grid, vals = union_grid(t, batch.values)
    return grid.detach().cpu().numpy(), vals.detach().cpu().numpy(), shared


def to_xarray(batch):
    """See :meth:`IrregularBatch.to_xarray`."""
    import xarray as xr

    meta = batch.meta
    grid, vals, shared = _grid_and_values(batch)
    time_dim = meta.get("time_dim", "time")
    series_dim = meta.get("series_dim") or "series"
    channel_dim = meta.get("channel_dim") or "channel"
    if batch.time_encoding is not None:
        time_values = decode_times(grid, batch.time_encoding)
    else:
        time_values = grid
        if meta.get("time_dtype") and np.issubdtype(np.dtype(meta["time_dtype"]), np.integer):
            if np.all(grid == np.round(grid)):
                time_values = grid.astype(meta["time_dtype"])
    if meta.get("values_dtype"):
        vals = vals.astype(meta["values_dtype"])
    coords = {}
    if meta.get("has_time_coord", True):
        coords[time_dim] = (time_dim, time_values, meta.get("time_attrs", {}))
    if meta.get("has_series_index", True):
        coords[series_dim] = (series_dim, batch.series)
    if meta.get("has_channel_index", True):
        coords[channel_dim] = (channel_dim, batch.channels)
    for k, v in meta.get("series_coords", {}).items():
        coords[k] = (series_dim, v)
    for k, v in meta.get("channel_coords", {}).items():
        coords[k] = (channel_dim, v)
    for k, var in meta.get("other_coords", {}).items():
        if time_dim not in var.dims or (shared and var.shape == (len(grid),)):
            coords[k] = var
    if "series_coords" not in meta and batch.labels is not None:
        coords["label"] = (series_dim, batch.labels)
    da = xr.DataArray(
        vals,
        dims=(series_dim, time_dim, channel_dim),
        coords=coords,
        name=meta.get("name"),
        attrs=dict(meta.get("attrs", {})),
    )
    if meta.get("source") == "xarray":
        if meta["series_dim"] is None:
            da = da.isel({series_dim: 0}, drop=True)
        if meta["channel_dim"] is None:
            da = da.isel({channel_dim: 0}, drop=True)
        da = da.transpose(*meta["dims"])
    return da


def to_dataset(batch):
    """See :meth:`IrregularBatch.to_dataset`."""
    import xarray as xr

    grid, vals, _ = _grid_and_values(batch)
    time_values = grid if batch.time_encoding is None else decode_times(grid, batch.time_encoding)
    ds = xr.Dataset(
        {
            "values": (("series", "time", "channel"), vals),
            "length": ("series", batch.lengths.cpu().numpy()),
        },
        coords={"series": batch.series, "time": time_values, "channel": batch.channels},
        attrs=dict(batch.meta.get("attrs", {})),
    )
    if batch.labels is not None:
        ds["label"] = ("series", batch.labels)
    return ds


# ---------------------------------------------------------------------------- pandas
def from_dataframe(cls, df, id_col, time_col, value_cols, *, label_col, dtype, time_unit):
    """See :meth:`IrregularBatch.from_dataframe`."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    for arg, col in (("id_col", id_col), ("time_col", time_col), ("label_col", label_col)):
        if col is not None and col not in df.columns:
            raise ValueError(f"{arg} {col!r} is not a column of df; columns: {list(df.columns)}")
    reserved = {id_col, time_col, label_col} - {None}
    if value_cols is None:
        value_cols = [c for c in df.columns if c not in reserved]
    value_cols = [value_cols] if isinstance(value_cols, str) else list(value_cols)
    missing = [c for c in value_cols if c not in df.columns]
    if missing or not value_cols:
        raise ValueError(
            f"value_cols {value_cols} must be non-empty columns of df; missing {missing}, "
            f"columns: {list(df.columns)}"
        )
    if df[time_col].isna().any():
        row = df.index[df[time_col].isna().to_numpy()][0]
        raise ValueError(f"df[{time_col!r}] must not be missing, got a missing time at row {row}")
    t_col = df[time_col].to_numpy()
    if not (is_datetime(t_col) or np.issubdtype(t_col.dtype, np.number)):
        raise TypeError(
            f"df[{time_col!r}] must hold numbers or datetime64 stamps, got dtype {t_col.dtype}"
        )
    ids = df[id_col].to_numpy() if id_col is not None else np.zeros(len(df), dtype=int)
    codes, series = pd.factorize(ids, sort=True)  # series in sorted id order
    series = np.asarray(series)
    order = np.lexsort((t_col, codes))
    codes = codes[order]
    t_all, encoding = encode_time_list(t_col[order], time_unit)
    v_all = df[value_cols].to_numpy()[order]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    t_list = np.split(np.asarray(t_all), bounds)
    v_list = np.split(v_all, bounds)
    t_list, v_list = validate_encoded(
        t_list,
        v_list,
        encoding,
        times_name=f"df[{time_col!r}]",
        values_name=f"df[{value_cols}]",
        series_names=series,
    )
    labels = None
    if label_col is not None:
        lab = df[label_col].to_numpy()[order]
        per = np.split(lab, bounds)
        for sid, part in zip(series, per, strict=True):
            if len(pd.unique(part)) != 1:
                raise ValueError(
                    f"df[{label_col!r}] must be constant within a series, but series {sid!r} "
                    f"has labels {list(pd.unique(part))}"
                )
        labels = np.asarray([p[0] for p in per])
    meta = {
        "source": "dataframe",
        "id_col": id_col,
        "time_col": time_col,
        "label_col": label_col,
        "time_dim": "time",
    }
    return cls._from_lists(
        t_list,
        v_list,
        dtype=dtype or (torch.float32 if v_all.dtype == np.float32 else torch.float64),
        series=series,
        channels=np.asarray(value_cols),
        labels=labels,
        time_encoding=encoding,
        meta=meta,
    )


def to_dataframe(batch):
    """See :meth:`IrregularBatch.to_dataframe`."""
    import pandas as pd

    meta = batch.meta
    id_col = meta.get("id_col") or "id"
    time_col = meta.get("time_col") or "time"
    times = batch.times.detach().cpu().numpy()
    values = batch.values.detach().cpu().numpy()
    frames = []
    for i, n in enumerate(batch.lengths.tolist()):
        t = times[i, :n]
        if batch.time_encoding is not None:
            t = decode_times(t, batch.time_encoding)
        frame = pd.DataFrame(values[i, :n], columns=list(batch.channels))
        frame.insert(0, time_col, t)
        frame.insert(0, id_col, np.repeat(batch.series[i : i + 1], n))
        if batch.labels is not None:
            frame[meta.get("label_col") or "label"] = batch.labels[i]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
