"""neuralsde: neural stochastic differential equations on one SDE solver core."""

from .core import SDE, DivergenceError, controlled, logqp, reverse, solve

__version__ = "0.1.0"
_ESTIMATORS = ("LatentSDEChangeDetector", "LatentSDEForecaster", "SDEClassifier", "SDERegressor")
__all__ = [
    "SDE",
    "DivergenceError",
    "controlled",
    "logqp",
    "reverse",
    "solve",
    "tune",
    "__version__",
    *_ESTIMATORS,
]


def __getattr__(name):
    # the estimator layer (and optuna) load only when an estimator or ``tune`` is asked for
    if name == "tune":
        from .tuning import tune

        return tune
    if name in _ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'neuralsde' has no attribute {name!r}")
