"""What a new user hit when trying the library on public data, each reproduced and checked:
dates as query times, channels matched by name, a never-observed channel, pandas inputs,
scikit-learn cross-validation, variable-length .ts files, change points as time stamps, and
train_score on numpy / float64 data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score

from neuralsde.data import IrregularBatch
from neuralsde.estimators import (
    LatentSDEChangeDetector,
    LatentSDEForecaster,
    SDEClassifier,
    SDERegressor,
)

SMALL_LATENT = {"latent_dim": 2, "context_dim": 4, "hidden": 8, "epochs": 2, "batch_size": 4,
                "verbose": False}  # fmt: skip
SMALL_SDE = {"hidden": 6, "epochs": 2, "verbose": False}


def _dated_series(freq, n, seed=0):
    rng = np.random.default_rng(seed)
    index = pd.date_range("2015-01-01", periods=n, freq=freq)
    return pd.Series(np.cumsum(rng.normal(size=n)), index=index, name="level")


# ------------------------------------------------------------------ dates in predict(times=)
@pytest.mark.parametrize("freq, n", [("MS", 36), ("W-MON", 60)])
def test_dates_as_query_times_are_read_on_the_fitted_time_axis(freq, n):
    series = _dated_series(freq, n)
    model = LatentSDEForecaster(**SMALL_LATENT).fit(series)
    future = pd.date_range(series.index[-1], periods=7, freq=freq)[1:]
    ds = model.predict(series, times=future, n_samples=4)
    assert ds["time"].dtype.kind == "M"
    np.testing.assert_array_equal(ds["time"].values, future.to_numpy())
    # the same dates as Timestamps, as strings and as datetime64 give the same forecast
    for same in (list(future), [str(d.date()) for d in future], future.to_numpy()):
        again = model.predict(series, times=same, n_samples=4)
        np.testing.assert_array_equal(again["samples"].values, ds["samples"].values)


def test_raw_numbers_for_a_dated_model_and_an_absurd_horizon_are_refused_before_allocating():
    series = _dated_series("MS", 36)
    model = LatentSDEForecaster(**SMALL_LATENT).fit(series)
    with pytest.raises(TypeError, match="times must be dates"):
        model.predict(series, times=[1.7e15])  # microseconds since the epoch, as once read
    with pytest.raises(ValueError, match=r"times must lie between 1678-01-01.* got 9000-01-01"):
        model.predict(series, times=pd.DatetimeIndex(["9000-01-01"]))
    numeric = LatentSDEForecaster(**SMALL_LATENT).fit(
        IrregularBatch.from_arrays(np.arange(20.0), np.sin(np.arange(20.0)))
    )
    with pytest.raises(ValueError, match=r"times reach .* solver steps"):
        numeric.predict(np.sin(np.arange(20.0))[None], times=[1e9])


def test_the_regressor_reads_dates_too():
    series = _dated_series("MS", 30)
    reg = SDERegressor(**SMALL_SDE).fit(series)
    future = pd.date_range("2017-07-01", periods=3, freq="MS")
    out = reg.predict(series, times=future)
    np.testing.assert_array_equal(out["time"].values, future.to_numpy())


# ------------------------------------------------------------------ channels by name
def _labelled_long_frame(seed=0, n=16, length=10):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        shift = float(i % 2)
        for t in range(length):
            rows.append({"id": i, "time": float(t), "a": rng.normal() + shift,
                         "b": rng.normal() - shift, "c": rng.normal() * (1 + shift)})  # fmt: skip
    df = pd.DataFrame(rows)
    return df, np.array([i % 2 for i in range(n)])


def test_reordered_columns_give_the_same_predictions_and_a_missing_one_is_named():
    df, y = _labelled_long_frame()
    clf = SDEClassifier(**SMALL_SDE).fit(df, y)
    ref = clf.predict_proba(df)
    np.testing.assert_array_equal(clf.predict_proba(df[["id", "time", "c", "a", "b"]]), ref)
    with pytest.raises(ValueError, match=r"missing \['c'\]"):
        clf.predict(df[["id", "time", "a", "b"]])
    with pytest.raises(ValueError, match=r"unknown \['d'\]"):
        clf.predict(df.assign(d=1.0))


def test_a_reordered_xarray_channel_coordinate_gives_the_same_predictions():
    df, y = _labelled_long_frame()
    da = IrregularBatch.coerce(df).to_xarray()
    clf = SDEClassifier(**SMALL_SDE).fit(da, y)
    np.testing.assert_array_equal(
        clf.predict_proba(da.sel(channel=["b", "c", "a"])), clf.predict_proba(da)
    )


# ------------------------------------------------------------------ a never-observed channel
def test_a_channel_never_observed_is_refused_in_fit_and_in_predict():
    df, y = _labelled_long_frame()
    with pytest.raises(ValueError, match=r"channel\(s\) \['c'\] have no observed value"):
        SDEClassifier(**SMALL_SDE).fit(df.assign(c=np.nan), y)
    wide = pd.DataFrame({"a": np.sin(np.arange(30.0)), "b": np.cos(np.arange(30.0))})
    model = LatentSDEForecaster(**SMALL_LATENT).fit(wide)
    with pytest.raises(ValueError, match=r"channel\(s\) \['b'\] have no observed value"):
        model.predict(wide.assign(b=np.nan), times=[31.0])


# ------------------------------------------------------------------ pandas inputs
def test_pandas_series_and_wide_frames_are_accepted_by_the_forecaster_and_the_detector():
    series = _dated_series("D", 200)
    wide = pd.DataFrame({"x": series, "y": series.diff().fillna(0.0)})
    for X in (series, wide):
        assert LatentSDEForecaster(**SMALL_LATENT).fit(X).predict(X, n_samples=2)[
            "samples"].shape[1] == 1  # fmt: skip
        assert LatentSDEChangeDetector(window=30, epochs=0).fit(X).predict(n_bkps=1)[-1] == 200


def test_the_classifier_accepts_a_long_frame_with_a_label_column():
    df, y = _labelled_long_frame()
    df["label"] = np.repeat(y, 10)
    clf = SDEClassifier(**SMALL_SDE).fit(df)  # labels read from the frame
    assert list(clf.classes_) == [0, 1]


def test_a_non_numeric_column_is_named_with_a_hint():
    df, y = _labelled_long_frame()
    with pytest.raises(TypeError, match=r"X\['site'\] has dtype .* pass value_cols="):
        SDEClassifier(**SMALL_SDE).fit(df.assign(site="north"), y)
    wide = pd.DataFrame({"flow": np.arange(50.0), "site": ["n"] * 50})
    with pytest.raises(TypeError, match=r"signal\['site'\] has dtype .* pass value_cols="):
        LatentSDEChangeDetector(window=10).fit(wide)


# ------------------------------------------------------------------ scikit-learn splitters
def test_cross_val_score_runs_on_a_batch_and_a_data_array():
    df, y = _labelled_long_frame(n=18)
    batch = IrregularBatch.coerce(df)
    for X in (batch, batch.to_xarray()):
        scores = cross_val_score(SDEClassifier(**SMALL_SDE), X, y, cv=3, error_score="raise")
        assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))


def test_a_dataset_goes_through_the_gate_before_cross_validation():
    """``len(xr.Dataset)`` counts its variables, so scikit-learn cannot split a Dataset by
    series; ``IrregularBatch.coerce(ds)`` (labels included) can be split."""
    df, y = _labelled_long_frame(n=18)
    ds = IrregularBatch.coerce(df).to_dataset()
    ds["label"] = ("series", y)
    batch = IrregularBatch.coerce(ds)
    assert list(batch.labels) == list(y)
    scores = cross_val_score(SDEClassifier(**SMALL_SDE), batch, y, cv=3, error_score="raise")
    assert scores.shape == (3,)


# ------------------------------------------------------------------ variable-length .ts
TS = """# a variable-length, two-channel file in the UEA layout
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1.0,2.0,3.0,4.0:0.5,0.4,?,0.2:up
4.0,3.0:0.1,0.2:down
1.5,2.5,3.5:0.3,0.2,0.1:up
3.0,2.0,1.0,0.0,-1.0:0.0,0.1,0.2,0.3,0.4:down
"""


def test_variable_length_ts_files_are_read_as_ragged_series(tmp_path):
    from neuralsde.datasets import read_ts

    path = tmp_path / "toy.ts"
    path.write_text(TS)
    series, labels, header = read_ts(path, ragged=True)
    assert [s.shape for s in series] == [(4, 2), (2, 2), (3, 2), (5, 2)]
    assert list(labels) == ["up", "down", "up", "down"] and header["equallength"] == "false"
    assert np.isnan(series[0][2, 1])
    batch = IrregularBatch.coerce(series)
    assert batch.lengths.tolist() == [4, 2, 3, 5]
    padded, _, _ = read_ts(path)
    np.testing.assert_array_equal(IrregularBatch.coerce(padded).trim().lengths, batch.lengths)
    clf = SDEClassifier(**SMALL_SDE, validation_fraction=0).fit(series, labels)
    assert clf.predict(series).shape == (4,)


# ------------------------------------------------------------------ change points as dates
def test_breakpoints_come_back_as_the_users_time_stamps_and_plot_takes_them():
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    index = pd.date_range("2024-01-01", periods=300, freq="h")
    s = pd.Series(np.r_[rng.normal(0, 1, 150), rng.normal(0, 3, 150)], index=index)
    det = LatentSDEChangeDetector(window=40, epochs=0, random_state=0).fit(s)
    bkps = det.predict(n_bkps=1)
    stamps = det.to_times(bkps)
    assert stamps.dtype.kind == "M" and len(stamps) == 1
    assert abs(stamps[0] - index[150].to_datetime64()) <= np.timedelta64(15, "h")
    fig = det.plot(bkps=[100, 300])
    red = [ln for ln in fig.axes[0].lines if ln.get_color() == "tab:red"]
    assert len(red) == 1 and red[0].get_xdata()[0] == index[100]


# ------------------------------------------------------------------ train_score input
def test_train_score_accepts_numpy_and_float64_data():
    import torch

    from neuralsde.diffusion import VPSDE, ScoreMLP, train_score

    data = np.random.default_rng(0).normal(size=(64, 2))  # float64 numpy
    for d in (data, torch.from_numpy(data)):
        model, hist = train_score(d, VPSDE(), ScoreMLP(2, hidden=8), epochs=1, batch_size=32,
                                  verbose=False)  # fmt: skip
        assert len(hist.train_loss) == 1
    with pytest.raises(ValueError, match=r"data must be finite; got inf"):
        train_score(np.array([[1.0, np.inf]] * 4), VPSDE(), ScoreMLP(2, hidden=8), epochs=1,
                    verbose=False)  # fmt: skip
