"""Hyper-parameter search on a validation split: Optuna with successive-halving pruning.

The counterpart of the Ray Tune ASHA search of Oh, Lim & Kim: short trials (10 epochs), the
validation loss reported after every epoch, unpromising trials stopped early, and the chosen
configuration trained fully. Only the training series and the validation split are ever seen;
a test split is never an argument.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

from neuralsde.train import TrainingDiverged

__all__ = ["DEFAULT_SPACE", "TuneResult", "tune"]

# the reference search space (torch-ists/param_search.py), with the drift width searched too
DEFAULT_SPACE = {
    "hidden": [16, 32, 64, 128],
    "width": [16, 32, 64, 128],
    "depth": [1, 2, 3, 4],
    "lr": (1e-4, 1e-2),  # log-uniform
}


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes:
        best_params: the chosen values of the searched parameters.
        best_value: their validation score (lowest validation loss over the trial's epochs).
        trials: one dict per trial: ``number``, ``params``, ``value``, ``state`` (``COMPLETE``,
            ``PRUNED``, or ``DIVERGED`` when training diverged before any epoch was kept: value
            1e30), ``epochs`` run and ``seconds``.
        search_seconds: wall time of the search (without the final fit).
        best_estimator: the estimator refitted with ``best_params`` and its own ``epochs``
            (None with ``refit=False``).
    """

    best_params: dict
    best_value: float
    trials: list = field(default_factory=list)
    search_seconds: float = 0.0
    best_estimator: object = None

    def to_dict(self) -> dict:
        """A JSON-ready record (without the estimator)."""
        return {
            "best_params": self.best_params,
            "best_value": self.best_value,
            "trials": self.trials,
            "search_seconds": self.search_seconds,
        }


def _check_space(space: dict, estimator) -> dict:
    if not isinstance(space, dict) or not space:
        raise TypeError(f"space must be a non-empty dict of parameter -> choices; got {space!r}")
    known = estimator.get_params()
    for name, choices in space.items():
        if name not in known:
            raise ValueError(
                f"space names {name!r}, which is not a parameter of {type(estimator).__name__}"
            )
        if isinstance(choices, tuple):
            if len(choices) != 2 or not 0 < choices[0] < choices[1]:
                raise ValueError(
                    f"space[{name!r}] must be a (low, high) tuple with 0 < low < high for a "
                    f"log-uniform range, or a list of choices; got {choices!r}"
                )
        elif not isinstance(choices, list) or not choices:
            raise ValueError(f"space[{name!r}] must be a non-empty list or a (low, high) tuple")
    return space


def _suggest(trial, space: dict) -> dict:
    params = {}
    for name, choices in space.items():
        if isinstance(choices, tuple):
            params[name] = trial.suggest_float(name, *map(float, choices), log=True)
        else:
            params[name] = trial.suggest_categorical(name, choices)
    return params


def _validation_split(estimator, X, y, eval_set, random_state):
    """``(X_train, y_train, (X_val, y_val))``: ``eval_set`` as given, else a stratified
    holdout of ``X`` of the estimator's ``validation_fraction``."""
    if eval_set is not None:
        return X, y, eval_set
    from neuralsde.data import IrregularBatch
    from neuralsde.estimators.stable import _labels, _stratified_holdout

    batch = IrregularBatch.coerce(X)
    labels = _labels(y, batch, "y")
    fraction = float(getattr(estimator, "validation_fraction", 0.15) or 0.15)
    train, val = _stratified_holdout(labels, fraction, random_state)
    if len(val) == 0:
        raise ValueError("X is too small to hold out a validation split; pass eval_set")
    return batch[train], labels[train], (batch[val], labels[val])


def tune(
    estimator,
    X,
    y=None,
    *,
    eval_set=None,
    n_trials: int = 20,
    epochs: int = 10,
    space: dict | None = None,
    refit: bool = True,
    random_state: int = 0,
    timeout: float | None = None,
    verbose: bool = False,
) -> TuneResult:
    """Search ``estimator``'s hyper-parameters on a validation split; refit the best.

    Each trial clones ``estimator``, sets the suggested parameters and ``epochs``, trains on
    ``X`` and reports the validation loss after every epoch to Optuna's
    ``SuccessiveHalvingPruner`` (minimum resource 1 epoch, reduction factor 2, as the
    reference's ASHA), which stops unpromising trials. Parameters are drawn by a seeded TPE
    sampler. The trial with the lowest validation loss wins; with ``refit=True`` a clone with
    those parameters (and the estimator's own ``epochs``) is trained on ``X`` with the same
    validation split for early stopping.

    Works for every estimator with ``fit(X, y, eval_set=..., callback=...)`` whose history
    records a validation loss: :class:`~neuralsde.estimators.SDEClassifier` of every ``kind``,
    the Neural CDE included.

    Args:
        estimator: an unfitted estimator (its other parameters are kept).
        X, y: the training series and labels (never the test split).
        eval_set: ``(X_val, y_val)``; None holds out a stratified ``validation_fraction``
            of ``X`` (seeded by ``random_state``).
        n_trials, epochs: number of trials and epochs per trial.
        space: parameter -> list of choices, or ``(low, high)`` for a log-uniform float;
            default :data:`DEFAULT_SPACE`.
        timeout: stop starting new trials after this many seconds.

    Example:
        >>> import numpy as np
        >>> from neuralsde.estimators import SDEClassifier
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(24, 8, 1)); y = np.repeat([0, 1], 12); X[y == 1] += 1
        >>> res = tune(SDEClassifier(verbose=False, epochs=2), X, y, n_trials=2, epochs=1,
        ...            space={"hidden": [4, 8]})
        >>> sorted(res.best_params), res.best_estimator.predict(X).shape
        (['hidden'], (24,))
    """
    import optuna

    space = _check_space(DEFAULT_SPACE if space is None else space, estimator)
    for name, value in (("n_trials", n_trials), ("epochs", epochs)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    X_train, y_train, eval_set = _validation_split(estimator, X, y, eval_set, random_state)
    records = []

    def objective(trial):
        params = _suggest(trial, space)
        model = clone(estimator).set_params(**params, epochs=int(epochs), verbose=False)
        pruned = []

        def report(epoch, _model, history):
            value = history.val_loss[-1] if history.val_loss else math.inf
            trial.report(value if math.isfinite(value) else 1e30, epoch)
            if trial.should_prune():
                pruned.append(epoch)
                return True
            return False

        start = time.perf_counter()
        try:
            model.fit(X_train, y_train, eval_set=eval_set, callback=report)
        except TrainingDiverged as err:  # nothing kept: the worst value, and the search goes on
            records.append({"number": trial.number, "params": params, "value": 1e30,
                            "state": "DIVERGED", "epochs": err.epoch + 1,
                            "seconds": time.perf_counter() - start})  # fmt: skip
            return 1e30
        h = model.history_
        value = h.best_val if math.isfinite(h.best_val) else 1e30
        records.append({
            "number": trial.number, "params": params, "value": float(value),
            "state": "PRUNED" if pruned else "COMPLETE", "epochs": len(h.epoch_time),
            "seconds": time.perf_counter() - start,
        })  # fmt: skip
        if pruned:
            raise optuna.TrialPruned()
        return value

    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=int(random_state)),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
    )
    start = time.perf_counter()
    study.optimize(objective, n_trials=int(n_trials), timeout=timeout,
                   show_progress_bar=bool(verbose))  # fmt: skip
    seconds = time.perf_counter() - start
    finished = [r for r in records if r["state"] == "COMPLETE"] or records
    best = min(finished, key=lambda r: r["value"])
    result = TuneResult(dict(best["params"]), best["value"], records, seconds)
    if refit:
        final = clone(estimator).set_params(**result.best_params)
        result.best_estimator = final.fit(X_train, y_train, eval_set=eval_set)
    return result
