"""scikit-learn estimators: conventions, persistence, bad input, a learnable task."""

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from neuralsde.data import IrregularBatch
from neuralsde.estimators import SCHEDULES, SDEClassifier, SDERegressor

FAST = {"hidden": 6, "epochs": 2, "verbose": False}


pytestmark = pytest.mark.usefixtures("one_thread")


def _two_classes(n=24, length=12, channels=2, missing=0.3, seed=0):
    """Class 1 is class 0 shifted by +1.5 in every channel; a share of points is NaN."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, length, channels))
    y = np.repeat([0, 1], n // 2)
    X[y == 1] += 1.5
    X[rng.random(X.shape) < missing] = np.nan
    return X, y


@pytest.fixture(scope="module")
def data():
    return _two_classes()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return SDEClassifier(kind="lsde", **FAST).fit(X, y)


def test_parameters_live_in_init_and_clone_gives_an_unfitted_copy(fitted):
    params = fitted.get_params()
    assert params["kind"] == "lsde" and params["hidden"] == 6
    copy = clone(fitted)
    assert copy.get_params() == params
    assert not hasattr(copy, "model_") and hasattr(fitted, "model_")
    assert copy.set_params(hidden=9).hidden == 9 and fitted.hidden == 6


def test_fitted_attributes_end_with_an_underscore(fitted):
    for name in ("classes_", "model_", "history_", "n_channels_", "dt_"):
        assert hasattr(fitted, name)
    assert fitted.classes_.tolist() == [0, 1] and fitted.n_channels_ == 2


def test_grid_search_over_hidden(data):
    X, y = data
    search = GridSearchCV(SDEClassifier(**FAST), {"hidden": [4, 8]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["hidden"] in (4, 8)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.predict(X).shape == (len(y),)


def test_pipeline_with_a_preprocessing_step(data):
    X, y = data
    pipe = Pipeline([("squash", FunctionTransformer(np.tanh)), ("clf", SDEClassifier(**FAST))])
    pipe.fit(X, y)
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("kind", ["lsde", "lnsde", "gsde", "naive", "ncde"])
def test_predict_is_identical_after_save_and_load(kind, data, tmp_path):
    X, y = data
    clf = SDEClassifier(kind=kind, **FAST).fit(X, y)
    folder = clf.save(tmp_path / kind)
    config = json.loads((folder / "config.json").read_text())
    assert config["params"]["kind"] == kind
    assert config["fitted"]["classes_"]["__array__"] == [0, 1]
    loaded = SDEClassifier.load(folder)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_regressor_predictions_survive_save_and_load(data, tmp_path):
    X, _ = data
    reg = SDERegressor(**FAST).fit(X)
    loaded = SDERegressor.load(reg.save(tmp_path / "reg"))
    a, b = reg.predict(X, times=[1.0, 5.5, 20.0]), loaded.predict(X, times=[1.0, 5.5, 20.0])
    np.testing.assert_array_equal(a.values, b.values)
    assert a.dims == ("series", "time", "channel") and a["time"].values.tolist() == [1, 5.5, 20]


def test_loading_the_wrong_estimator_is_refused(fitted, tmp_path):
    with pytest.raises(ValueError, match="holds a SDEClassifier, not a SDERegressor"):
        SDERegressor.load(fitted.save(tmp_path / "clf"))


def test_classifier_learns_a_mean_shift_through_gaps():
    X, y = _two_classes(n=32, length=12, missing=0.5, seed=1)
    Xt, yt = _two_classes(n=40, length=12, missing=0.5, seed=2)
    clf = SDEClassifier(
        kind="lnsde", hidden=8, epochs=30, lr=1e-2, patience=None, verbose=False
    ).fit(X, y)
    assert clf.score(Xt, yt) >= 0.9


def test_default_dt_is_the_smallest_observed_gap():
    times = [np.array([0.0, 0.5, 2.0]), np.array([0.0, 0.25, 1.0, 2.0])]
    values = [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 1.0, 2.0])]
    clf = SDEClassifier(**FAST).fit(list(zip(times, values, strict=True)), [0, 1])
    assert clf.dt_ * clf.scaler_.time_scale == pytest.approx(0.25)
    tiny = [np.array([0.0, 1e-5, 2.0]), np.array([0.0, 1.0, 2.0])]
    clf = SDEClassifier(**FAST).fit(list(zip(tiny, values[:1] * 2, strict=True)), [0, 1])
    assert clf.dt_ * clf.scaler_.time_scale == pytest.approx(1e-3 * 2.0)  # 1e-3 of the span


def test_xarray_and_ragged_inputs_are_accepted(data):
    X, y = data
    batch = IrregularBatch.coerce(X)
    clf = SDEClassifier(**FAST).fit(batch.to_xarray(), y)
    assert clf.predict([x[:7] for x in X]).shape == (len(y),)


def test_regressor_forecasts_past_the_last_observation(data):
    X, _ = data
    reg = SDERegressor(task="forecast", **FAST).fit(X)
    pred = reg.predict(X, times=np.arange(12.0, 18.0))
    assert pred.shape == (len(X), 6, 2) and np.isfinite(pred.values).all()


# ---------------------------------------------------------------------------- bad input
def test_predicting_before_fit_raises(data):
    X, _ = data
    with pytest.raises(NotFittedError, match="not fitted yet"):
        SDEClassifier().predict(X)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        SDERegressor().predict(X)


def test_a_channel_count_different_from_fit_raises(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match="X has 3 channels but the estimator was fitted on 2"):
        fitted.predict(np.concatenate([X, X[..., :1]], axis=-1))


def test_labels_with_one_class_raise(data):
    X, y = data
    with pytest.raises(ValueError, match=r"y has a single class \(1\); .* at least 2 classes"):
        SDEClassifier(**FAST).fit(X, np.ones_like(y))


def test_an_all_nan_series_raises_naming_it(data):
    X, y = data
    bad = X.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"X: values\[3\] has no observed value"):
        SDEClassifier(**FAST).fit(bad, y)
    with pytest.raises(ValueError, match=r"X: values\[3\] has no observed value"):
        SDEClassifier(**FAST).fit(X, y).predict(bad)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"kind": "ode"}, r"kind must be one of .* got 'ode'"),
        ({"hidden": 0}, "hidden must be a positive integer; got 0"),
        ({"dt": -1.0}, "dt must be a positive number or None; got -1.0"),
        ({"validation_fraction": 1.5}, r"validation_fraction must lie in \[0, 1\); got 1.5"),
    ],
)
def test_bad_parameters_raise_at_fit(params, match, data):
    X, y = data
    with pytest.raises(ValueError, match=match):
        SDEClassifier(**{**FAST, **params}).fit(X, y)


def test_label_count_must_match_the_series(data):
    X, y = data
    with pytest.raises(ValueError, match=r"y must have shape \(24,\) .* got shape \(23,\)"):
        SDEClassifier(**FAST).fit(X, y[:-1])


def test_unsupported_input_types_raise_type_error():
    with pytest.raises(TypeError, match="X must be an IrregularBatch, .* got str"):
        SDEClassifier(**FAST).fit("series", [0, 1])


@pytest.mark.slow
def test_lsde_classifies_basic_motions_at_missing_rate_zero():
    """One cell of benchmarks/stable_uea.py (seed 0): 70/15/15 split, validation early stopping."""
    from neuralsde.data import IrregularBatch
    from neuralsde.datasets import load_basic_motions

    batch = IrregularBatch.from_xarray(load_basic_motions()).to(dtype=torch.float32)
    train, val, test = batch.drop(0.0, seed=0).split((0.7, 0.15, 0.15), seed=0)
    clf = SDEClassifier(kind="lsde", hidden=32, epochs=100, lr=1e-2, batch_size=16,
                        patience=20, random_state=0, verbose=False)  # fmt: skip
    clf.fit(train, eval_set=(val, val.labels))
    assert clf.score(test, test.labels) >= 0.9


def test_same_random_state_gives_the_same_model_whatever_the_global_rng(data):
    X, y = data
    torch.manual_seed(1)
    a = SDEClassifier(kind="gsde", **FAST).fit(X, y).predict_proba(X)
    torch.manual_seed(2)
    b = SDEClassifier(kind="gsde", **FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_regressor_interpolates_hidden_points_of_sine_waves():
    rng = np.random.default_rng(0)
    full = np.sin(np.linspace(0, 6, 20)[None, :] + rng.uniform(0, 2 * np.pi, (32, 1)))[..., None]
    gappy = full.copy()
    gappy[rng.random(full.shape) < 0.3] = np.nan
    reg = SDERegressor(hidden=16, epochs=30, lr=1e-2, batch_size=8, patience=None, verbose=False)
    pred = reg.fit(gappy).predict(gappy, times=np.arange(20.0))  # array input: times 0 .. L-1
    hidden = np.isnan(gappy)
    mse = ((pred.values - full) ** 2)[hidden].mean()
    assert mse < 0.1 * full.var()
    assert reg.score(gappy) > 0.9


def test_the_steps_clock_counts_time_in_default_steps_as_the_reference_does():
    """Regular series of length 12: the reference's times are the indices 0..11 with dt = 1."""
    X, y = _two_classes(missing=0.0)
    steps = SDEClassifier(clock="steps", **FAST).fit(X, y)
    assert steps.time_span_ == pytest.approx(11.0) and steps.dt_ == pytest.approx(1.0)
    unit = SDEClassifier(clock="unit", **FAST).fit(X, y)
    assert unit.time_span_ == 1.0 and unit.dt_ == pytest.approx(1 / 11)
    assert steps.dt_ * steps.scaler_.time_scale == pytest.approx(unit.dt_ * unit.scaler_.time_scale)


def _hidden_displacement(clf, X):
    times, values, _ = clf._tensors(X)
    path = clf._path(times, values)
    ts = torch.tensor([float(path.interval[0]), float(path.interval[-1])])
    with torch.no_grad():
        z = clf.model_.encoder.hidden_path(path, ts, **clf._solver(clf._generator()))
    return (z[-1] - z[0]).abs()


@pytest.mark.parametrize("clock, span", [("unit", 1.0), ("steps", 11.0)])
def test_a_saturated_bounded_drift_moves_the_state_by_the_clocks_span(clock, span):
    """With zero diffusion and the drift's tanh saturated at 1, z_T - z_0 = t_1 - t_0: under
    the unit clock no series, however long, moves the state by more than 1."""
    X, y = _two_classes(missing=0.0)
    clf = SDEClassifier(kind="lnsde", clock=clock, **FAST).fit(X, y)
    sde = clf.model_.encoder
    with torch.no_grad():
        sde.drift.linear_out.weight.zero_()
        sde.drift.linear_out.bias.fill_(50.0)
        sde.diffusion.theta.fill_(-torch.inf)  # sigmoid(theta) = 0: no noise
    moved = _hidden_displacement(clf, X)
    torch.testing.assert_close(moved, torch.full_like(moved, span), rtol=1e-5, atol=1e-5)


def test_the_neural_cde_does_not_depend_on_the_clock(data):
    """A CDE's solution depends on the path's image only: the same weights give the same
    probabilities under either clock (the time channel spans [0, 1] under both)."""
    X, y = data
    unit = SDEClassifier(kind="ncde", clock="unit", **FAST).fit(X, y)
    steps = clone(unit).set_params(clock="steps")
    steps._fit_scaling(IrregularBatch.coerce(X))
    steps.classes_, steps.model_ = unit.classes_, unit.model_
    assert steps.time_span_ == pytest.approx(11.0)
    np.testing.assert_allclose(steps.predict_proba(X), unit.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize(
    "schedule, n, batch, lr",
    [
        ("adamw", 20, 16, 1e-2),  # the default: at least 8 steps per epoch, 16 at the least
        ("adamw", 255, 16, 1e-2),
        ("adamw", 256, 32, 1e-2),
        ("adamw", 767, 64, 1e-2),  # ItalyPowerDemand's training split
        ("adamw", 5000, 128, 1e-2),
        ("reference", 20, 16, 1e-3),  # no batch of 16..128 fits in n / 2 = 10: take 16
        ("reference", 300, 128, 8e-3),  # the largest of 16..128 within n / 2, lr 1e-3 per 16
        ("reference", 100, 32, 2e-3),
        ("v1", 20, 20, 1e-3),  # full batch
    ],
)
def test_each_schedule_sets_its_own_batch_size_and_learning_rate(schedule, n, batch, lr):
    clf = SDEClassifier(schedule=schedule)
    assert clf._effective_batch_size(n) == batch
    assert clf._effective_lr(clf._effective_batch_size(n)) == pytest.approx(lr)
    set_by_hand = SDEClassifier(schedule=schedule, batch_size=5, lr=0.3)
    assert set_by_hand._effective_batch_size(n) == 5 and set_by_hand._effective_lr(5) == 0.3


def test_the_default_classifier_trains_with_the_validated_schedule(data):
    X, y = data
    clf = SDEClassifier(**FAST).fit(X, y)
    assert (clf.schedule, clf.patience, clf.batch_size_, clf.lr_) == ("adamw", 20, 16, 1e-2)
    optimizer = SCHEDULES["adamw"]["optimizer"](clf.model_.parameters(), 1e-2)
    assert isinstance(optimizer, torch.optim.AdamW)
