"""The seasonal mean of the standardisation (Scaler.fit(season_period=...)) and the
forecaster's ``seasonal_period``: least squares recovers planted harmonics, the transform
round-trips, forecasts carry the season on, and bad periods are named."""

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from neuralsde.data import IrregularBatch
from neuralsde.data.scaling import Scaler, encode_period
from neuralsde.estimators import LatentSDEForecaster


def _seasonal_batch(n=300, period=12.0, noise=0.1, seed=0, drop=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    y = 5.0 + 2.0 * np.sin(2 * np.pi * t / period) - 1.0 * np.cos(4 * np.pi * t / period)
    y = y + noise * rng.normal(size=n)
    y[rng.random(n) < drop] = np.nan
    return t, y


def test_least_squares_recovers_the_planted_harmonics_and_round_trips():
    """Noise sd 0.1 over ~210 points: coefficient standard errors ~0.01; 5 of them bound."""
    t, y = _seasonal_batch()
    b = IrregularBatch.from_arrays(t, y)
    sc = Scaler.fit(b, season_period=12.0, harmonics=2)
    coef = np.array(sc.season)[:, 0]  # a_1, a_2, b_1, b_2
    np.testing.assert_allclose(coef, [2.0, 0.0, 0.0, -1.0], atol=0.05)
    assert sc.mean[0] == pytest.approx(5.0, abs=0.05)
    assert sc.std[0] == pytest.approx(0.1, rel=0.15)  # what is left is the noise
    times, v = sc.transform(b)
    back = sc.inverse_values(v, t)
    obs = np.isfinite(y)
    np.testing.assert_allclose(back[0, obs, 0].numpy(), y[obs], rtol=1e-12, atol=1e-12)
    assert Scaler.from_dict(sc.to_dict()) == sc
    with pytest.raises(ValueError, match="times: a scaler with a seasonal mean"):
        sc.inverse_values(v)


def test_forecasts_carry_the_season_on():
    """A pure seasonal signal with small noise: 3 seasons ahead, the forecast median follows
    the harmonic mean to within 5 noise sd (the SDE only models the small residual)."""
    t, y = _seasonal_batch(n=120, noise=0.05, drop=0.3)
    ds = xr.Dataset({"values": (("series", "time", "channel"), y[None, :, None])},
                    coords={"time": t})  # fmt: skip
    m = LatentSDEForecaster(latent_dim=2, context_dim=4, hidden=16, epochs=15,
                            seasonal_period=12.0, verbose=False).fit(ds)  # fmt: skip
    future = np.arange(121.0, 157.0)
    out = m.predict(ds, times=future, n_samples=50, random_state=1)
    truth = 5.0 + 2.0 * np.sin(2 * np.pi * future / 12) - np.cos(4 * np.pi * future / 12)
    err = np.abs(out["median"].values[0, :, 0] - truth)
    assert err.mean() < 5 * 0.05 + 0.1, err
    # without the season the same model cannot follow the cycle
    plain = LatentSDEForecaster(latent_dim=2, context_dim=4, hidden=16, epochs=15,
                                verbose=False).fit(ds)  # fmt: skip
    err_plain = np.abs(plain.predict(ds, times=future, n_samples=50)["median"].values[0, :, 0]
                       - truth)  # fmt: skip
    assert err_plain.mean() > 2 * err.mean()


def test_trend_and_season_are_recovered_together_and_round_trip():
    """Planted slope 0.05 per step with the season: least squares recovers both (standard
    error of the slope ~ 0.1 / sqrt(sum (t - tbar)^2) ~ 3e-5), the residual is the noise."""
    t, y = _seasonal_batch()
    y = y + 0.05 * t
    b = IrregularBatch.from_arrays(t, y)
    sc = Scaler.fit(b, season_period=12.0, harmonics=2, trend=True)
    assert sc.trend[0] == pytest.approx(0.05, abs=5e-4)
    np.testing.assert_allclose(np.array(sc.season)[:, 0], [2.0, 0.0, 0.0, -1.0], atol=0.05)
    assert sc.std[0] == pytest.approx(0.1, rel=0.15)
    times, v = sc.transform(b)
    obs = np.isfinite(y)
    np.testing.assert_allclose(sc.inverse_values(v, t)[0, obs, 0].numpy(), y[obs], atol=1e-10)
    assert Scaler.from_dict(sc.to_dict()) == sc
    # a trend alone, without a season
    lone = Scaler.fit(IrregularBatch.from_arrays(t, 0.05 * t + 1.0), trend=True)
    assert lone.trend[0] == pytest.approx(0.05) and lone.mean[0] == pytest.approx(1.0)


def test_forecasts_extrapolate_the_trend():
    """A line plus small noise: 30 steps past the data, the median follows the line to within
    a few noise sd with ``trend=True``; without it the forecast falls far behind."""
    rng = np.random.default_rng(0)
    t = np.arange(100.0)
    y = 0.1 * t + 0.05 * rng.normal(size=100)
    ds = xr.Dataset({"values": (("series", "time", "channel"), y[None, :, None])},
                    coords={"time": t})  # fmt: skip
    future = np.arange(101.0, 131.0)
    kw = {"latent_dim": 2, "context_dim": 4, "hidden": 16, "epochs": 15, "verbose": False}
    m = LatentSDEForecaster(trend=True, **kw).fit(ds)
    err = np.abs(m.predict(ds, times=future, n_samples=50)["median"].values[0, :, 0]
                 - 0.1 * future)  # fmt: skip
    assert err.mean() < 5 * 0.05 + 0.1, err
    plain = LatentSDEForecaster(**kw).fit(ds)
    err_plain = np.abs(plain.predict(ds, times=future, n_samples=50)["median"].values[0, :, 0]
                       - 0.1 * future)  # fmt: skip
    assert err_plain.mean() > 3 * err.mean()
    with pytest.raises(TypeError, match="trend"):
        LatentSDEForecaster(trend="yes", **kw).fit(ds)


def test_periods_are_checked_and_converted():
    enc = IrregularBatch.from_xarray(
        xr.Dataset({"values": (("series", "time", "channel"), np.ones((1, 30, 1)))},
                   coords={"time": pd.date_range("2000-01-01", periods=30, freq="MS")})
    ).time_encoding  # fmt: skip
    days = encode_period("365.25D", enc, "seasonal_period") * {"D": 1.0, "s": 1 / 86400}.get(
        enc.unit, 1.0
    )
    assert days == pytest.approx(365.25) or enc.unit not in ("D", "s")
    with pytest.raises(TypeError, match="seasonal_period must be a timedelta"):
        encode_period(12, enc, "seasonal_period")
    with pytest.raises(TypeError, match="seasonal_period must be a number"):
        encode_period("12D", None, "seasonal_period")
    with pytest.raises(ValueError, match="seasonal_period must be positive"):
        encode_period(-3.0, None, "seasonal_period")
    t, y = _seasonal_batch(n=6, drop=0.0)
    ds = xr.Dataset({"values": (("series", "time", "channel"), y[None, :, None])},
                    coords={"time": t})  # fmt: skip
    with pytest.raises(ValueError, match="needs at least 8 observations"):
        LatentSDEForecaster(seasonal_period=3.0, epochs=1, verbose=False).fit(ds)
    with pytest.raises(ValueError, match="harmonics must be a positive int"):
        LatentSDEForecaster(seasonal_period=3.0, harmonics=0, epochs=1, verbose=False).fit(ds)
    assert torch.is_tensor(Scaler().seasonal(torch.zeros(3)))
