"""neuralsde: neural stochastic differential equations on one SDE solver core."""

from .core import SDE, DivergenceError, logqp, reverse, solve

__version__ = "0.1.0"
__all__ = ["SDE", "DivergenceError", "logqp", "reverse", "solve", "__version__"]
