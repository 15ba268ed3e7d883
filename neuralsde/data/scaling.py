"""``Scaler``: the one standardisation of times and values that every estimator fits and saves.

Times are shifted to start at 0 and divided by the training span (``t -> (t - offset) /
scale``); values are standardised per channel over the observed entries. Datetime stamps are
encoded with the training batch's ``TimeEncoding``, so new data, future query times given as
dates and the model's outputs all share the fitted time axis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .timeaxis import _NS_PER_UNIT, TimeEncoding, decode_times

__all__ = ["Scaler"]

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

    @classmethod
    def fit(cls, batch) -> Scaler:
        """Offset and span of the batch's times, mean and std of each channel's observations."""
        times = batch.times.to(torch.float64)
        finite = times[torch.isfinite(times)]
        offset = float(finite.min())
        span = float(finite.max()) - offset
        obs = batch.mask
        vals = torch.where(obs, batch.values.to(torch.float64), 0.0)
        count = obs.sum((0, 1)).clamp(min=1)
        mean = vals.sum((0, 1)) / count
        var = (torch.where(obs, batch.values.to(torch.float64) - mean, 0.0) ** 2).sum((0, 1))
        std = (var / count).sqrt()
        if not bool(torch.isfinite(mean).all() and torch.isfinite(std).all()):
            bad = int((~(torch.isfinite(mean) & torch.isfinite(std))).nonzero()[0])
            raise ValueError(
                f"X: the observations of channel {bad} are too large to standardise (their "
                f"mean or spread overflows float64: values near 1e300?); rescale them"
            )
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(offset, span if span > 0 else 1.0, tuple(mean.tolist()), tuple(std.tolist()),
                   batch.time_encoding)  # fmt: skip

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
        times = self.transform_times(self.raw_times(batch, name))
        mean = torch.tensor(self.mean, dtype=torch.float64, device=batch.values.device)
        std = torch.tensor(self.std, dtype=torch.float64, device=batch.values.device)
        return times, (batch.values.to(torch.float64) - mean) / std

    def inverse_values(self, v):
        """Standardised values ``(..., C)`` (array or tensor) back to data units."""
        if isinstance(v, torch.Tensor):
            mean = torch.tensor(self.mean, dtype=v.dtype, device=v.device)
            std = torch.tensor(self.std, dtype=v.dtype, device=v.device)
            return v * std + mean
        return np.asarray(v) * np.asarray(self.std) + np.asarray(self.mean)

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
                   tuple(d["std"]), enc)  # fmt: skip


def _is_stringy(times) -> bool:
    if isinstance(times, str):
        return True
    try:
        return any(isinstance(x, str) for x in list(times)[:1])
    except TypeError:
        return False
