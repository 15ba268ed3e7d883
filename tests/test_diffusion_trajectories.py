"""Trajectory imputation and forecasting on OU windows with the exact (Gaussian) score: the
output is xarray, and 50% missing points are imputed better than by linear interpolation."""

import numpy as np
import pytest
import torch
import xarray as xr

from neuralsde.diffusion import VPSDE, GaussianMixture
from neuralsde.diffusion.trajectories import forecast, impute

L, DT, THETA = 16, 0.25, 1.0
T = DT * np.arange(L)
COV = np.exp(-THETA * np.abs(T[:, None] - T[None, :]))  # stationary OU, unit variance
OU = GaussianMixture([1.0], [np.zeros(L).tolist()], [COV.tolist()])
SDE_ = VPSDE()


def score(x, t):
    return OU.score(x.reshape(x.shape[0], L).double(), SDE_, t.double()).reshape(x.shape).to(x)


pytestmark = pytest.mark.usefixtures("one_thread")


def _windows(n, seed):
    return OU.sample(n, torch.Generator().manual_seed(seed)).float().unsqueeze(-1)


def test_imputation_with_exact_score_beats_linear_interpolation_at_50_percent_missing():
    x = _windows(40, 0)
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) >= 0.5
    mask[:, 0] = True
    obs = torch.where(mask, x, torch.full_like(x, float("nan")))
    ds = impute(
        score,
        SDE_,
        obs,
        times=T,
        n_samples=16,
        method="euler",
        steps=200,
        generator=torch.Generator().manual_seed(2),
    )
    assert isinstance(ds, xr.Dataset)
    assert ds["samples"].dims == ("sample", "series", "time", "channel")
    np.testing.assert_allclose(ds["time"].values, T)
    pred = torch.tensor(ds["mean"].values)
    miss = ~mask
    lin = obs.clone()
    for i in range(x.shape[0]):
        m = mask[i, :, 0].numpy()
        lin[i, :, 0] = torch.tensor(np.interp(np.arange(L), np.arange(L)[m], x[i, m, 0].numpy()))
    rmse = lambda p: float(((p - x)[miss] ** 2).mean().sqrt())  # noqa: E731
    assert rmse(pred) < rmse(lin)
    # observed points are returned exactly
    torch.testing.assert_close(pred[mask], x[mask])


def test_forecast_extends_the_time_axis_and_keeps_the_history():
    hist = _windows(3, 3)[:, :12]
    da = xr.DataArray(hist.numpy(), dims=("series", "time", "channel"), coords={"time": T[:12]})
    ds = forecast(
        score,
        SDE_,
        da,
        horizon=4,
        n_samples=4,
        method="dpmpp_2m",
        steps=10,
        generator=torch.Generator().manual_seed(0),
    )
    np.testing.assert_allclose(ds["time"].values, T)
    np.testing.assert_allclose(
        ds["samples"].values[:, :, :12], np.broadcast_to(hist.numpy(), (4, 3, 12, 1)), atol=1e-6
    )
    # the forecast reverts towards the stationary mean like exp(-theta h)
    last = hist[:, -1, 0].numpy()
    expected = last * np.exp(-THETA * DT * 4)
    got = ds["mean"].values[:, -1, 0]
    assert np.all(np.abs(got - expected) < 4 * 1.0 / np.sqrt(4) + 0.1)


def test_impute_rejects_a_mask_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"mask of shape \(2, 16, 1\) does not match values"):
        impute(score, SDE_, _windows(3, 0), mask=torch.ones(2, L, 1, dtype=torch.bool))
