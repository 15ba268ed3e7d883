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

from neuralsde.core.arguments import check_seed
from neuralsde.core.keyed import KeyedGenerator
from neuralsde.data.chunks import is_chunked, map_series
from neuralsde.diffusion.checkpoint import from_bytes, to_bytes
from neuralsde.diffusion.guidance import Inpaint, ObservationGuidance
from neuralsde.diffusion.sampling import sample
from neuralsde.diffusion.sdes import sde_from_config


def _as_array(values, name="values"):
    """Windows on one shared grid as ``((series, time, channel) float32 tensor, times,
    series labels)``, read by the input gate (times None when the input carried none)."""
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
    return batch.values.to(torch.float32), times, np.asarray(batch.series)


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
    random_state: int | None = None,
) -> xr.Dataset:
    """Fill the missing points of windows ``values: (series, time, channel)`` (NaN = missing,
    or an explicit boolean ``mask`` of observed points), in the model's units.

    ``random_state`` (an int, instead of ``generator``) draws each series' noise from it and
    the series' label: a series gets the same samples in any batch or chunk. A dask-backed
    ``values`` (an xarray object chunked along ``series``) is imputed chunk by chunk on dask's
    workers (the score model travels as its config and safetensors weights) and the result is
    a lazy Dataset, equal to the in-memory one with the same ``random_state`` (default 0).

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
    if is_chunked(values):
        for arg, v in (("generator", generator), ("mask", mask)):
            if v is not None:
                raise ValueError(
                    f"{arg}: a dask-backed values draws each series' noise from random_state "
                    f"and marks missing points as NaN; pass {arg}=None"
                )
        if method == "pc":
            raise ValueError(
                "method: 'pc' sets its corrector step from norms averaged over the batch (Song "
                "et al.), which couples the series of a batch, so chunks would not equal the "
                "whole batch; impute a dask-backed values with another method"
            )
        payload = to_bytes(score_model)
        kwargs = dict(sde=sde.config(), times=times, n_samples=n_samples, method=method,
                      steps=steps, obs_weight=obs_weight, sigma_y=sigma_y,
                      random_state=0 if random_state is None else random_state)  # fmt: skip
        return map_series(values, from_bytes, payload, _impute_block, kwargs, "values")
    if generator is not None and random_state is not None:
        raise ValueError("pass generator or random_state, not both")
    vals, t_coord, series = _as_array(values)
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
    if random_state is not None:
        generator = KeyedGenerator.for_labels(check_seed(random_state), series)
        generator = generator.repeat(n_samples, interleave=True)  # rows as rep_vals
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
        "series": series,
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
    hist, t_coord, _ = _as_array(history)
    if int(horizon) < 1:
        raise ValueError(f"horizon must be a positive integer; got {horizon!r}")
    b, length, ch = hist.shape
    pad = torch.full((b, int(horizon), ch), float("nan"))
    times = kwargs.pop("times", None)
    if times is None and t_coord is not None and len(t_coord) > 1:
        step = t_coord[-1] - t_coord[-2]
        times = np.concatenate([t_coord, t_coord[-1] + step * np.arange(1, int(horizon) + 1)])
    return impute(score_model, sde, torch.cat([hist, pad], 1), times=times, **kwargs)


def _impute_block(model, block, sde, **kwargs):
    """:func:`impute` of one chunk of series (:func:`neuralsde.data.chunks.map_series`)."""
    return impute(model, sde_from_config(sde), block, **kwargs)
