"""Regression tests for issue 19's reported cases: each reproduces the original case, which
used to hang, lose data silently or fail obscurely."""

import multiprocessing as mp

import numpy as np
import pytest
import torch

from neuralsde import SDE, solve
from neuralsde.changepoint.peaks import pick_peaks


class _Decay(SDE):
    noise_type, sde_type = "diagonal", "ito"

    def f(self, t, y):
        return -y

    def g(self, t, y):
        return torch.ones_like(y)


def _empty_batch_adaptive(queue):
    try:
        solve(_Decay(), torch.ones(0, 1), torch.tensor([0.0, 1.0]), rtol=1e-3)
        queue.put("returned")
    except ValueError as e:
        queue.put(str(e))


def _in_child(target, limit: float, what: str):
    """Run ``target(queue)`` in a child process under a time limit (a hang then fails the
    test, not the suite); return what it put on the queue."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue,))
    proc.start()
    proc.join(limit)
    if proc.is_alive():
        proc.kill()
        pytest.fail(f"{what} still hangs")
    return queue.get(timeout=5)


def test_an_empty_batch_is_refused_instead_of_hanging():
    """solve with rtol/atol on an empty batch used to hang."""
    message = _in_child(_empty_batch_adaptive, 120, "solve on an empty batch with rtol/atol")
    assert "y0 must hold at least one series" in message


@pytest.mark.parametrize("dt", [1e-9, 1e-7])
def test_max_steps_is_checked_before_a_fixed_grid_is_allocated(dt):
    with pytest.raises(ValueError, match="more than max_steps=1000000"):
        solve(_Decay(), torch.ones(2, 1), torch.tensor([0.0, 1.0]), dt=dt)


def test_solve_names_a_generator_of_the_wrong_type():
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None; got int"):
        solve(_Decay(), torch.ones(2, 1), torch.tensor([0.0, 1.0]), generator=5)


@pytest.mark.parametrize("min_distance", [0, -2, 2.5, True])
def test_pick_peaks_refuses_a_min_distance_that_would_loop_or_be_truncated(min_distance):
    score = np.array([0.0, 1.0, 5.0, 1.0, 0.0, 3.0, 0.0])
    with pytest.raises(ValueError, match="min_distance must be an integer >= 1"):
        pick_peaks(score, min_distance, pen=0.5)


def test_pick_peaks_refuses_a_nan_penalty():
    with pytest.raises(ValueError, match="pen must be a finite number; got nan"):
        pick_peaks(np.array([0.0, 2.0, 0.0]), 1, pen=float("nan"))


@pytest.mark.parametrize("kw,match", [
    ({"min_distance": 0}, "min_distance must be an integer >= 1 or None; got 0"),
    ({"min_distance": 2.5}, "min_distance must be an integer >= 1 or None; got 2.5"),
    ({"ridge": float("nan")}, "ridge must be a finite number >= 0; got nan"),
])  # fmt: skip
def test_the_detector_checks_min_distance_and_ridge_at_fit(kw, match):
    from neuralsde.estimators import LatentSDEChangeDetector

    signal = np.random.default_rng(0).normal(size=(60, 1))
    with pytest.raises(ValueError, match=match):
        LatentSDEChangeDetector(window=10, epochs=0, **kw).fit(signal)


class _OU(torch.nn.Module):
    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, nan=False):
        super().__init__()
        self.a, self.nan = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64)), nan

    def f(self, t, y):
        return -self.a * y * (float("nan") if self.nan else 1.0)

    def g(self, t, y):
        return 0.3 * torch.ones_like(y)


def _backsolve_spans(queue):
    rng = np.random.default_rng(0)
    spans = [(0.45, 0.56)] + [(a, a + w) for a, w in rng.uniform([0, 0.01], [1, 0.3], (9, 2))]
    for k, (a, b) in enumerate(spans):
        sde = _OU()
        ts = torch.tensor([a, b], dtype=torch.float64)
        y = solve(sde, torch.ones(3, 2, dtype=torch.float64), ts, adjoint="backsolve",
                  generator=torch.Generator().manual_seed(k))  # fmt: skip
        y[-1].sum().backward()
        assert torch.isfinite(sde.a.grad)
    queue.put("done")


def test_backsolve_on_short_float64_spans_does_not_hang():
    """ts = [0.45, 0.56] in float64 hung in torchsde's BrownianInterval: one query over a
    rounding-sized last step reshaped its dependency tree down to that size."""
    assert _in_child(_backsolve_spans, 240, "backsolve on a short float64 span") == "done"


def test_backsolve_output_is_checked_for_divergence():
    from neuralsde.core.loop import DivergenceError

    with pytest.raises(DivergenceError):
        solve(_OU(nan=True), torch.ones(2, 1, dtype=torch.float64),
              torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64), adjoint="backsolve")  # fmt: skip


def _saved_classifier(tmp_path):
    from neuralsde.estimators import SDEClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 10, 2)).astype(np.float32)
    y = np.array([0, 1] * 8)
    clf = SDEClassifier(epochs=1, hidden=8, random_state=0, verbose=False).fit(X, y)
    return clf, clf.save(tmp_path / "clf"), X


def test_a_flipped_byte_in_the_weights_is_refused_on_load(tmp_path):
    """A one-byte flip inside the weights used to load silently (a bias changed by 5e37)."""
    from neuralsde.estimators import SDEClassifier

    _, folder, _ = _saved_classifier(tmp_path)
    path = folder / "weights.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(
        ValueError, match="corrupted or truncated: it does not match the SHA-256 recorded"
    ):
        SDEClassifier.load(folder)


def test_a_fitted_entry_cannot_overwrite_methods(tmp_path):
    import json

    from neuralsde.estimators import SDEClassifier

    clf, folder, X = _saved_classifier(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["fitted"]["predict"] = "boom"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"'fitted' may hold only .* got \['predict'\]"):
        SDEClassifier.load(folder)


def test_a_saved_classifier_round_trips(tmp_path):
    from neuralsde.estimators import SDEClassifier

    clf, folder, X = _saved_classifier(tmp_path)
    again = SDEClassifier.load(folder)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def _series(n=16):
    return np.random.default_rng(0).normal(size=(n, 10, 2)).astype(np.float32)


@pytest.mark.parametrize("y,exc,match", [
    (np.array([0.0, 1.0, np.nan, 1.0] * 4), ValueError, "y holds missing labels"),
    (np.array([0, 1, None, 1] * 4, dtype=object), ValueError, "y holds missing labels"),
    (np.array([0, "a", 0, "a"] * 4, dtype=object), TypeError, "y mixes label types"),
])  # fmt: skip
def test_missing_or_mixed_labels_are_refused_not_made_a_class(y, exc, match):
    """NaN labels used to become a class: classes_ = [0., 1., nan]."""
    from neuralsde.estimators import SDEClassifier

    with pytest.raises(exc, match=match):
        SDEClassifier(epochs=1, hidden=8, verbose=False).fit(_series(), y)


def test_unseen_eval_set_labels_are_refused_not_remapped():
    from neuralsde.estimators import SDEClassifier

    y = np.array([0, 1] * 8)
    with pytest.raises(
        ValueError, match=r"eval_set y holds labels the training labels y do not: \[7\]"
    ):
        SDEClassifier(epochs=1, hidden=8, verbose=False).fit(
            _series(), y, eval_set=(_series(4), np.array([0, 1, 7, 0]))
        )


def test_random_state_none_means_the_same_split_as_the_regressors_default():
    """random_state=None split at random in the classifier and meant 0 in the regressor."""
    from neuralsde.estimators import SDEClassifier

    y = np.array([0, 1] * 8)
    a = SDEClassifier(epochs=1, hidden=8, verbose=False, random_state=None).fit(_series(), y)
    b = SDEClassifier(epochs=1, hidden=8, verbose=False, random_state=None).fit(_series(), y)
    np.testing.assert_array_equal(a.predict_proba(_series()), b.predict_proba(_series()))


def test_all_nan_regression_targets_are_refused():
    """They gave all-NaN predictions without an error."""
    from neuralsde.estimators import SDERegressor

    X = _series(8)
    with pytest.raises(ValueError, match=r"y holds no target \(all NaN\)"):
        SDERegressor(epochs=1, hidden=8, verbose=False).fit(X, np.full(X.shape[:2], np.nan))


def test_inputs_too_large_to_standardise_are_refused():
    """X * 1e300 gave value_std_ = inf and silently zeroed every input."""
    from neuralsde.estimators import SDEClassifier

    with pytest.raises(ValueError, match="too large to standardise"):
        SDEClassifier(epochs=1, hidden=8, verbose=False).fit(
            _series().astype(np.float64) * 1e300, np.array([0, 1] * 8)
        )


def test_an_interrupted_fit_leaves_the_estimator_unfitted():
    """A KeyboardInterrupt during fit left model_ with partial weights, no history_, and the
    module in train mode (28 of 28 cases). The documented choice: the estimator is unfitted."""
    from sklearn.exceptions import NotFittedError

    from neuralsde.estimators import SDEClassifier

    def interrupt(epoch, model, history):
        if epoch == 1:
            raise KeyboardInterrupt
        return False

    clf = SDEClassifier(epochs=5, hidden=8, verbose=False)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(_series(), np.array([0, 1] * 8), callback=interrupt)
    assert not [k for k in vars(clf) if k.endswith("_") and not k.startswith("_")]
    with pytest.raises(NotFittedError):
        clf.predict(_series())


def test_a_fit_that_diverges_at_once_raises_and_leaves_the_estimator_unfitted():
    """Divergence at the first step returned normally with an untrained model."""
    from neuralsde.estimators import SDERegressor
    from neuralsde.train import TrainingDiverged

    reg = SDERegressor(epochs=3, hidden=8, verbose=False, lr=1e30)
    X = _series(8)
    with pytest.raises(TrainingDiverged, match="at epoch 0"):
        reg.fit(X)
    assert not hasattr(reg, "model_")


def test_a_validation_fraction_that_leaves_no_training_series_is_named():
    """validation_fraction=0.99 failed with a message naming batch_size."""
    from neuralsde.estimators import SDEClassifier

    with pytest.raises(ValueError, match=r"validation_fraction=0.99 holds out every training"):
        SDEClassifier(epochs=1, hidden=8, verbose=False, validation_fraction=0.99).fit(
            _series(), np.array([0, 1] * 8)
        )


@pytest.mark.parametrize("n_samples", [0, -3, 2.5, True])
def test_forecaster_predict_names_a_bad_n_samples(n_samples):
    from neuralsde.datasets import simulate_ou
    from neuralsde.estimators import LatentSDEForecaster

    data = simulate_ou(n_series=4, n_times=12, seed=0)
    model = LatentSDEForecaster(epochs=1, verbose=False).fit(data)
    with pytest.raises(ValueError, match=f"n_samples must be an integer >= 1; got {n_samples!r}"):
        model.predict(data, n_samples=n_samples)


# ------------------------------------------------------------------ the data layer (item 2)
def test_float32_values_keep_float64_times_and_every_value():
    """float32 values dragged the times to float32: two epoch-second stamps merged and an
    observed value was lost."""
    from neuralsde.data import IrregularBatch

    t, v = [[1.6e9, 1.6e9 + 10], [1.6e9 + 20]], [np.array([1.0, 2.0], np.float32),
                                                 np.array([3.0], np.float32)]  # fmt: skip
    b = IrregularBatch.from_arrays(t, v)
    assert b.times.dtype == torch.float64 and b.values.dtype == torch.float32
    da = b.to_xarray()
    assert da["time"].values.tolist() == [1.6e9, 1.6e9 + 10, 1.6e9 + 20]
    assert np.nansum(da.values) == 6.0 and int(np.isfinite(da.values).sum()) == 3
    assert b.to(torch.float32).times.dtype == torch.float64


def test_hourly_stamps_over_three_years_come_back_exactly_with_float32_values():
    """They shifted by up to 8 s."""
    import pandas as pd

    from neuralsde.data import IrregularBatch

    stamps = pd.date_range("2020-01-01", periods=3 * 365 * 24, freq="h")
    s = pd.Series(np.arange(len(stamps), dtype=np.float32), index=stamps)
    back = IrregularBatch.coerce(s).to_xarray()
    assert np.array_equal(back["time"].values, stamps.values)
    assert np.array_equal(back.values.reshape(-1), s.values)


def test_nanosecond_stamps_spanning_years_are_refused_with_a_unit_that_holds_them():
    """Offsets beyond 2**53 ns lost their last digits silently."""
    from neuralsde.data import IrregularBatch

    stamps = np.array(["2020-01-01T00:00:00.000000001", "2023-01-01"], dtype="datetime64[ns]")
    with pytest.raises(ValueError, match=r"times spans .* ns .* beyond 2\*\*53.*time_unit='us'"):
        IrregularBatch.from_arrays(stamps, [1.0, 2.0])
    b = IrregularBatch.from_arrays(stamps, [1.0, 2.0], time_unit="us")  # rounding, chosen
    assert b.datetimes()[0, 1] == stamps[1]


def test_integers_beyond_2_53_are_refused_not_rounded():
    from neuralsde.data import IrregularBatch

    with pytest.raises(ValueError, match=r"values\[0\] holds the integer 9007199254740993"):
        IrregularBatch.from_arrays([0.0, 1.0], np.array([1, 2**53 + 1], dtype=np.int64))
    b = IrregularBatch.from_arrays([0.0, 1.0], np.array([1, 2**53], dtype=np.int64))
    assert b.values[0, 1, 0].item() == 2.0**53


def test_a_narrower_dtype_that_overflows_is_refused():
    """dtype=torch.float32 turned 1e300 into inf."""
    from neuralsde.data import IrregularBatch

    with pytest.raises(ValueError, match=r"values\[0\] holds 1e\+300 .* beyond the range of"):
        IrregularBatch.from_arrays([0.0, 1.0], [1.0, 1e300], dtype=torch.float32)
    b = IrregularBatch.from_arrays([0.0, 1.0], [1.0, 1e300])
    with pytest.raises(ValueError, match="values holds 1e\\+300"):
        b.to(torch.float32)


# ------------------------------------------------------------------ save and load (item 4)
@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.bool_, "<U3"])
def test_label_dtypes_survive_save_and_load(tmp_path, dtype):
    """int8 labels came back as int64."""
    from neuralsde.estimators import SDEClassifier

    X = _series()
    y = (np.arange(16) % 2).astype(dtype) if dtype != "<U3" else np.array(["ab", "cde"] * 8)
    clf = SDEClassifier(epochs=1, hidden=8, verbose=False).fit(X, y)
    again = SDEClassifier.load(clf.save(tmp_path / "clf"))
    assert clf.classes_.dtype == again.classes_.dtype == np.asarray(y).dtype
    assert again.predict(X).dtype == np.asarray(y).dtype


def test_a_config_with_missing_pieces_is_named_on_load(tmp_path):
    import json

    from neuralsde.estimators import SDEClassifier

    _, folder, _ = _saved_classifier(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    del config["fitted"]["n_channels_"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config.json: the fitted state is incomplete"):
        SDEClassifier.load(folder)
    del config["params"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config.json has no 'params' object"):
        SDEClassifier.load(folder)


# ------------------------------------------------------------------ obscure errors (item 6)
class _Changing(SDE):
    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, trouble):
        super().__init__()
        self.trouble = trouble

    def f(self, t, y):
        return torch.cat([-y, -y], -1) if self.trouble == "shape" and float(t) > 0 else -y

    def g(self, t, y):
        g = torch.ones_like(y)
        return g.float() if self.trouble == "dtype" else g


def test_drift_and_diffusion_of_another_dtype_are_named():
    y0 = torch.ones(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"g\(t, y\) returned dtype torch.float32 for y0 of"):
        solve(_Changing("dtype"), y0, torch.tensor([0.0, 1.0], dtype=torch.float64), dt=0.1)


def test_a_state_that_changes_shape_after_t0_is_named():
    y0 = torch.ones(3, 2)
    with pytest.raises(ValueError, match=r"drift f\(t, y\) or the diffusion g\(t, y\) returned"):
        solve(_Changing("shape"), y0, torch.tensor([0.0, 1.0]), dt=0.1)


@pytest.mark.parametrize("device,exc,match", [
    ("cuda", ValueError, "this machine has no cuda device"),
    ("bogus", ValueError, "device must name a device such as 'cpu'"),
    (5, TypeError, "device must be a string"),
    ("meta", ValueError, "device must be one of"),
])  # fmt: skip
def test_a_device_this_machine_lacks_is_named(device, exc, match):
    from neuralsde.estimators import SDEClassifier

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(exc, match=match):
        SDEClassifier(device=device, epochs=1, verbose=False).fit(_series(), np.arange(16) % 2)


@pytest.mark.parametrize("cls", ["SDEClassifier", "SDERegressor"])
def test_series_of_length_one_are_named_not_a_torchcde_error(cls):
    from neuralsde import estimators

    X = np.random.default_rng(0).normal(size=(6, 1, 1))
    est = getattr(estimators, cls)(epochs=1, verbose=False)
    with pytest.raises(ValueError, match="X holds a single distinct time stamp"):
        est.fit(X, np.arange(6) % 2) if cls == "SDEClassifier" else est.fit(X)


def test_an_ill_conditioned_fractional_noise_is_refused_with_the_largest_k():
    """K=50 failed in a Cholesky factorisation."""
    from neuralsde.noise import MarkovFBM

    with pytest.raises(ValueError, match=r"K=50 with gamma_max=20 .* use K <= 6"):
        MarkovFBM(K=50, gamma_max=20.0)
    MarkovFBM(K=6, gamma_max=20.0)  # the largest accepted one works


def test_pick_peaks_on_an_empty_score_and_bad_n_bkps():
    assert pick_peaks(np.array([]), 1, pen=0.0) == []
    with pytest.raises(ValueError, match="n_bkps must be an integer >= 0; got 1.5"):
        pick_peaks(np.array([1.0, 2.0]), 1, n_bkps=1.5)


@pytest.mark.parametrize("kw,exc,match", [
    ({"lr": -1.0}, ValueError, "lr must be positive and finite; got -1.0"),
    ({"lr": float("nan")}, ValueError, "lr must be positive and finite; got nan"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be a positive integer or None"),
    ({"epochs": True}, TypeError, "epochs must be a positive integer"),
])  # fmt: skip
def test_train_fit_names_a_bad_argument(kw, exc, match):
    """lr=-1 gave torch's 'Invalid learning rate'."""
    from neuralsde import train

    model = torch.nn.Linear(1, 1)
    x = torch.ones(4, 1)
    with pytest.raises(exc, match=match):
        train.fit(model, lambda m, b: m(b).pow(2).mean(), x, verbose=False, **kw)


def test_an_adaptive_solve_past_max_steps_raises_step_limit_error():
    from neuralsde.core import StepLimitError

    with pytest.raises(StepLimitError, match=r"max_steps=50 steps at t="):
        solve(_Decay(), torch.ones(2, 1), torch.tensor([0.0, 10.0]), rtol=1e-8, atol=1e-8,
              max_steps=50, generator=torch.Generator().manual_seed(0))  # fmt: skip


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_diffusion_checkpoint_that_fails_weights_only_is_named_and_never_run(tmp_path):
    """torch's own message suggested turning the protection off and did not name the file."""
    import pickle

    from neuralsde.diffusion import VPSDE, ScoreMLP, ScoreModel
    from neuralsde.diffusion.checkpoint import load_checkpoint, save_checkpoint

    marker = tmp_path / "payload-ran"
    good = tmp_path / "good.pt"
    save_checkpoint(good, ScoreModel(ScoreMLP(2, hidden=8), VPSDE()), {"data": "toy"})
    raw = good.read_bytes()
    cases = {"payload.pt": pickle.dumps(_Payload(str(marker))), "empty.pt": b"",
             "truncated.pt": raw[: len(raw) // 2]}  # fmt: skip
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=rf"{name} cannot be loaded as a neuralsde"):
            load_checkpoint(tmp_path / name)
    assert not marker.exists(), "the payload ran"
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
