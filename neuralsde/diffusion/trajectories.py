"""Diffusion over fixed-grid windows of time series: imputation and forecasting.

A score model on windows ``(length, channels)`` is sampled with the observed points fixed by
:class:`~neuralsde.diffusion.guidance.Inpaint` (exact conditioning of observed coordinates)
plus :class:`~neuralsde.diffusion.guidance.ObservationGuidance` (so that the unobserved
points follow them through the network). Results are xarray Datasets with dims
``("sample", "series", "time", "channel")`` like the latent SDE's predictions.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from neuralsde.diffusion.guidance import Inpaint, ObservationGuidance
from neuralsde.diffusion.sampling import sample


def _as_array(values, name="values"):
    """Windows on one shared grid as ``((series, time, channel) float32 tensor, times)``,
    read by the input gate (times None when the input carried none)."""
    from neuralsde.data import IrregularBatch

    carries_times = hasattr(values, "dims") or hasattr(values, "times")
    batch = IrregularBatch.coerce(values, name)
    if bool((batch.lengths != batch.lengths[0]).any()) or not bool(
        (batch.times == batch.times[:1]).all()
    ):
        raise ValueError(f"{name} must be windows on one shared time grid (series, time, channel)")
    times = None
    if carries_times:
        times = batch.datetimes()[0] if batch.time_encoding is not None else batch.times[0].numpy()
    return batch.values.to(torch.float32), times


def impute(
    score_model,
    sde,
    values,
    mask=None,
    *,
    times=None,
    n_samples: int = 16,
    method: str = "euler",
    steps: int = 200,
    obs_weight: float = 1.0,
    sigma_y: float = 0.05,
    generator: torch.Generator | None = None,
) -> xr.Dataset:
    """Fill the missing points of windows ``values: (series, time, channel)`` (NaN = missing,
    or an explicit boolean ``mask`` of observed points), in the model's units.

    Returns a Dataset with ``samples (sample, series, time, channel)``, ``mean`` and ``std``
    over samples, ``observed`` (the input) and ``mask``.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE, GaussianMixture
        >>> gm = GaussianMixture([1.0], [[0.0] * 4], [torch.eye(4).tolist()])
        >>> sde = VPSDE()
        >>> vals = torch.tensor([[[1.0], [float("nan")], [0.5], [float("nan")]]])
        >>> score = lambda x, t: gm.score(x.reshape(-1, 4), sde, t).reshape(x.shape)
        >>> ds = impute(score, sde, vals, n_samples=4, method="dpmpp_2m", steps=10)
        >>> ds["samples"].dims
        ('sample', 'series', 'time', 'channel')
    """
    vals, t_coord = _as_array(values)
    if mask is None:
        mask = ~torch.isnan(vals)
    mask = torch.as_tensor(mask, dtype=torch.bool)
    if mask.shape != vals.shape:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not match values of shape {tuple(vals.shape)}"
        )
    b, length, ch = vals.shape
    clean = torch.nan_to_num(vals)
    rep_vals = clean.repeat_interleave(n_samples, 0)
    rep_mask = mask.repeat_interleave(n_samples, 0)
    guidance = [Inpaint(rep_mask, rep_vals)]
    if obs_weight > 0:
        guidance.append(ObservationGuidance(rep_mask, rep_vals, obs_weight, sigma_y))
    x = sample(
        score_model,
        sde,
        (b * n_samples, length, ch),
        method=method,
        steps=steps,
        guidance=guidance,
        generator=generator,
    )
    x = torch.where(rep_mask, rep_vals, x).reshape(b, n_samples, length, ch).transpose(0, 1)
    t_coord = times if times is not None else t_coord
    t_coord = np.arange(length) if t_coord is None else np.asarray(t_coord)
    coords = {
        "time": t_coord,
        "series": np.arange(b),
        "channel": np.arange(ch),
        "sample": np.arange(n_samples),
    }
    xs = x.detach().numpy()
    obs = np.where(mask.numpy(), vals.numpy(), np.nan)
    return xr.Dataset(
        {
            "samples": (("sample", "series", "time", "channel"), xs),
            "mean": (("series", "time", "channel"), xs.mean(0)),
            "std": (("series", "time", "channel"), xs.std(0)),
            "observed": (("series", "time", "channel"), obs),
            "mask": (("series", "time", "channel"), mask.numpy()),
        },
        coords=coords,
        attrs={"method": method, "steps": steps, "model": "score-based diffusion"},
    )


def forecast(score_model, sde, history, horizon: int, **kwargs) -> xr.Dataset:
    """Forecast ``horizon`` steps after ``history: (series, time, channel)`` by imputing the end
    of a window of ``time + horizon`` points (the model's window length). Keyword arguments
    go to :func:`impute`."""
    hist, t_coord = _as_array(history)
    if int(horizon) < 1:
        raise ValueError(f"horizon must be a positive integer; got {horizon!r}")
    b, length, ch = hist.shape
    pad = torch.full((b, int(horizon), ch), float("nan"))
    times = kwargs.pop("times", None)
    if times is None and t_coord is not None and len(t_coord) > 1:
        step = t_coord[-1] - t_coord[-2]
        times = np.concatenate([t_coord, t_coord[-1] + step * np.arange(1, int(horizon) + 1)])
    return impute(score_model, sde, torch.cat([hist, pad], 1), times=times, **kwargs)
