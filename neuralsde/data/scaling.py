"""``Scaler``: the one standardisation of times and values that every estimator fits and saves.

Times are shifted to start at 0 and divided by the training span (``t -> (t - offset) /
scale``); values are standardised per channel over the observed entries. Optionally a
seasonal mean is taken out first: ``mean + sum_k a_k sin(2 pi k t / P) + b_k cos(2 pi k t /
P)`` per channel, fitted by least squares to the observed entries (``season_period`` ``P`` on
the time axis, ``harmonics`` ``K``), with a linear trend ``slope t`` if asked, and added back
by :meth:`Scaler.inverse_values`.
Datetime stamps are encoded with the training batch's ``TimeEncoding``, so new data, future
query times given as dates and the model's outputs all share the fitted time axis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .timeaxis import _NS_PER_UNIT, TimeEncoding, decode_times

__all__ = ["Scaler", "encode_period"]

_NS_MIN, _NS_MAX = np.datetime64("1678-01-01", "s"), np.datetime64("2262-04-11", "s")


@dataclass(frozen=True)
class Scaler:
    """Fitted time and value scaling. Build with :meth:`fit`; store with :meth:`to_dict`.

    Attributes:
        time_offset, time_scale: ``t_model = (t - time_offset) / time_scale`` (``t`` in the
            encoded units of ``encoding`` for datetime data).
        mean, std: per-channel value mean and standard deviation (``std`` 1 for a constant
            channel).
        encoding: the training data's datetime encoding, or None for numeric times.
        season_period: ``P`` in the encoded time units (0: no seasonal mean).
        season: the harmonic coefficients ``(a_1..a_K, b_1..b_K)`` per channel, ``(2K, C)``.
        trend: the slope of a linear trend per channel (per encoded time unit), or ``()``.

    Example:
        >>> from neuralsde.data import IrregularBatch
        >>> b = IrregularBatch.from_arrays([0.0, 2.0, 4.0], [1.0, 3.0, np.nan])
        >>> sc = Scaler.fit(b)
        >>> t, v = sc.transform(b)
        >>> t.tolist(), v[0, :2, 0].tolist()
        ([[0.0, 0.5, 1.0]], [-1.0, 1.0])
        >>> sc.inverse_values(v)[0, :2, 0].tolist()
        [1.0, 3.0]
    """

    time_offset: float = 0.0
    time_scale: float = 1.0
    mean: tuple = ()
    std: tuple = ()
    encoding: TimeEncoding | None = None
    season_period: float = 0.0
    season: tuple = ()
    trend: tuple = ()

    @classmethod
    def fit(cls, batch, season_period: float | None = None, harmonics: int = 3,
            trend: bool = False) -> Scaler:  # fmt: skip
        """Offset and span of the batch's times, mean and std of each channel's observations
        (after the least-squares seasonal mean, with ``season_period`` on the encoded time
        axis, and linear trend, with ``trend``)."""
        times = batch.times.to(torch.float64)
        finite = times[torch.isfinite(times)]
        offset = float(finite.min())
        span = float(finite.max()) - offset
        obs = batch.mask
        vals = torch.where(obs, batch.values.to(torch.float64), 0.0)
        count = obs.sum((0, 1)).clamp(min=1)
        mean = vals.sum((0, 1)) / count
        season, slope = (), ()
        if season_period or trend:
            k = int(harmonics) if season_period else 0
            mean, line, coef = _fit_curve(times, batch.values.to(torch.float64), obs,
                                          float(season_period or 1.0), k, trend)  # fmt: skip
            season = tuple(map(tuple, coef.tolist())) if k else ()
            slope = tuple(line.tolist()) if trend else ()
        scaler = cls(offset, 1.0, tuple(mean.tolist()), (), batch.time_encoding,
                     float(season_period or 0.0), season, slope)  # fmt: skip
        vals = batch.values.to(torch.float64)
        if scaler.curved:
            vals = vals - scaler.seasonal(torch.nan_to_num(times))
        var = (torch.where(obs, vals - mean, 0.0) ** 2).sum((0, 1))
        std = (var / count).sqrt()
        if not bool(torch.isfinite(mean).all() and torch.isfinite(std).all()):
            bad = int((~(torch.isfinite(mean) & torch.isfinite(std))).nonzero()[0])
            raise ValueError(
                f"X: the observations of channel {bad} are too large to standardise (their "
                f"mean or spread overflows float64: values near 1e300?); rescale them"
            )
        std = torch.where(std > 0, std, torch.ones_like(std))
        return replace(scaler, time_scale=span if span > 0 else 1.0, std=tuple(std.tolist()))

    @property
    def curved(self) -> bool:
        """Whether the mean varies in time (a seasonal mean or a trend)."""
        return bool(self.season_period or self.trend)

    def seasonal(self, raw_times):
        """The time-varying part of the mean ``(..., C)`` (seasonal harmonics plus trend) at
        encoded times ``raw_times: (...)``; zeros without either; a tensor for a tensor."""
        t = torch.as_tensor(raw_times, dtype=torch.float64)
        out = torch.zeros(*t.shape, len(self.mean), dtype=torch.float64)
        if self.season_period:
            coef = torch.tensor(self.season, dtype=torch.float64)
            out = out + _harmonics(t, self.season_period, coef.shape[0] // 2) @ coef
        if self.trend:
            out = out + t.unsqueeze(-1) * torch.tensor(self.trend, dtype=torch.float64)
        return out if isinstance(raw_times, torch.Tensor) else out.numpy()

    # ------------------------------------------------------------------ times
    def raw_times(self, batch, name: str = "X") -> torch.Tensor:
        """The batch's times (B, L) float64 on the fitted (unscaled) axis, NaN where padded."""
        times = batch.times.to(torch.float64)
        enc = batch.time_encoding
        if (enc is None) != (self.encoding is None):
            seen = "datetimes" if enc is not None else "numbers"
            want = "datetimes" if self.encoding is not None else "numbers"
            raise TypeError(f"{name} has times as {seen}, but the estimator was fitted on {want}")
        if enc is None or enc == self.encoding:
            return times
        ratio = _NS_PER_UNIT[enc.unit] / _NS_PER_UNIT[self.encoding.unit]
        shift = np.datetime64(enc.origin, "ns") - np.datetime64(self.encoding.origin, "ns")
        shift = shift.astype(np.int64) / _NS_PER_UNIT[self.encoding.unit]
        return times * ratio + float(shift)

    def encode(self, times, name: str = "times") -> np.ndarray:
        """User time stamps ``(T,)`` as floats on the fitted (unscaled) axis.

        Accepts floats, or, for datetime data, a DatetimeIndex, datetime64 values, Timestamps,
        datetimes or strings pandas parses.
        """
        import pandas as pd

        arr = np.atleast_1d(np.asarray(times, dtype=object if _is_stringy(times) else None))
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D list of times; got {times!r}")
        if self.encoding is None:
            if np.issubdtype(arr.dtype, np.number):
                out = arr.astype(np.float64)
            else:
                raise TypeError(
                    f"{name} must be numbers (the estimator was fitted on numeric times); got "
                    f"dtype {arr.dtype}"
                )
        else:
            if np.issubdtype(arr.dtype, np.number):
                raise TypeError(
                    f"{name} must be dates (the estimator was fitted on datetimes); got numbers"
                )
            try:
                stamps = pd.to_datetime(arr).tz_localize(None) if not np.issubdtype(
                    arr.dtype, np.datetime64) else arr  # fmt: skip
            except (TypeError, ValueError) as err:
                raise TypeError(f"{name} must be dates pandas can parse; {err}") from None
            stamps = np.asarray(stamps).astype("datetime64[s]")
            out_of_range = (stamps < _NS_MIN) | (stamps > _NS_MAX)
            if out_of_range.any():
                raise ValueError(
                    f"{name} must lie between {_NS_MIN} and {_NS_MAX} (datetime64[ns]); got "
                    f"{stamps[out_of_range][0]}"
                )
            ns = stamps.astype("datetime64[ns]")
            offset = (ns - np.datetime64(self.encoding.origin, "ns")).astype(np.int64)
            out = offset / _NS_PER_UNIT[self.encoding.unit]
        if not np.isfinite(out).all():
            raise ValueError(f"{name} must be finite; got {times!r}")
        return out

    def distinct_times(self, batch, name: str = "X") -> np.ndarray:
        """The batch's distinct time stamps ``(T,)`` on the fitted axis, sorted."""
        raw = self.raw_times(batch, name).numpy()
        return np.unique(raw[np.isfinite(raw)])

    def decode(self, raw) -> np.ndarray:
        """Times on the fitted (unscaled) axis back to the user's: datetime64 for datetime
        data, the numbers themselves otherwise."""
        raw = np.asarray(raw, dtype=np.float64)
        return raw if self.encoding is None else decode_times(raw, self.encoding)

    def transform_times(self, t):
        """Encoded times (array or tensor) onto the model's axis."""
        return (t - self.time_offset) / self.time_scale

    def inverse_times(self, t_model) -> np.ndarray:
        """Model-axis times ``(...)`` back to the user's times (datetime64 for datetime data)."""
        t = np.asarray(t_model, dtype=np.float64) * self.time_scale + self.time_offset
        return self.decode(t)

    # ------------------------------------------------------------------ values
    def transform(self, batch, name: str = "X") -> tuple[torch.Tensor, torch.Tensor]:
        """``(times (B, L), values (B, L, C))`` float64 tensors on the model's scales."""
        if batch.n_channels != len(self.mean):
            raise ValueError(
                f"{name} has {batch.n_channels} channels; the scaler was fitted on {len(self.mean)}"
            )
        raw = self.raw_times(batch, name)
        times = self.transform_times(raw)
        mean = torch.tensor(self.mean, dtype=torch.float64, device=batch.values.device)
        std = torch.tensor(self.std, dtype=torch.float64, device=batch.values.device)
        values = batch.values.to(torch.float64) - mean
        if self.curved:  # padded times are NaN: their values are NaN already
            values = values - self.seasonal(torch.nan_to_num(raw)).to(values.device)
        return times, values / std

    def inverse_values(self, v, times=None, time_axis: int = -2):
        """Standardised values ``(..., C)`` (array or tensor) back to data units; with a
        seasonal mean, ``times: (T,)`` (encoded) along ``time_axis`` of ``v`` is required."""
        if self.curved and times is None:
            raise ValueError(
                "times: a scaler with a seasonal mean or a trend needs the values' times"
            )
        tensor = isinstance(v, torch.Tensor)
        v = v if tensor else torch.as_tensor(np.asarray(v, dtype=np.float64))
        mean = torch.tensor(self.mean, dtype=v.dtype, device=v.device)
        std = torch.tensor(self.std, dtype=v.dtype, device=v.device)
        out = v * std + mean
        if self.curved:
            s = self.seasonal(torch.as_tensor(np.asarray(times, dtype=np.float64)))
            shape = [1] * v.dim()
            shape[time_axis], shape[-1] = s.shape[0], s.shape[1]
            out = out + s.reshape(shape).to(v.dtype)
        return out if tensor else out.numpy()

    def with_time_scale(self, time_scale: float) -> Scaler:
        """The same scaler measuring model time in another unit."""
        return replace(self, time_scale=float(time_scale))

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict:
        """A JSON-ready record; :meth:`from_dict` rebuilds the scaler exactly."""
        enc = self.encoding
        return {
            "time_offset": self.time_offset,
            "time_scale": self.time_scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "season_period": self.season_period,
            "season": [list(r) for r in self.season],
            "trend": list(self.trend),
            "encoding": None
            if enc is None
            else {
                "unit": enc.unit,
                "origin": str(np.datetime64(enc.origin, "ns")),
                "dtype": enc.dtype,
            },  # fmt: skip
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        enc = d.get("encoding")
        if enc is not None:
            enc = TimeEncoding(enc["unit"], np.datetime64(enc["origin"], "ns"), enc["dtype"])
        return cls(float(d["time_offset"]), float(d["time_scale"]), tuple(d["mean"]),
                   tuple(d["std"]), enc, float(d.get("season_period", 0.0)),
                   tuple(map(tuple, d.get("season", ()))), tuple(d.get("trend", ())))  # fmt: skip


def _harmonics(t: torch.Tensor, period: float, k: int) -> torch.Tensor:
    """``(..., 2K)``: ``sin(2 pi j t / P)``, j = 1..K, then the cosines."""
    w = t.unsqueeze(-1) * (2 * np.pi / period) * torch.arange(1, k + 1, dtype=torch.float64)
    return torch.cat([torch.sin(w), torch.cos(w)], -1)


def _fit_curve(times, values, mask, period, k, trend=False):
    """Least squares of each channel's observed values on ``[1, t (with trend), harmonics]``:
    ``(mean (C,), slope (C,), coefficients (2K, C))`` (zero slope without ``trend``)."""
    t = torch.nan_to_num(times)
    cols = [torch.ones(*t.shape, 1, dtype=torch.float64)]
    if trend:
        cols.append(t.unsqueeze(-1))
    if k:
        cols.append(_harmonics(t, period, k))
    design = torch.cat(cols, -1)
    sols = []
    for c in range(values.shape[-1]):
        m = mask[..., c]
        sols.append(torch.linalg.lstsq(design[m], values[..., c][m].unsqueeze(-1)).solution[:, 0])
    sol = torch.stack(sols, 1)  # (columns, C)
    slope = sol[1] if trend else torch.zeros_like(sol[0])
    return sol[0], slope, sol[1 + int(trend) :]


def remove_season(times, values, period: float, harmonics: int):
    """Each channel less its least-squares seasonal mean (``harmonics`` harmonics of
    ``period``; the constant stays): ``times (n,)``, ``values (n, C)`` (NaN = missing) ->
    ``(adjusted, seasonal)``, both ``(n, C)`` numpy."""
    t = torch.as_tensor(np.asarray(times, dtype=np.float64))
    v = torch.as_tensor(np.asarray(values, dtype=np.float64))
    coef = _fit_curve(t, v, torch.isfinite(v), float(period), int(harmonics))[2]
    seasonal = (_harmonics(t, float(period), int(harmonics)) @ coef).numpy()
    return v.numpy() - seasonal, seasonal


def encode_period(period, encoding: TimeEncoding | None, name: str = "period") -> float:
    """A duration on the encoded time axis: a number for numeric times; for datetimes (an
    ``encoding``) a ``pandas.Timedelta``, ``numpy.timedelta64`` or a string such as
    ``"365.25D"``. Positive and finite, else ValueError/TypeError naming ``name``."""
    import pandas as pd

    if encoding is None:
        if isinstance(period, bool) or not isinstance(period, (int, float, np.number)):
            raise TypeError(f"{name} must be a number for numeric times; got {period!r}")
        out = float(period)
    else:
        if isinstance(period, (bool, int, float, np.number)):
            raise TypeError(f"{name} must be a timedelta ('365.25D', pandas.Timedelta) for "
                            f"datetime times; got the number {period!r}")  # fmt: skip
        try:
            out = pd.Timedelta(period).value / _NS_PER_UNIT[encoding.unit]
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a timedelta ('365.25D', pandas.Timedelta) for "
                            f"datetime times; got {period!r}") from None  # fmt: skip
    if not (np.isfinite(out) and out > 0):
        raise ValueError(f"{name} must be positive and finite; got {period!r}")
    return out


def _is_stringy(times) -> bool:
    if isinstance(times, str):
        return True
    try:
        return any(isinstance(x, str) for x in list(times)[:1])
    except TypeError:
        return False
