"""The shared SDE solver core: the SDE protocol, steppers, Brownian sources, ``solve``,
adjoints and SDE transforms. Nothing here knows about models, data or diffusion."""

from .methods import METHODS, Method, register
from .sde import SDE, check_protocol
from .solve import DivergenceError, solve
from .transforms import LogQP, Reverse, logqp, reverse

__all__ = [
    "METHODS",
    "SDE",
    "DivergenceError",
    "LogQP",
    "Method",
    "Reverse",
    "check_protocol",
    "logqp",
    "register",
    "reverse",
    "solve",
]
