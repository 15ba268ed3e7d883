"""Fan charts of probabilistic forecasts (the output of ``LatentSDEForecaster.predict``)."""

from __future__ import annotations

import numpy as np


def plot_forecast(ds, observed=None, series=None, channel=None, ax=None, color="C0",
                  bands=(0.5, 0.9)):  # fmt: skip
    """Fan chart: observed points, the posterior median and central 50% / 90% bands.

    Args:
        ds: ``xarray.Dataset`` with ``samples (sample, series, time, channel)``.
        observed: optional observations (anything ``LatentSDEForecaster`` accepts, e.g. an
            ``IrregularBatch`` or xarray object) drawn as points.
        series: which series to draw (coordinate value; default the first).
        channel: which channel (coordinate value; default the first).
        ax: matplotlib axes (default: a new figure).
        bands: central interval levels, widest drawn lightest.

    Returns:
        The matplotlib ``Axes``.

    Example:
        >>> import numpy as np, xarray as xr
        >>> s = np.random.default_rng(0).normal(size=(50, 1, 10, 1)).cumsum(2)
        >>> ds = xr.Dataset({"samples": (("sample", "series", "time", "channel"), s)},
        ...                 coords={"time": np.arange(10.0)})
        >>> ax = plot_forecast(ds)
    """
    import matplotlib.pyplot as plt

    if "samples" not in getattr(ds, "data_vars", {}):
        raise ValueError("ds must be a Dataset with a 'samples' variable (from predict)")
    samples = ds["samples"]
    series = samples["series"].values[0] if series is None else series
    channel = samples["channel"].values[0] if channel is None else channel
    s = samples.sel(series=series, channel=channel)
    t = s["time"].values
    x = s.transpose("sample", "time").values
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    for k, level in enumerate(sorted(bands, reverse=True)):
        lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2], axis=0)
        ax.fill_between(t, lo, hi, color=color, alpha=0.18 + 0.17 * k, lw=0,
                        label=f"{int(round(level * 100))}% band")  # fmt: skip
    ax.plot(t, np.median(x, axis=0), color=color, lw=1.5, label="median")
    if observed is not None:
        from neuralsde.models.latent_estimator import to_batch

        batch = to_batch(observed, "observed")
        idx = list(np.asarray(batch.series)).index(series)
        ch = list(np.asarray(batch.channels)).index(channel)
        n = int(batch.lengths[idx])
        tt = batch.times[idx, :n].numpy()
        if batch.time_encoding is not None:
            from neuralsde.data import decode_times

            tt = decode_times(tt, batch.time_encoding)
        ax.plot(tt, batch.values[idx, :n, ch].numpy(), "k.", ms=4, label="observed")
    ax.set_xlabel("time")
    ax.set_title(f"series {series}, channel {channel}")
    ax.legend(loc="best", fontsize=8)
    return ax
