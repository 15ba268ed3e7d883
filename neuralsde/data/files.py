"""Read a user's data file (CSV, Parquet, NetCDF) into an ``IrregularBatch``: the file side
of the input gate, used by the command line.

Tables are long (``id``, ``time``, value columns: one row per series and time stamp) when an
id column is named or present, else wide (one series: the time column, or the first column,
is the time axis and every other column a channel). A time column of date strings is parsed
as datetimes, so that outputs carry the user's own time stamps.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SUFFIXES", "read_batch", "read_frame"]

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".nc": "netcdf",
            ".netcdf": "netcdf", ".nc4": "netcdf"}  # fmt: skip


def _kind(path: Path) -> str:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(
            f"{path}: unknown file type {path.suffix!r}; expected one of {sorted(SUFFIXES)}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return kind


def read_frame(path, time_col: str = "time"):
    """The table or dataset in ``path``: a pandas DataFrame (CSV, Parquet) whose ``time_col``
    holds numbers or datetimes, or an xarray Dataset (NetCDF)."""
    import pandas as pd

    path = Path(path)
    kind = _kind(path)
    if kind == "netcdf":
        import xarray as xr

        with xr.open_dataset(path) as ds:
            return ds.load()
    df = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    if time_col in df.columns and not (
        pd.api.types.is_numeric_dtype(df[time_col])
        or pd.api.types.is_datetime64_any_dtype(df[time_col])
    ):
        try:
            df[time_col] = pd.to_datetime(df[time_col])
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{path}: column {time_col!r} holds neither numbers nor dates ({err})"
            ) from None
    return df


def read_batch(path, *, id_col=None, time_col="time", value_cols=None, label_col=None,
               single=False):  # fmt: skip
    """``path`` through the input gate (:meth:`IrregularBatch.coerce`).

    Args:
        path: a ``.csv``, ``.parquet`` or ``.nc`` file.
        id_col, time_col, value_cols, label_col: columns of a table (``value_cols``: a list or
            a comma-separated string; default every other column). For NetCDF, ``label_col``
            names a variable along ``series``.
        single: the file holds one series (change points): a table needs no id column.

    Raises:
        FileNotFoundError, or ValueError / TypeError naming the file and the column at fault.
    """
    import pandas as pd

    from .batch import IrregularBatch

    path = Path(path)
    frame = read_frame(path, time_col)
    if isinstance(value_cols, str):
        value_cols = [c.strip() for c in value_cols.split(",") if c.strip()]
    name = path.name
    if not isinstance(frame, pd.DataFrame):
        return IrregularBatch.coerce(frame, name, label_col=label_col)
    for arg, col in (("id", id_col), ("time", time_col), ("label", label_col)):
        if col is not None and col not in frame.columns:
            raise ValueError(f"{name}: no column {col!r} (--{arg}); columns: {list(frame.columns)}")
    missing = [c for c in value_cols or [] if c not in frame.columns]
    missing += [time_col] if time_col not in frame.columns else []
    if missing:
        flag = "--time" if missing[0] == time_col else "--values"
        raise ValueError(f"{name}: no column {missing[0]!r} ({flag}); columns: "
                         f"{list(frame.columns)}")  # fmt: skip
    if id_col is None and "id" in frame.columns and not single:
        id_col = "id"
    if id_col is None:  # one series: a wide table over its time column
        wide = frame.set_index(time_col)
        cols = value_cols or [c for c in wide.columns if c != label_col]
        return IrregularBatch.coerce(wide[cols], name)
    return IrregularBatch.coerce(frame, name, id_col=id_col, time_col=time_col,
                                 value_cols=value_cols, label_col=label_col)  # fmt: skip
