"""Regression tests for issue 19's reported cases that this stop fixed (the rest of the issue
is open): each reproduces the original case, which used to hang or fail obscurely."""

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
