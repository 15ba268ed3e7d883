"""The shared SDE solver core: the SDE protocol, steppers, Brownian sources, step-size
controllers, the one loop, ``solve``, adjoints and SDE transforms. Nothing here knows about
models, data or diffusion."""

from .brownian import BrownianPath, Increment
from .control import PIController, StepDoubling
from .loop import DivergenceError, StepLimitError
from .methods import METHODS, Method, register, sde_type_of
from .sde import SDE, check_protocol
from .solve import solve
from .transforms import Controlled, LogQP, Reverse, augment, controlled, logqp, reverse, split

__all__ = [
    "METHODS",
    "SDE",
    "BrownianPath",
    "Controlled",
    "DivergenceError",
    "StepLimitError",
    "Increment",
    "LogQP",
    "Method",
    "PIController",
    "Reverse",
    "StepDoubling",
    "augment",
    "check_protocol",
    "controlled",
    "logqp",
    "register",
    "reverse",
    "sde_type_of",
    "solve",
    "split",
]
