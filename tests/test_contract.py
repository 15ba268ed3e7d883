"""The estimator contract: one input gate, the same results from every input form, save/load
without pickles, and clear errors for corrupted, truncated and foreign files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.base import clone

from neuralsde.data import IrregularBatch
from neuralsde.estimators import (
    LatentSDEChangeDetector,
    LatentSDEForecaster,
    SDEClassifier,
    SDERegressor,
)

ROOT = Path(__file__).resolve().parents[1]
B, L, NAMES = 8, 9, ["a", "b"]
SMALL_SDE = {"hidden": 6, "epochs": 2, "verbose": False}
SMALL_LATENT = {"latent_dim": 2, "context_dim": 4, "hidden": 8, "epochs": 2, "batch_size": 4,
                "verbose": False}  # fmt: skip
SMALL_DETECTOR = {"window": 20, "features": 0, "epochs": 0}


def _panel(seed=0):
    """``(B, L, 2)`` values with interior gaps (no series ends early), labels, series ids."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, L, 2))
    y = np.repeat([0, 1], B // 2)
    x[y == 1] += 1.0
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 0, :] = rng.normal(size=(B, 2))  # every series and channel observed at the start
    x[:, -1, :] = rng.normal(size=(B, 2))
    return x, y


def _panel_forms(x, y):
    """The same panel in each multi-series input form (channels named where the form can)."""
    t = np.arange(L, dtype=np.float64)
    ids = [f"s{i}" for i in range(B)]
    long = pd.DataFrame(
        {
            "id": np.repeat(ids, L),
            "time": np.tile(t, B),
            "a": x[..., 0].ravel(),
            "b": x[..., 1].ravel(),
        }  # fmt: skip
    )
    da = xr.DataArray(x, dims=("series", "time", "channel"),
                      coords={"series": ids, "time": t, "channel": NAMES})  # fmt: skip
    return {
        "array": x,
        "ragged list": [x[i] for i in range(B)],
        "list of pairs": [(t, x[i]) for i in range(B)],
        "long DataFrame": long,
        "DataArray": da,
        "Dataset": xr.Dataset(
            {"a": da.sel(channel="a", drop=True), "b": da.sel(channel="b", drop=True)}
        ),  # fmt: skip
        "IrregularBatch": IrregularBatch.from_arrays([t] * B, x, channels=NAMES),
    }


def _one_series(seed=0, n=120):
    rng = np.random.default_rng(seed)
    v = np.r_[rng.normal(0, 1, n // 2), rng.normal(0, 3, n - n // 2)]
    v[rng.random(n) < 0.1] = np.nan
    v[0] = 0.1
    return v


def _series_forms(v):
    t = np.arange(len(v), dtype=np.float64)
    return {
        "array": v,
        "column array": v[:, None],
        "pandas Series": pd.Series(v, index=t, name="flow"),
        "wide DataFrame": pd.DataFrame({"flow": v}, index=t),
        "long DataFrame": pd.DataFrame({"time": t, "flow": v}),
        "DataArray": xr.DataArray(v, dims=("time",), coords={"time": t}),
        "IrregularBatch": IrregularBatch.from_arrays(t, v),
    }


PANEL = _panel()
PANEL_FORMS = _panel_forms(*PANEL)
SERIES = _one_series()
SERIES_FORMS = _series_forms(SERIES)


def _panel_outputs(kind, X, y):
    """The fitted estimator's predictions on the reference (array) form of the data."""
    ref = PANEL[0]
    if kind == "classifier":
        return SDEClassifier(**SMALL_SDE).fit(X, y).predict_proba(ref)
    if kind == "regressor":
        return SDERegressor(**SMALL_SDE).fit(X).predict(ref, times=[1.5, 4.0, 10.0]).values
    model = LatentSDEForecaster(**SMALL_LATENT).fit(X)
    return model.predict(ref, times=[1.5, 4.0, 10.0], n_samples=4)["samples"].values


@pytest.fixture(scope="module")
def panel_reference():
    return {k: _panel_outputs(k, PANEL[0], PANEL[1])
            for k in ("classifier", "regressor", "forecaster")}  # fmt: skip


@pytest.mark.parametrize("form", list(PANEL_FORMS))
@pytest.mark.parametrize("kind", ["classifier", "regressor", "forecaster"])
def test_every_input_form_gives_the_same_fit(kind, form, panel_reference):
    out = _panel_outputs(kind, PANEL_FORMS[form], PANEL[1])
    np.testing.assert_array_equal(out, panel_reference[kind])


@pytest.mark.parametrize("form", list(SERIES_FORMS))
def test_every_single_series_form_gives_the_same_change_point_score(form):
    ref = LatentSDEChangeDetector(**SMALL_DETECTOR).fit(SERIES).score_.values
    out = LatentSDEChangeDetector(**SMALL_DETECTOR).fit(SERIES_FORMS[form]).score_.values
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("form", ["pandas Series", "wide DataFrame", "DataArray"])
def test_the_forecaster_takes_one_series_in_any_single_series_form(form):
    ref = LatentSDEForecaster(**SMALL_LATENT).fit(SERIES_FORMS["IrregularBatch"])
    out = LatentSDEForecaster(**SMALL_LATENT).fit(SERIES_FORMS[form])
    a = ref.predict(SERIES_FORMS["IrregularBatch"], times=[3.0, 130.0], n_samples=4)
    b = out.predict(SERIES_FORMS[form], times=[3.0, 130.0], n_samples=4)
    np.testing.assert_array_equal(a["samples"].values, b["samples"].values)


# ------------------------------------------------------------------------------ save / load
def _fitted_estimators():
    x, y = PANEL
    return {
        "SDEClassifier": (SDEClassifier(**SMALL_SDE).fit(x, y), lambda m: m.predict_proba(x)),
        "SDERegressor": (SDERegressor(**SMALL_SDE).fit(x),
                         lambda m: m.predict(x, times=[0.5, 3.0, 12.0]).values),
        "LatentSDEForecaster": (LatentSDEForecaster(**SMALL_LATENT).fit(x),
                                lambda m: m.predict(x, times=[2.0, 11.0], n_samples=5)[
                                    "samples"].values),
        "LatentSDEChangeDetector": (LatentSDEChangeDetector(**SMALL_DETECTOR).fit(SERIES),
                                    lambda m: np.r_[m.predict(), m.predict(n_bkps=2),
                                                    m.default_pen()]),
    }  # fmt: skip


FITTED = _fitted_estimators()
_PICKLE = re.compile(rb"\x80[\x02-\x05]")  # pickle's PROTO opcode and a protocol number


@pytest.mark.parametrize("name", list(FITTED))
def test_save_then_load_gives_bit_identical_predictions_and_no_pickle(name, tmp_path):
    est, predict = FITTED[name]
    folder = est.save(tmp_path / name)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.safetensors"]
    for p in folder.iterdir():
        data = p.read_bytes()
        assert not data.startswith(b"PK"), f"{p.name} is a zip (torch.save) archive"
        assert not _PICKLE.match(data[:2]), f"{p.name} starts with a pickle header"
    config = json.loads((folder / "config.json").read_text())
    assert config["schema"] == 1 and config["estimator"] == name
    loaded = type(est).load(folder)
    np.testing.assert_array_equal(predict(loaded), predict(est))
    assert loaded.get_params() == clone(est).get_params() or name == "LatentSDEForecaster"


def test_every_torch_load_in_the_package_is_weights_only():
    calls = []
    for path in (ROOT / "neuralsde").rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            call = text[m.start() : text.find(")", m.start()) + 1]
            calls.append((path.name, call))
    assert all("weights_only=True" in c for _, c in calls), calls


@pytest.fixture()
def saved(tmp_path):
    est, _ = FITTED["SDEClassifier"]
    return est.save(tmp_path / "clf")


def test_a_corrupted_config_gives_a_clear_error(saved):
    (saved / "config.json").write_text('{"format": "neuralsde-estimator", "sch')
    with pytest.raises(ValueError, match=r"config.json is corrupted or truncated"):
        SDEClassifier.load(saved)


def test_truncated_or_corrupted_weights_give_a_clear_error(saved):
    weights = saved / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"weights.safetensors is corrupted or truncated"):
        SDEClassifier.load(saved)
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"weights.safetensors is corrupted or truncated"):
        SDEClassifier.load(saved)


def test_another_class_file_and_a_newer_schema_are_refused(saved, tmp_path):
    with pytest.raises(ValueError, match="holds a SDEClassifier, not a LatentSDEForecaster"):
        LatentSDEForecaster.load(saved)
    config = json.loads((saved / "config.json").read_text())
    config["schema"] = 99
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"schema 99, .* reads schema <= 1: upgrade"):
        SDEClassifier.load(saved)
    with pytest.raises(FileNotFoundError, match="holds no saved estimator"):
        SDEClassifier.load(tmp_path / "nothing")


def test_an_unfitted_estimator_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    for est in (SDEClassifier(), LatentSDEForecaster(), LatentSDEChangeDetector()):
        with pytest.raises(NotFittedError):
            est.save(tmp_path / "x")


def test_the_same_mistake_gives_the_same_error_everywhere():
    """A string where series are expected, and a never-observed channel, in every estimator."""
    x, y = PANEL
    gappy = x.copy()
    gappy[..., 1] = np.nan
    fits = {
        "classifier": lambda X: SDEClassifier(**SMALL_SDE).fit(X, y),
        "regressor": lambda X: SDERegressor(**SMALL_SDE).fit(X),
        "forecaster": lambda X: LatentSDEForecaster(**SMALL_LATENT).fit(X),
    }
    for fit in fits.values():
        with pytest.raises(TypeError, match=r"^X must be an IrregularBatch, .* got str$"):
            fit("data.csv")
        with pytest.raises(ValueError, match=r"^X: channel\(s\) \[1\] have no observed value"):
            fit(gappy)
    with pytest.raises(TypeError, match=r"^signal must be an IrregularBatch, .* got str$"):
        LatentSDEChangeDetector().fit("data.csv")


def test_a_refit_on_other_channels_starts_afresh():
    x, y = PANEL
    frame = _panel_forms(x, y)["long DataFrame"]
    clf = SDEClassifier(**SMALL_SDE).fit(frame, y)
    renamed = frame.rename(columns={"a": "u", "b": "v"})
    assert clf.fit(renamed, y).channels_ == ["u", "v"]
    model = LatentSDEForecaster(**SMALL_LATENT).fit(frame)
    assert model.fit(renamed).channels_ == ["u", "v"]
