"""neuralsde: neural stochastic differential equations on one SDE solver core."""

from .core import SDE, DivergenceError, controlled, logqp, reverse, solve

__version__ = "0.1.0"
__all__ = ["SDE", "DivergenceError", "controlled", "logqp", "reverse", "solve", "__version__"]
