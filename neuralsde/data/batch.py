"""``IrregularBatch``: a padded batch of irregularly sampled, gappy multichannel series.

Series ``i`` has ``lengths[i]`` time stamps ``times[i, :lengths[i]]`` (strictly increasing) and
values ``values[i, :lengths[i]]`` with NaN where a channel was not observed. Entries past
``lengths[i]`` are padding (NaN). This is the one container every model reads its data from;
results go back out through :meth:`IrregularBatch.to_xarray`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from . import coerce as _coerce
from . import convert
from .interpolation import augment, control_path, fill_missing, union_grid
from .protocol import drop_points, stratified_split
from .scaling import Scaler
from .signatures import logsignature as _logsignature
from .signatures import signature as _signature
from .signatures import windowed_logsignature
from .timeaxis import TimeEncoding, decode_times
from .validation import narrow, validate_padded

__all__ = ["IrregularBatch"]


@dataclass(frozen=True, eq=False)
class IrregularBatch:
    """A batch of ``B`` irregular series with ``C`` channels, padded to ``L`` time points.

    Attributes:
        times: ``(B, L)`` float64 times, NaN where padded, whatever the dtype of ``values``
            (float32 times would merge or shift stamps such as epoch seconds). Datetime stamps
            are stored as floats ``(stamp - time_encoding.origin) / time_encoding.unit``.
        values: ``(B, L, C)``, NaN where missing or padded.
        lengths: ``(B,)`` int64 number of time stamps of each series.
        series: ``(B,)`` series identifiers.
        channels: ``(C,)`` channel names.
        labels: ``(B,)`` class labels or None.
        time_encoding: how datetimes were encoded, or None for numeric times.
        meta: layout of the source (dimension names, attrs) used to rebuild it on output.

    Example:
        >>> b = IrregularBatch.from_arrays([[0.0, 1.0, 3.0], [0.5, 2.0]],
        ...                                [[1.0, np.nan, 2.0], [4.0, 5.0]])
        >>> b.times.shape, b.values.shape, b.lengths.tolist()
        (torch.Size([2, 3]), torch.Size([2, 3, 1]), [3, 2])
    """

    times: torch.Tensor
    values: torch.Tensor
    lengths: torch.Tensor
    series: np.ndarray
    channels: np.ndarray
    labels: np.ndarray | None = None
    time_encoding: TimeEncoding | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        times,
        values,
        *,
        series=None,
        channels=None,
        labels=None,
        dtype: torch.dtype | None = None,
        time_unit: str | None = None,
    ) -> IrregularBatch:
        """Build from per-series arrays (ragged is fine) or stacked arrays.

        Args:
            times: ``B`` arrays ``(L_i,)`` (float or datetime64), or ``(B, L)``, or one ``(L,)``.
            values: ``B`` arrays ``(L_i, C)`` / ``(L_i,)``, or ``(B, L, C)`` / ``(B, L)``.
            series, channels, labels: optional ids ``(B,)``, names ``(C,)``, labels ``(B,)``.
            dtype: dtype of ``values``; default float32 if every input is float32, else float64.
                Times are always float64. A dtype that cannot hold a value (``1e300`` as
                float32) raises ``ValueError``.
            time_unit: unit for datetime times (default: the coarsest exact unit).

        Raises:
            TypeError / ValueError from :func:`neuralsde.data.validation.validate_series`.
        """
        times, encoding = convert.encode_time_list(times, time_unit)
        dtype = dtype or convert.infer_dtype(values)
        t_list, v_list = convert.validate_encoded(times, values, encoding)
        return cls._from_lists(
            t_list, v_list, series=series, channels=channels, labels=labels,
            dtype=dtype, time_encoding=encoding,
        )  # fmt: skip

    @classmethod
    def from_padded(
        cls,
        times: torch.Tensor,
        values: torch.Tensor,
        lengths: torch.Tensor | None = None,
        **kwargs,
    ) -> IrregularBatch:
        """Build from padded tensors ``times: (B, L)``, ``values: (B, L, C)``, ``lengths: (B,)``
        (validated by :func:`~neuralsde.data.validation.validate_padded`). Keyword arguments as
        in the dataclass (series, channels, labels, time_encoding, meta)."""
        validate_padded(times, values, lengths)
        if lengths is None:
            lengths = torch.full((times.shape[0],), times.shape[1], dtype=torch.long)
        t_list = [times[i, : int(n)] for i, n in enumerate(lengths)]
        v_list = [values[i, : int(n)] for i, n in enumerate(lengths)]
        return cls._from_lists(t_list, v_list, dtype=values.dtype, **kwargs)

    @classmethod
    def from_xarray(
        cls,
        obj,
        time_dim: str = "time",
        series_dim: str | None = None,
        channel_dim: str | None = None,
        *,
        variable: str | None = None,
        label: str | None = None,
        dtype: torch.dtype | None = None,
        time_unit: str | None = None,
    ) -> IrregularBatch:
        """Build from an xarray DataArray or Dataset (NaN = missing; datetime times allowed).

        Args:
            obj: a DataArray, or a Dataset whose ``variable`` (default ``"values"``, else all
                variables with ``time_dim`` stacked as channels) holds the data.
            time_dim: the time dimension.
            series_dim / channel_dim: dimension names; ``None`` uses ``"series"`` /
                ``"channel"`` when present, else the batch has one series / one channel.
            label: name of a variable or coordinate along the series dimension holding labels
                (default ``"label"`` when present).

        ``to_xarray()`` rebuilds the same object (dims order, coordinates, attrs, NaNs,
        datetime time coordinate).
        """
        return convert.from_xarray(
            cls, obj, time_dim, series_dim, channel_dim,
            variable=variable, label=label, dtype=dtype, time_unit=time_unit,
        )  # fmt: skip

    @classmethod
    def from_dataframe(
        cls,
        df,
        id_col: str | None = "id",
        time_col: str = "time",
        value_cols=None,
        *,
        label_col: str | None = None,
        dtype: torch.dtype | None = None,
        time_unit: str | None = None,
    ) -> IrregularBatch:
        """Build from a long-format pandas DataFrame: one row per (series, time stamp).

        Series come in sorted id order and rows are sorted by time within each series; a
        repeated time stamp within a series is an error. ``value_cols`` defaults to every
        column except id, time and label. ``id_col=None`` means the frame is one series.
        """
        return convert.from_dataframe(
            cls, df, id_col, time_col, value_cols,
            label_col=label_col, dtype=dtype, time_unit=time_unit,
        )  # fmt: skip

    @classmethod
    def coerce(
        cls,
        X,
        name: str = "X",
        *,
        times=None,
        single: bool = False,
        id_col: str | None = None,
        time_col: str | None = None,
        value_cols=None,
        label_col: str | None = None,
    ) -> IrregularBatch:
        """Any supported form of user data as a batch: the one input gate of the library.

        Args:
            X: an ``IrregularBatch``; an xarray DataArray/Dataset; a pandas DataFrame, long
                (``id``, ``time`` and value columns) or wide (a DatetimeIndex or numeric index,
                one column per channel); a pandas Series; a ``(B, L, C)`` / ``(B, L)`` array
                with NaN for missing values; a list of ragged ``(L_i, C)`` arrays or of
                ``(times, values)`` pairs; a ``(times, values)`` tuple.
            name: how ``X`` is named in error messages.
            times: the time stamps of an array or of a list of arrays (default ``0 .. L-1``).
            single: read an array as one series ``(L,)`` / ``(L, C)`` (change-point input).
            id_col, time_col, value_cols, label_col: the columns of a long table (defaults
                ``"id"`` and ``"time"`` and ``"label"`` when present, values: the rest).

        Raises:
            TypeError: a form or dtype it cannot read, naming ``name`` and the column at fault.
            ValueError: bad values (shapes, times, NaN or inf), naming ``name``.

        Example:
            >>> import pandas as pd
            >>> s = pd.Series([1.0, np.nan, 3.0], name="flow",
            ...               index=pd.date_range("2024-01-01", periods=3, freq="D"))
            >>> b = IrregularBatch.coerce(s)
            >>> b.values.shape, list(b.channels), b.time_encoding.unit
            (torch.Size([1, 3, 1]), ['flow'], 'D')
        """
        return _coerce.coerce(
            cls, X, name, times=times, single=single, id_col=id_col, time_col=time_col,
            value_cols=value_cols, label_col=label_col,
        )  # fmt: skip

    @classmethod
    def _from_lists(
        cls,
        t_list,
        v_list,
        *,
        dtype,
        series=None,
        channels=None,
        labels=None,
        time_encoding=None,
        meta=None,
    ) -> IrregularBatch:
        batch = len(t_list)
        n_channels = v_list[0].shape[1] if v_list[0].ndim == 2 else 1
        length = max(len(t) for t in t_list)
        times = torch.full((batch, length), float("nan"), dtype=torch.float64)
        values = torch.full((batch, length, n_channels), float("nan"), dtype=dtype)
        for i, (t, v) in enumerate(zip(t_list, v_list, strict=True)):
            times[i, : len(t)] = torch.as_tensor(t, dtype=torch.float64)
            values[i, : len(t)] = narrow(torch.as_tensor(v), dtype, "values", i).reshape(
                len(t), n_channels
            )
        lengths = torch.tensor([len(t) for t in t_list], dtype=torch.long)
        series = np.arange(batch) if series is None else np.asarray(series)
        channels = np.arange(n_channels) if channels is None else np.asarray(channels)
        _check_len(series, batch, "series")
        _check_len(channels, n_channels, "channels")
        if labels is not None:
            labels = np.asarray(labels)
            _check_len(labels, batch, "labels")
        return cls(
            times, values, lengths, series, channels, labels, time_encoding, dict(meta or {})
        )

    # ------------------------------------------------------------------ basic properties
    @property
    def mask(self) -> torch.Tensor:
        """``(B, L, C)`` bool, True where a value was observed."""
        return ~torch.isnan(self.values)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(B, L, C)``; with ``__len__`` and ``__getitem__`` it lets scikit-learn's splitters
        (``cross_val_score``, ``train_test_split``) index a batch by series."""
        return tuple(self.values.shape)

    @property
    def channel_names(self) -> list:
        """``channels`` as plain Python values (what estimators store and match by name)."""
        return [c.item() if hasattr(c, "item") else c for c in np.asarray(self.channels)]

    @property
    def batch_size(self) -> int:
        return self.values.shape[0]

    @property
    def n_channels(self) -> int:
        return self.values.shape[2]

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index) -> IrregularBatch:
        """A sub-batch: ``index`` is an int, slice, integer array or boolean mask over series.
        Padding is trimmed to the longest selected series."""
        idx = np.arange(self.batch_size)[index]
        idx = np.atleast_1d(idx)
        sel = torch.as_tensor(idx, dtype=torch.long)
        lengths = self.lengths[sel]
        keep = int(lengths.max()) if len(idx) else 0
        meta = dict(self.meta)
        if "series_coords" in meta:
            meta["series_coords"] = {k: v[idx] for k, v in meta["series_coords"].items()}
        return replace(
            self,
            times=self.times[sel, :keep],
            values=self.values[sel, :keep],
            lengths=lengths,
            series=self.series[idx],
            labels=None if self.labels is None else self.labels[idx],
            meta=meta,
        )

    def to(self, dtype: torch.dtype | None = None, device=None) -> IrregularBatch:
        """The same batch with ``values`` cast to ``dtype`` and every tensor moved to
        ``device`` (``times`` stays float64, ``lengths`` int64). A dtype that cannot hold a
        value raises ``ValueError``."""
        values = self.values if dtype is None else narrow(self.values, dtype, "values")
        return replace(
            self,
            times=self.times.to(device=device),
            values=values.to(device=device),
            lengths=self.lengths.to(device=device),
        )

    def datetimes(self) -> np.ndarray:
        """``(B, L)`` times as ``datetime64`` (NaT where padded); needs a datetime batch."""
        if self.time_encoding is None:
            raise ValueError("this batch has numeric times (time_encoding is None)")
        return decode_times(self.times.cpu().numpy(), self.time_encoding)

    # ------------------------------------------------------------------ grids and paths
    def union_grid(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(grid (T,), values (B, T, C))``: all series on the union of their time stamps,
        NaN where a series was not observed. Models that solve one SDE over the whole batch
        integrate over ``grid``."""
        return union_grid(self.times, self.values)

    def path(self, kind: str = "hermite", intensity: bool = True):
        """The torchcde control path of ``[time, values, cumulative counts]``.

        Args:
            kind: ``"hermite"`` (cubic Hermite with backward differences, default),
                ``"linear"`` or ``"rectilinear"``.
            intensity: include the ``C`` cumulative observation-count channels.

        Returns:
            A ``torchcde.CubicSpline`` / ``torchcde.LinearInterpolation`` over the union grid;
            ``.evaluate(t)`` and ``.derivative(t)`` give ``(B, 1 + 2C)`` (``1 + C`` without
            intensity). See :func:`neuralsde.data.interpolation.control_path`.

        Example:
            >>> b = IrregularBatch.from_arrays([0.0, 1.0, 2.0], [0.0, 1.0, 4.0])
            >>> b.path().evaluate(torch.tensor(1.0, dtype=torch.float64)).tolist()
            [[1.0, 1.0, 2.0]]
        """
        return control_path(self.times, self.values, kind=kind, intensity=intensity)

    def path_points(self, intensity: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(grid (T,), points (B, T, 1 + 2C))``: the gap-filled knots of the control path."""
        grid, on = self.union_grid()
        return grid, fill_missing(grid.to(on.dtype), augment(grid, on, intensity))

    def signature(
        self, depth: int, intensity: bool = True, backend: str | None = None
    ) -> torch.Tensor:
        """Signature ``(B, sum_k D^k)`` of the piecewise-linear path through the knots of
        ``[time, values, counts]`` (``D = 1 + 2C``); level 1 is its total increment."""
        return _signature(self.path_points(intensity)[1], depth, backend)

    def logsignature(
        self,
        depth: int,
        windows: int | None = None,
        intensity: bool = True,
        backend: str | None = None,
    ) -> torch.Tensor:
        """Log-signature ``(B, n)`` of the whole path, or ``(B, windows, n)`` over consecutive
        windows of the union grid (the log-ODE / Neural-RDE summary of a long series; window
        edges from :func:`neuralsde.data.signatures.window_edges`)."""
        points = self.path_points(intensity)[1]
        if windows is None:
            return _logsignature(points, depth, backend)
        return windowed_logsignature(points, depth, windows, backend)

    # ------------------------------------------------------------------ preprocessing
    def normalise(self, stats: dict | None = None) -> tuple[IrregularBatch, dict]:
        """Standardise each channel: ``(x - mean) / std`` over observed values (the statistics
        of :class:`~neuralsde.data.scaling.Scaler`, which the estimators fit).

        Args:
            stats: ``{"mean": (C,), "std": (C,)}`` from the training batch; ``None`` computes
                them from this batch. A channel with zero spread gets std 1.

        Returns:
            ``(normalised batch, stats)``; pass the training ``stats`` to normalise validation
            and test batches identically.
        """
        if stats is None:
            scaler = Scaler.fit(self)
            stats = {"mean": torch.tensor(scaler.mean, dtype=self.values.dtype),
                     "std": torch.tensor(scaler.std, dtype=self.values.dtype)}  # fmt: skip
        mean = torch.as_tensor(stats["mean"], dtype=self.values.dtype)
        std = torch.as_tensor(stats["std"], dtype=self.values.dtype)
        for key, v in (("mean", mean), ("std", std)):
            if v.shape != (self.n_channels,):
                raise ValueError(
                    f"stats[{key!r}] must have shape ({self.n_channels},), got {tuple(v.shape)}"
                )
        return replace(self, values=(self.values - mean) / std), stats

    def denormalise(self, stats: dict) -> IrregularBatch:
        """Invert :meth:`normalise` with the same ``stats``."""
        mean = torch.as_tensor(stats["mean"], dtype=self.values.dtype)
        std = torch.as_tensor(stats["std"], dtype=self.values.dtype)
        return replace(self, values=self.values * std + mean)

    def drop(
        self,
        rate: float,
        *,
        per_channel: bool = True,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> IrregularBatch:
        """Missing-rate protocol: NaN out ``int(L_i * rate)`` points per channel of each series
        (see :func:`neuralsde.data.protocol.drop_points`); the same seed drops the same points."""
        values = drop_points(
            self.values, rate, lengths=self.lengths, per_channel=per_channel,
            generator=generator, seed=seed,
        )  # fmt: skip
        return replace(self, values=values)

    def trim(self) -> IrregularBatch:
        """The same batch without each series' trailing time stamps at which no channel was
        observed (e.g. the NaN padding of variable-length series in a ``(B, L, C)`` array);
        a series with no observation keeps its first time stamp.

        Example:
            >>> nan = float("nan")
            >>> t, x = [[0.0, 1.0, 2.0]] * 2, [[1.0, 2.0, nan], [1.0, nan, nan]]
            >>> b = IrregularBatch.from_arrays(t, x)
            >>> b.trim().lengths.tolist()
            [2, 1]
        """
        observed = ~torch.isnan(self.values).all(-1)  # (B, L)
        steps = torch.arange(1, observed.shape[1] + 1)
        keep = (observed * steps).amax(dim=1).clamp(min=1).minimum(self.lengths)
        if bool((keep == self.lengths).all()):
            return self
        pad = steps.unsqueeze(0) > keep.unsqueeze(1)  # (B, L): past the kept length
        width = int(keep.max())
        times = self.times.masked_fill(pad, float("nan"))[:, :width]
        values = self.values.masked_fill(pad.unsqueeze(-1), float("nan"))[:, :width]
        return replace(self, times=times, values=values, lengths=keep.to(self.lengths))

    def split(
        self,
        fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
        seed: int = 0,
        stratify: bool = True,
    ) -> tuple[IrregularBatch, IrregularBatch, IrregularBatch]:
        """Train / validation / test sub-batches (70/15/15 by default), stratified by
        ``labels`` when there are labels and ``stratify`` is True."""
        strat = self.labels if (stratify and self.labels is not None) else self.batch_size
        parts = stratified_split(strat, fractions, seed)
        return tuple(self[p] for p in parts)

    # ------------------------------------------------------------------ output
    def to_xarray(self):
        """The batch as an ``xarray.DataArray`` with the original layout and time coordinate.

        Series sharing the same stamps keep them; otherwise the union grid is the time
        coordinate, with NaN where a series was not observed. Datetime times are decoded.
        """
        return convert.to_xarray(self)

    def to_dataset(self):
        """An ``xarray.Dataset`` with ``values`` (series, time, channel), ``label`` over
        series when there are labels, and ``length``."""
        return convert.to_dataset(self)

    def to_dataframe(self):
        """Long-format ``pandas.DataFrame``: one row per (series, time stamp)."""
        return convert.to_dataframe(self)


def _check_len(arr: np.ndarray, n: int, name: str) -> None:
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
