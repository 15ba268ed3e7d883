"""Fuzzing the estimators, save/load, ``train.fit`` and the detector's peak picking."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralsde import train
from neuralsde.changepoint.peaks import pick_peaks
from neuralsde.estimators import (
    LatentSDEChangeDetector,
    LatentSDEForecaster,
    SDEClassifier,
    SDERegressor,
)

from .harness import case, examples, sweep

NAN, INF = float("nan"), float("inf")


def _panel(seed, n_series=8, length=6, trouble=None, labels="int"):
    """``(X (B, L, 1) with NaN, y)`` with one of the troubles a user may bring."""
    rng = np.random.default_rng(seed)
    length = 1 if trouble == "len1" else length
    X = rng.normal(size=(n_series, length, 1))
    if length > 2:
        X[rng.random(X.shape) < 0.3] = NAN
        X[:, 0] = rng.normal(size=(n_series, 1))
    if trouble == "all_nan":
        X[0] = NAN
    elif trouble == "huge":
        X *= 1e300
    elif trouble == "inf":
        X[0, 0, 0] = INF
    elif trouble == "ragged":
        X = [x[: 2 + i % 3] for i, x in enumerate(X)]
    y = np.arange(n_series) % 2
    y = {"int8": y.astype(np.int8), "str": np.array(["a", "b"])[y], "bool": y.astype(bool),
         "nan": np.where(y == 1, NAN, 0.0), "none": [None if v else "a" for v in y],
         "one_class": np.zeros(n_series, dtype=int), "short": y[:-1],
         "float": y + 0.5}.get(labels, y)  # fmt: skip
    return X, y


COMMON_GOOD = {
    "seed": st.integers(0, 2**16),
    "epochs": st.just(1),
    "lr": st.sampled_from([None, 1e-2]),
    "batch_size": st.sampled_from([None, 4, 100]),
    "device": st.just("cpu"),
    "random_state": st.sampled_from([0, None, 3]),
    "X": st.sampled_from([None, None, "ragged"]),
}
COMMON_BAD = {
    "epochs": st.sampled_from([0, -1, 2.5, "1"]),
    "lr": st.sampled_from([0.0, -1.0, NAN, INF]),
    "batch_size": st.sampled_from([0, 2.5]),
    "device": st.sampled_from(["cuda", "meta", 5, "bogus"]),
    "random_state": st.sampled_from([-1, "a", 2.5]),
    "X": st.sampled_from(["all_nan", "huge", "inf", "len1"]),
}


def _names(culprit):
    return None if culprit is None else {"X": ("X",), "y": ("y",)}.get(culprit, (culprit,))


def _split(kw, *data_keys):
    """The estimator's parameters (the drawn arguments that are not data)."""
    return {k: v for k, v in kw.items() if k not in ("seed", "X", "y", *data_keys)}


def _finite(a):
    return bool(np.all(np.isfinite(np.asarray(a, dtype=np.float64))))


@settings(max_examples=examples(24))
@given(drawn=sweep(
    {**COMMON_GOOD, "hidden": st.just(4), "validation_fraction": st.sampled_from([0.0, 0.25]),
     "dt": st.just(None), "y": st.sampled_from(["int", "int8", "str", "bool", "float"])},
    {**COMMON_BAD, "hidden": st.sampled_from([0, 2.5]),
     "validation_fraction": st.sampled_from([0.99, 1.0, NAN]),
     "dt": st.sampled_from([0.0, NAN, -1.0]),
     "y": st.sampled_from(["nan", "none", "one_class", "short"])}))  # fmt: skip
def test_classifier(drawn):
    kw, culprit = drawn
    X, y = _panel(kw["seed"], trouble=kw["X"], labels=kw["y"])

    def call():
        model = SDEClassifier(verbose=False, **_split(kw)).fit(X, y)
        return model, model.predict_proba(X), model.predict(X)

    def check(out):
        model, proba, pred = out
        assert proba.shape == (len(X), len(model.classes_)) and _finite(proba), "bad proba"
        assert np.allclose(proba.sum(1), 1.0), "probabilities do not sum to 1"
        assert set(pred) <= set(model.classes_), "a prediction is not a fitted class"
        assert model.classes_.dtype == np.asarray(y).dtype, "label dtype changed"

    case("SDEClassifier", call, _names(culprit), check)


@settings(max_examples=examples(16))
@given(drawn=sweep(
    {**COMMON_GOOD, "hidden": st.just(4), "y": st.sampled_from([None, "aligned"])},
    {**COMMON_BAD, "hidden": st.sampled_from([0, -3]),
     "y": st.sampled_from(["all_nan", "inf", "short", "flat"])}))  # fmt: skip
def test_regressor(drawn):
    kw, culprit = drawn
    X, _ = _panel(kw["seed"], trouble=kw["X"])
    shape = (len(X), max(len(x) for x in X), 1)
    y = None if kw["y"] is None else np.linspace(0.0, 1.0, np.prod(shape)).reshape(shape)
    if kw["y"] == "all_nan":
        y[:] = NAN
    elif kw["y"] == "inf":
        y[0, 0] = INF
    elif kw["y"] == "short":
        y = y[:-1]
    elif kw["y"] == "flat":
        y = y[:, 0, 0]

    def call():
        model = SDERegressor(verbose=False, **_split(kw)).fit(X, y)
        return model.predict(X)

    def check(pred):
        assert np.asarray(pred).shape[0] == len(X) and _finite(pred), "bad predictions"

    case("SDERegressor", call, _names(culprit), check)


@settings(max_examples=examples(14))
@given(drawn=sweep(
    {**{k: COMMON_GOOD[k] for k in ("seed", "epochs", "random_state", "X")},
     "noise": st.sampled_from(["brownian", "fractional"]), "K": st.just(3),
     "hurst": st.sampled_from([0.3, 0.5]), "dt": st.just(0.02), "n_samples": st.just(4),
     "gamma_max": st.just(20.0)},
    {**{k: COMMON_BAD[k] for k in ("epochs", "random_state", "X")},
     "noise": st.sampled_from(["bogus", None]), "K": st.sampled_from([50, 0, 2.5]),
     "hurst": st.sampled_from([1.2, 0.0, NAN]), "dt": st.sampled_from([0.0, 1e-9, NAN]),
     "n_samples": st.sampled_from([0, -1, 2.5]),
     "gamma_max": st.sampled_from([1e9, -1.0, NAN])}))  # fmt: skip
def test_forecaster(drawn):
    kw, culprit = drawn
    X, _ = _panel(kw["seed"], n_series=4, trouble=kw["X"])
    n_samples = kw["n_samples"]
    params = _split(kw, "n_samples")
    if kw["noise"] == "fractional" or culprit in ("K", "gamma_max", "hurst"):
        params["noise"] = "fractional"

    def call():
        model = LatentSDEForecaster(verbose=False, hidden=8, context_dim=4, latent_dim=2,
                                    batch_size=4, **params).fit(X)  # fmt: skip
        return model.predict(X, n_samples=n_samples)

    def check(out):
        mean = out["mean"].values
        assert _finite(mean[~np.isnan(mean)]) and not np.all(np.isnan(mean)), "bad forecast"

    case("LatentSDEForecaster", call, _names(culprit), check)


@settings(max_examples=examples(12))
@given(drawn=sweep(
    {"signal": st.just("good"), "window": st.sampled_from([10, "auto"]),
     "min_distance": st.sampled_from([None, 5]), "pen": st.sampled_from(["auto", 1.0, None]),
     "ridge": st.just(1e-3), "random_state": st.sampled_from([0, None])},
    {"signal": st.sampled_from(["nan", "inf", "empty", "short", "3d"]),
     "window": st.sampled_from([0, 1000, 2.5]), "min_distance": st.sampled_from([0, -1, 2.5]),
     "pen": st.sampled_from([NAN, -1.0, "bogus"]), "ridge": st.sampled_from([NAN, -1.0]),
     "random_state": COMMON_BAD["random_state"]}))  # fmt: skip
def test_detector(drawn):
    kw, culprit = drawn
    rng = np.random.default_rng(0)
    signal = np.concatenate([rng.normal(0, 1, 40), rng.normal(3, 1, 40)])
    signal = {
        "nan": np.where(np.arange(80) == 20, NAN, signal),
        "inf": np.where(np.arange(80) == 0, INF, signal),
        "empty": signal[:0],
        "short": signal[:2],
        "3d": signal.reshape(2, 40, 1),
    }.get(kw["signal"], signal)
    params = {k: v for k, v in kw.items() if k != "signal"}
    stop = {} if kw["pen"] is not None else {"n_bkps": 1}

    def call():
        return LatentSDEChangeDetector(epochs=1, hidden=4, latent_dim=2, **params) \
            .fit(signal).predict(**stop)  # fmt: skip

    def check(bkps):
        assert list(bkps) == sorted(bkps), "breakpoints not sorted"
        assert all(0 < b <= len(signal) for b in bkps), "breakpoint out of range"

    case("LatentSDEChangeDetector", call, _names(culprit), check)


@settings(max_examples=examples(40))
@given(
    n=st.integers(0, 30),
    seed=st.integers(0, 2**16),
    min_distance=st.sampled_from([1, 3, 0, -2, 2.5, NAN, True]),
    stop=st.sampled_from([("pen", 0.5), ("pen", NAN), ("pen", -INF), ("n_bkps", 2),
                          ("n_bkps", 0), ("n_bkps", -1), ("n_bkps", 1.5)]),
)  # fmt: skip
def test_pick_peaks(n, seed, min_distance, stop):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    score[rng.random(n) < 0.2] = NAN

    def call():
        return pick_peaks(score, min_distance, **{stop[0]: stop[1]})

    def check(peaks):
        assert peaks == sorted(peaks) and all(0 <= p < n for p in peaks), "bad indices"
        assert all(not np.isnan(score[p]) for p in peaks), "a NaN score was picked"
        assert all(np.diff(peaks) >= min_distance), "too close"
        if stop[0] == "n_bkps":
            assert len(peaks) <= stop[1], "more peaks than n_bkps"
        else:
            assert all(score[p] > stop[1] for p in peaks), "a peak at or below pen"

    case("pick_peaks", call, ("score", "min_distance", "pen", "n_bkps"), check)


# ------------------------------------------------------------------------- save and load
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 5, 1))
    y = np.arange(8) % 2
    model = SDEClassifier(epochs=1, hidden=4, verbose=False).fit(X, y)
    folder = model.save(tmp_path_factory.mktemp("saved") / "model")
    return folder, X, model.predict_proba(X)


@settings(max_examples=examples(40))
@given(
    mutation=st.sampled_from(["flip", "flip", "truncate", "empty", "pickle", "json_text",
                              "json_list", "json_key", "json_fitted", "missing", "none"]),
    where=st.floats(0.0, 1.0),
    bit=st.integers(0, 7),
)  # fmt: skip
def test_load(saved, tmp_path_factory, mutation, where, bit):
    import json
    import shutil

    folder, X, proba = saved
    work = tmp_path_factory.mktemp("load") / "model"
    shutil.copytree(folder, work)
    weights, config = work / "weights.safetensors", work / "config.json"
    marker = work.parent / "payload-ran"
    raw = weights.read_bytes()
    if mutation == "flip":
        i = int(where * (len(raw) - 1))
        weights.write_bytes(raw[:i] + bytes([raw[i] ^ (1 << bit)]) + raw[i + 1 :])
    elif mutation == "truncate":
        weights.write_bytes(raw[: int(where * len(raw))])
    elif mutation == "empty":
        weights.write_bytes(b"")
    elif mutation == "pickle":
        weights.write_bytes(pickle.dumps(_Payload(str(marker))))
    elif mutation == "missing":
        os.remove(weights)
    elif mutation.startswith("json"):
        cfg = json.loads(config.read_text())
        if mutation == "json_text":
            config.write_text(config.read_text()[: int(where * len(config.read_text()))])
        elif mutation == "json_list":
            config.write_text("[1, 2]")
        elif mutation == "json_key":
            cfg.pop(sorted(cfg)[int(where * (len(cfg) - 1))])
            config.write_text(json.dumps(cfg))
        else:
            cfg["fitted"]["predict"] = 1
            config.write_text(json.dumps(cfg))

    def call():
        model = SDEClassifier.load(work)
        return model.predict_proba(X)

    def check(p):
        assert np.array_equal(p, proba), "a changed file loaded and predicts differently"

    names = (str(work), "weights.safetensors", "config.json")
    case("load", call, names, check, marker=marker, allowed=(FileNotFoundError,))


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@settings(max_examples=examples(30))
@given(drawn=sweep(
    {"epochs": st.sampled_from([2, 3]), "lr": st.sampled_from([1e-2, 1e-3]),
     "batch_size": st.sampled_from([None, 4]), "patience": st.sampled_from([None, 1, 5]),
     "loss": st.just(None)},
    {"epochs": st.sampled_from([0, -1, 1.5]), "lr": st.sampled_from([0.0, NAN, -1.0]),
     "batch_size": st.sampled_from([0, 3.5]), "patience": st.sampled_from([-1, 1.5]),
     "loss": st.sampled_from([0, 3, "val"])}))  # fmt: skip
def test_train_fit(drawn):
    kw, culprit = drawn
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    x = torch.randn(16, 2)
    y = x.sum(1, keepdim=True)
    calls = {"train": 0}
    bad_at = kw["loss"]

    def loss_fn(m, batch):
        xb, yb = batch
        loss = ((m(xb) - yb) ** 2).mean()
        if m.training:
            calls["train"] += 1
            if bad_at not in (None, "val") and calls["train"] > bad_at:
                return loss * NAN
        elif bad_at == "val":
            return loss * NAN
        return loss

    params = {k: v for k, v in kw.items() if k != "loss"}

    def call():
        return train.fit(model, loss_fn, (x, y), (x, y), verbose=False, **params)

    def check(history):
        weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        assert bool(torch.isfinite(weights).all()), "diverged weights kept"
        assert not model.training, "the model was left in train mode"
        assert len(history.train_loss) >= 1, "an empty history"

    case("train.fit", call, _names(culprit), check)
