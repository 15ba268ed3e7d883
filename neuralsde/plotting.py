"""Plots of irregular time series and model outputs (matplotlib; a plain module of functions).

``plot_series`` draws observed points, the gaps between them and several series at once, from
an ``IrregularBatch`` or an xarray object with dims ``(series, time, channel)``;
``plot_forecast`` draws a fan chart of sampled forecasts.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_forecast", "plot_series"]


def _as_arrays(data):
    """``(times list, values list, series ids, channel names, time label)`` from any form the
    input gate reads; times are numbers or datetime64, values ``(L_i, C)`` with NaN."""
    from .data import IrregularBatch

    batch = IrregularBatch.coerce(data, "data")
    times = batch.datetimes() if batch.time_encoding is not None else batch.times.cpu().numpy()
    values = batch.values.detach().cpu().numpy()
    lengths = batch.lengths.tolist()
    t_list = [times[i, :n] for i, n in enumerate(lengths)]
    v_list = [values[i, :n] for i, n in enumerate(lengths)]
    return t_list, v_list, list(batch.series), list(batch.channels), "time"


def plot_series(
    data,
    series=None,
    channels=None,
    *,
    max_series: int = 5,
    axes=None,
    title: str | None = None,
    show_gaps: bool = True,
):
    """Plot several irregular series: observed points, and the gaps where values are missing.

    Each channel gets its own panel (shared time axis). Each series is drawn in its own
    colour: a marker at every observed value, a solid line between consecutive observations
    with no missing stamp between them, a dotted line across gaps, and (``show_gaps``) a small
    tick at the bottom of the panel at every stamp whose value is missing.

    Args:
        data: ``IrregularBatch``, or xarray Dataset (``values``) / DataArray with dims
            ``(series, time, channel)`` (series and channel optional). NaN = missing.
        series: positions of the series to draw; default the first ``max_series``.
        channels: positions of the channels to draw; default all.
        axes: existing matplotlib axes, one per channel drawn.
        title: figure title.

    Returns:
        A list of matplotlib ``Axes``, one per channel drawn.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from neuralsde.data import IrregularBatch
        >>> b = IrregularBatch.from_arrays([[0.0, 1.0, 2.5], [0.5, 2.0]],
        ...                                [[1.0, np.nan, 2.0], [0.0, 1.0]])
        >>> axes = plot_series(b)
        >>> len(axes)
        1
    """
    import matplotlib.pyplot as plt

    t_list, v_list, ids, names, tlabel = _as_arrays(data)
    series = list(range(min(max_series, len(t_list)))) if series is None else list(series)
    channels = list(range(len(names))) if channels is None else list(channels)
    for s in series:
        if not 0 <= s < len(t_list):
            raise ValueError(f"series must hold positions in [0, {len(t_list)}), got {s}")
    for c in channels:
        if not 0 <= c < len(names):
            raise ValueError(f"channels must hold positions in [0, {len(names)}), got {c}")
    if axes is None:
        fig, axes = plt.subplots(
            len(channels), 1, sharex=True, figsize=(8, 2.2 * len(channels) + 0.6), squeeze=False
        )
        axes = list(axes[:, 0])
    else:
        axes = list(np.atleast_1d(axes))
        if len(axes) != len(channels):
            raise ValueError(
                f"axes must hold {len(channels)} axes (one per channel), got {len(axes)}"
            )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, c in zip(axes, channels, strict=True):
        for k, s in enumerate(series):
            colour = colours[k % len(colours)]
            t, x = np.asarray(t_list[s]), np.asarray(v_list[s])[:, c]
            obs = ~np.isnan(x)
            idx = np.flatnonzero(obs)
            ax.plot(t[obs], x[obs], "o", ms=3.5, color=colour, label=str(ids[s]))
            for a, b in zip(idx[:-1], idx[1:], strict=True):
                style = "-" if b == a + 1 else ":"
                ax.plot(t[[a, b]], x[[a, b]], style, lw=1.0, color=colour)
            if show_gaps and (~obs).any():
                ax.plot(
                    t[~obs],
                    np.zeros((~obs).sum()),
                    "|",
                    ms=8,
                    color=colour,
                    alpha=0.7,
                    transform=ax.get_xaxis_transform(),
                )
        ax.set_ylabel(str(names[c]))
    axes[-1].set_xlabel(tlabel)
    handles, labels = axes[0].get_legend_handles_labels()
    if len(series) > 1:
        axes[0].legend(handles, labels, title="series", fontsize="small", loc="best")
    if title is not None:
        axes[0].figure.suptitle(title)
    return axes


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
        from neuralsde.data import IrregularBatch

        batch = IrregularBatch.coerce(observed, "observed")
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
