"""LatentSDEForecaster: sklearn conventions, outputs, bad input, and the fan chart."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.base import clone  # noqa: E402

from neuralsde.data import IrregularBatch  # noqa: E402
from neuralsde.estimators import LatentSDEForecaster  # noqa: E402
from neuralsde.noise import MarkovFBM  # noqa: E402

SMALL = dict(latent_dim=2, context_dim=4, hidden=8, epochs=2, batch_size=4, verbose=False)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(1.0, 3.0, size=n)) for n in (7, 9, 6, 8)]
    values = [np.c_[np.sin(t), np.cos(t)] + 0.1 * rng.normal(size=(len(t), 2)) for t in times]
    values[1][2, 0] = np.nan
    return IrregularBatch.from_arrays(times, values, series=["a", "b", "c", "d"])


@pytest.fixture(scope="module")
def fitted(data):
    return LatentSDEForecaster(**SMALL).fit(data)


def test_init_only_stores_params_and_clone_round_trips():
    m = LatentSDEForecaster(latent_dim=3, noise=MarkovFBM(0.6), epochs=7)
    c = clone(m)
    assert c.get_params()["latent_dim"] == 3 and c.get_params()["epochs"] == 7
    assert isinstance(c.noise, MarkovFBM) and c.noise is not m.noise
    assert not any(k.endswith("_") for k in vars(m))


def test_fit_sets_trailing_underscore_attributes(fitted, data):
    for name in ("model_", "history_", "scaler_", "n_features_in_"):
        assert hasattr(fitted, name)
    t = data.times[torch.isfinite(data.times)]
    assert fitted.scaler_.time_offset == pytest.approx(float(t.min()))
    assert fitted.scaler_.time_scale == pytest.approx(float(t.max() - t.min()))
    assert len(fitted.history_.train_loss) == 2


def test_predict_returns_samples_quantiles_and_mean_at_the_requested_times(fitted, data):
    times = [2.0, 3.5, 4.0]
    ds = fitted.predict(data, times=times, n_samples=30)
    assert ds["samples"].shape == (30, 4, 3, 2)
    np.testing.assert_allclose(ds["time"].values, times)
    assert list(ds["series"].values) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(ds["mean"].values, ds["samples"].values.mean(0))
    q = ds["quantiles"].sel(quantile=[0.05, 0.5, 0.95]).values
    assert (q[0] <= q[1]).all() and (q[1] <= q[2]).all()
    again = fitted.predict(data, times=times, n_samples=30)
    np.testing.assert_array_equal(ds["samples"].values, again["samples"].values)


def test_predict_at_observed_times_by_default_and_prior_samples(fitted, data):
    ds = fitted.predict(data, n_samples=5)
    assert ds.sizes["time"] == int(torch.isfinite(data.times).sum())
    prior = fitted.sample_prior(np.linspace(1.0, 5.0, 9), n_samples=11)
    assert prior["samples"].shape == (11, 1, 9, 2)
    assert np.isfinite(prior["samples"].values).all()


def test_elbo_is_a_finite_float_per_observation(fitted, data):
    e = fitted.elbo(data)
    assert isinstance(e, float) and np.isfinite(e)
    assert fitted.score(data) == pytest.approx(e)


def test_elbo_is_equivariant_to_the_data_units(data):
    # Same fit on data scaled by 10: the per-observation ELBO drops by exactly log 10 (the
    # same series labels: each series' noise is drawn from its label)
    scaled = IrregularBatch.from_padded(data.times, data.values * 10.0, data.lengths,
                                        series=data.series)  # fmt: skip
    kw = {**SMALL, "epochs": 1}
    m1 = LatentSDEForecaster(**kw).fit(data)
    m2 = LatentSDEForecaster(**kw).fit(scaled)
    assert m2.elbo(scaled) == pytest.approx(m1.elbo(data) - np.log(10.0), abs=1e-4)


def test_fractional_noise_exposes_the_fitted_hurst(data):
    m = LatentSDEForecaster(noise="fractional", hurst=0.6, **SMALL).fit(data)
    assert 0 < m.hurst_ < 1
    assert len(m.hurst_history_) == 3  # two epochs and the polish
    assert m.hurst_history_[-1] == pytest.approx(m.hurst_)


def test_polish_runs_lbfgs_on_the_backward_filter_fit_only_and_never_lowers_the_elbo(data):
    frac = LatentSDEForecaster(noise="fractional", **{**SMALL, "epochs": 4}).fit(data)
    assert frac.model_.posterior_kind == "backward_filter"
    assert 1 <= frac.polish_["evaluations"] <= 2  # "auto": half the epochs
    assert frac.polish_["loss_after"] <= frac.polish_["loss_before"]
    assert len(frac.hurst_history_) == 5  # four epochs and the polish
    assert LatentSDEForecaster(**SMALL).fit(data).polish_ is None  # neural posterior
    assert LatentSDEForecaster(polish=3, **SMALL).fit(data).polish_["evaluations"] <= 3
    for bad, err in ((-1, ValueError), ("yes", TypeError), (True, TypeError)):
        with pytest.raises(err, match="polish must be 'auto' or an int >= 0"):
            LatentSDEForecaster(polish=bad, **SMALL).fit(data)


def test_predict_before_the_data_start_is_rejected(fitted, data):
    with pytest.raises(ValueError, match=r"times: 0.5 is before the start of the data \(1.00"):
        fitted.predict(data, times=[0.5, 2.0])


def test_all_nan_series_is_rejected(data):
    import xarray as xr

    values = np.array([[[1.0], [2.0]], [[np.nan], [np.nan]]])
    da = xr.DataArray(values, dims=("series", "time", "channel"),
                      coords={"series": ["ok", "empty"], "time": [0.0, 1.0]})  # fmt: skip
    with pytest.raises(ValueError, match=r"has no observed value"):
        LatentSDEForecaster(**SMALL).fit(da)
    padded = IrregularBatch(data.times, data.values.clone(), data.lengths, data.series,
                            data.channels)  # fmt: skip
    padded.values[2] = float("nan")  # bypasses the constructors' validation
    with pytest.raises(ValueError, match="X: series c has no observed value"):
        LatentSDEForecaster(**SMALL).fit(padded)


def test_unknown_noise_and_wrong_channel_count_are_rejected(fitted, data):
    with pytest.raises(ValueError, match="noise must be one of"):
        LatentSDEForecaster(noise="pink", **SMALL).fit(data)
    one = IrregularBatch.from_arrays([np.array([1.0, 2.0])], [np.array([1.0, 2.0])])
    with pytest.raises(ValueError, match="X has 1 channels but the estimator was fitted on 2"):
        fitted.predict(one)
    with pytest.raises(TypeError, match="X must be an IrregularBatch"):
        fitted.predict([1, 2, 3])


def test_plot_forecast_draws_bands_median_and_observations(fitted, data):
    from neuralsde.plotting import plot_forecast

    ds = fitted.predict(data, times=np.linspace(1.1, 4.0, 12), n_samples=20)
    ax = plot_forecast(ds, observed=data, series="b")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["90% band", "50% band", "median", "observed"]
    median = ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(median, ds["samples"].sel(series="b", channel=0).median("sample"))
    with pytest.raises(ValueError, match="'samples' variable"):
        plot_forecast(ds["mean"].to_dataset())
