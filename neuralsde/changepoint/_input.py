"""One series of an ``IrregularBatch`` (read by :meth:`IrregularBatch.coerce`, the input gate)
as the arrays the change-point scores work on, with the checks a change-point series needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Series:
    """One validated series. ``values: (n, channel)`` float64, NaN = missing;
    ``times: (n,)`` strictly increasing float64; ``coord: (n,)`` the user's time labels
    (datetime64 for datetime data)."""

    times: np.ndarray
    values: np.ndarray
    coord: np.ndarray
    channels: list


def series_from_batch(batch, name: str = "signal") -> Series:
    """The single series of ``batch``. Rows whose channels are all NaN are dropped (an irregular
    grid). Raises ValueError for a batch of several series, an all-NaN channel and a constant
    series (times, NaN/inf and the rest are checked by the input gate)."""
    if batch.batch_size != 1:
        raise ValueError(
            f"{name} must hold exactly one series; got {batch.batch_size} (pass one series, "
            f"e.g. X[i])"
        )
    n = int(batch.lengths[0])
    t = batch.times[0, :n].double().numpy()
    values = batch.values[0, :n].double().numpy()
    coord = batch.datetimes()[0, :n] if batch.time_encoding is not None else t
    observed = ~np.isnan(values)
    chans = batch.channel_names
    empty = np.flatnonzero(~observed.any(0))
    if empty.size:
        raise ValueError(
            f"{name} channel(s) {[chans[i] for i in empty]} are entirely NaN; expected every "
            "channel to hold at least two observed values (drop the channel)"
        )
    keep = observed.any(1)
    values, t, coord = values[keep], t[keep], np.asarray(coord)[keep]
    spread = np.nanmax(values, 0) - np.nanmin(values, 0)
    if np.all(spread == 0):
        raise ValueError(
            f"{name} is constant (every channel takes a single value); a change-point score "
            "needs a series that varies"
        )
    return Series(times=t, values=values, coord=coord, channels=chans)
