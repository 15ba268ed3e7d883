"""neuralsde.tune: the search reads the training and validation series only, prunes, refits."""

from dataclasses import replace

import numpy as np
import pytest

from neuralsde.data import IrregularBatch
from neuralsde.estimators import SDEClassifier
from neuralsde.tuning import tune

pytestmark = pytest.mark.usefixtures("one_thread")

SEEN: list[np.ndarray] = []  # every series handed to fit, predict or score, as values


class RecordingClassifier(SDEClassifier):
    """An SDEClassifier that records the series it is given (sklearn's clone keeps the class)."""

    @staticmethod
    def _record(X):
        SEEN.extend(IrregularBatch.coerce(X).values.numpy())

    def fit(self, X, y=None, eval_set=None, callback=None):
        self._record(X)
        if eval_set is not None:
            self._record(eval_set[0])
        return super().fit(X, y, eval_set=eval_set, callback=callback)

    def _logits(self, X, stamps=None):
        self._record(X)
        return super()._logits(X, stamps)


def _splits(n=60, length=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, length, 1)) + y[:, None, None]
    batch = replace(IrregularBatch.coerce(X), labels=y)
    return batch.split((0.6, 0.2, 0.2), seed=seed)


def _contains(pool, series):
    return any(np.array_equal(series, s, equal_nan=True) for s in pool)


def test_tune_never_sees_the_test_split():
    train, val, test = _splits()
    SEEN.clear()
    estimator = RecordingClassifier(verbose=False, epochs=2)
    res = tune(estimator, train, train.labels, eval_set=(val, val.labels), n_trials=3,
               epochs=2, space={"hidden": [4, 8]})  # fmt: skip
    res.best_estimator.predict(val)
    allowed = list(train.values.numpy()) + list(val.values.numpy())
    assert SEEN, "the recorder saw nothing"
    assert all(_contains(allowed, s) for s in SEEN)
    assert not any(_contains(SEEN, s) for s in test.values.numpy())


def test_without_an_eval_set_the_validation_split_is_held_out_of_the_training_series():
    train, _, _ = _splits()
    SEEN.clear()
    tune(RecordingClassifier(verbose=False), train, train.labels, n_trials=1, epochs=1,
         space={"hidden": [4]}, refit=False)  # fmt: skip
    assert all(_contains(list(train.values.numpy()), s) for s in SEEN)


def test_successive_halving_prunes_and_the_best_trial_is_a_completed_one():
    train, val, _ = _splits()
    res = tune(SDEClassifier(verbose=False), train, train.labels, eval_set=(val, val.labels),
               n_trials=6, epochs=4, space={"lr": (1e-5, 1e-1)}, refit=False)  # fmt: skip
    states = [t["state"] for t in res.trials]
    assert "PRUNED" in states and "COMPLETE" in states
    complete = [t for t in res.trials if t["state"] == "COMPLETE"]
    assert res.best_value == min(t["value"] for t in complete)
    assert res.best_params == next(t["params"] for t in complete if t["value"] == res.best_value)


@pytest.mark.parametrize(
    "space, match",
    [
        ({"nonsense": [1]}, "not a parameter of SDEClassifier"),
        ({"lr": (1e-2, 1e-3)}, "0 < low < high"),
        ({"hidden": []}, "non-empty list"),
    ],
)
def test_a_bad_search_space_is_refused_naming_the_parameter(space, match):
    train, val, _ = _splits()
    with pytest.raises(ValueError, match=match):
        tune(SDEClassifier(verbose=False), train, train.labels, eval_set=(val, val.labels),
             n_trials=1, epochs=1, space=space)  # fmt: skip


class DivergingClassifier(SDEClassifier):
    """Diverges at once (nothing kept) when hidden is 4; trains normally otherwise."""

    def fit(self, X, y=None, eval_set=None, callback=None):
        from neuralsde.train import TrainingDiverged

        if self.hidden == 4:
            raise TrainingDiverged(0, 0)
        return super().fit(X, y, eval_set=eval_set, callback=callback)


def test_a_trial_that_diverges_at_once_gets_the_worst_value_and_the_search_goes_on():
    train, val, _ = _splits()
    res = tune(DivergingClassifier(verbose=False, epochs=2), train, train.labels,
               eval_set=(val, val.labels), n_trials=4, epochs=2,
               space={"hidden": [4, 8]})  # fmt: skip
    states = {r["params"]["hidden"]: r["state"] for r in res.trials}
    assert states.get(4) == "DIVERGED" and res.best_params["hidden"] == 8
