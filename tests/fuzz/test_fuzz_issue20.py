"""Fuzzing issue 20's entry points: the CRPS scores, the forecaster's ``seasonal_period``,
``posterior`` and ``polish`` and the change detector's ruptures searches, every argument drawn
from good and bad values."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralsde.estimators import LatentSDEChangeDetector, LatentSDEForecaster
from neuralsde.metrics import crps_gaussian, crps_samples

from .harness import case, examples, sweep

NAN = float("nan")
RNG = np.random.default_rng(0)
SAMPLES = {"good": RNG.normal(size=(50, 3)), "one": RNG.normal(size=(1, 3)),
           "nan": np.full((50, 3), NAN), "wide": RNG.normal(size=(50, 4)),
           "empty": np.zeros((0, 3)), "text": "samples"}  # fmt: skip
Y = {"good": np.zeros(3), "nan": np.array([0.0, NAN, 1.0]), "inf": np.array([np.inf, 0, 0])}

CRPS_GOOD = {"samples": st.sampled_from(["good", "one"]), "y": st.just("good"),
             "std": st.sampled_from([0.5, 2.0])}  # fmt: skip
CRPS_BAD = {"samples": st.sampled_from(["nan", "wide", "empty", "text"]),
            "y": st.sampled_from(["nan", "inf"]),
            "std": st.sampled_from([0.0, -1.0, NAN])}  # fmt: skip


@settings(max_examples=examples(30))
@given(drawn=sweep(CRPS_GOOD, CRPS_BAD))
def test_crps(drawn):
    kw, culprit = drawn

    def call():
        s = SAMPLES[kw["samples"]]
        return crps_samples(s, Y[kw["y"]]), crps_gaussian(0.0, kw["std"], Y[kw["y"]])

    def check(out):
        a, b = out
        assert a.shape == (3,) and (a >= -1e-12).all() and np.isfinite(a).all()
        assert (b > 0).all() and np.isfinite(b).all()

    names = None if culprit is None else (culprit,)
    case("metrics.crps", call, names, check, info=(kw, culprit))


T = np.arange(40.0)
SERIES = xr.Dataset({"values": (("series", "time", "channel"),
                                np.sin(2 * np.pi * T / 12)[None, :, None])},
                    coords={"time": T})  # fmt: skip
SEASON_GOOD = {"seasonal_period": st.sampled_from([None, 12.0, 7]),
               "harmonics": st.sampled_from([1, 3])}  # fmt: skip
SEASON_BAD = {"seasonal_period": st.sampled_from([0.0, -12.0, NAN, "12D", True]),
              "harmonics": st.sampled_from([0, -1, 2.5, "3", 30])}  # fmt: skip


@settings(max_examples=examples(20), deadline=None)
@given(drawn=sweep(SEASON_GOOD, SEASON_BAD))
def test_forecaster_seasonal_period(drawn):
    kw, culprit = drawn

    def call():
        m = LatentSDEForecaster(latent_dim=1, context_dim=2, hidden=4, epochs=1, verbose=False,
                                **kw).fit(SERIES)  # fmt: skip
        return m.predict(SERIES, times=[41.0, 45.0], n_samples=3)

    def check(out):
        v = out["samples"].values
        assert v.shape == (3, 1, 2, 1) and np.isfinite(v).all()

    names = None if culprit is None else (culprit,)
    case("LatentSDEForecaster(seasonal_period)", call, names, check, info=(kw, culprit))


X = np.concatenate([RNG.normal(0, 1, 120), RNG.normal(0, 3, 80)])
DETECTOR = LatentSDEChangeDetector(window=30, random_state=0).fit(X)
SEARCH_GOOD = {"search": st.sampled_from(["peaks", "binseg", "bottomup", "pelt"]),
               "pen": st.sampled_from([None, 5.0]), "n_bkps": st.just(None)}  # fmt: skip
SEARCH_BAD = {"search": st.sampled_from(["dynp", None, 3]),
              "pen": st.sampled_from([NAN, math.inf]),
              "n_bkps": st.sampled_from([-1, 2.5, 1000, "2"])}  # fmt: skip


@settings(max_examples=examples(20), deadline=None)
@given(drawn=sweep(SEARCH_GOOD, SEARCH_BAD))
def test_detector_search(drawn):
    kw, culprit = drawn
    if culprit == "n_bkps":
        kw["pen"] = None

    def call():
        return DETECTOR.predict(**kw)

    def check(bkps):
        assert bkps[-1] == 200 and bkps == sorted(bkps) and len(set(bkps)) == len(bkps)

    names = None if culprit is None else (culprit,)
    if culprit == "n_bkps" and kw["search"] == "pelt":
        names = ("n_bkps", "search")
    case("LatentSDEChangeDetector.predict(search)", call, names, check, info=(kw, culprit))


GAPPY = SERIES.copy(deep=True)
GAPPY["values"][0, ::3, 0] = NAN
POSTERIOR_GOOD = {"posterior": st.sampled_from([None, "neural", "backward_filter"]),
                  "noise": st.sampled_from(["brownian", "fractional"]),
                  "polish": st.sampled_from(["auto", 0, 2])}  # fmt: skip
POSTERIOR_BAD = {"posterior": st.sampled_from(["smoother", 1, ""]),
                 "noise": st.sampled_from(["levy", 0.5]),
                 "polish": st.sampled_from([-1, "yes", 2.5, True])}  # fmt: skip


@settings(max_examples=examples(20), deadline=None)
@given(drawn=sweep(POSTERIOR_GOOD, POSTERIOR_BAD))
def test_forecaster_posterior(drawn):
    kw, culprit = drawn

    def call():
        m = LatentSDEForecaster(latent_dim=1, context_dim=2, hidden=4, epochs=1, dt=0.02,
                                verbose=False, **kw).fit(GAPPY)  # fmt: skip
        return m.predict(GAPPY, times=[10.5, 41.0], n_samples=3), m.elbo(GAPPY, n_samples=2)

    def check(out):
        pred, elbo = out
        v = pred["samples"].values
        assert v.shape == (3, 1, 2, 1) and np.isfinite(v).all() and math.isfinite(elbo)

    names = None if culprit is None else (culprit,)
    case("LatentSDEForecaster(posterior)", call, names, check, info=(kw, culprit))


DETECTOR_SEASON_BAD = {"seasonal_period": st.sampled_from([0.0, -12.0, NAN, True, "x"]),
                       "harmonics": st.sampled_from([0, -1, 2.5, 500])}  # fmt: skip


@settings(max_examples=examples(20), deadline=None)
@given(drawn=sweep(SEASON_GOOD, DETECTOR_SEASON_BAD))
def test_detector_seasonal_period(drawn):
    kw, culprit = drawn
    if culprit == "harmonics" and kw["seasonal_period"] is None:
        kw["seasonal_period"] = 12.0

    def call():
        return LatentSDEChangeDetector(window=30, random_state=0, **kw).fit(X).predict()

    def check(bkps):
        assert bkps[-1] == 200 and bkps == sorted(bkps)

    names = None if culprit is None else (culprit,)
    case("LatentSDEChangeDetector(seasonal_period)", call, names, check, info=(kw, culprit))
