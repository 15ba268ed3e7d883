"""neuralsde: neural stochastic differential equations on one SDE solver core."""

from .core import SDE, DivergenceError, controlled, logqp, reverse, solve

__version__ = "0.1.0"
__all__ = [
    "SDE",
    "DivergenceError",
    "controlled",
    "logqp",
    "reverse",
    "solve",
    "tune",
    "__version__",
]


def __getattr__(name):
    # the estimator layer (and optuna) load only when ``neuralsde.tune`` is asked for
    if name == "tune":
        from .tuning import tune

        return tune
    raise AttributeError(f"module 'neuralsde' has no attribute {name!r}")
