"""The stepper contract: a method declares what it supports and takes one step.

``solve`` reads the declarations to validate a request and to pick what the loop needs; it
never switches on method names. Models ask the registry too (:func:`sde_type_of`) instead of
keeping their own lists of methods.
"""

from __future__ import annotations

import torch

from ..sde import NOISE_TYPES

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    METHODS[cls.name] = cls
    return cls


def sde_type_of(method: str) -> str:
    """The SDE type that ``method`` converges to by default (``"ito"`` when it takes both)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    types = METHODS[method].sde_types
    return "ito" if "ito" in types else types[0]


def add_noise(noise_type: str, x: torch.Tensor, g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Return ``x + g v`` for a noise type (fused for diagonal and scalar noise)."""
    if noise_type == "diagonal":
        return torch.addcmul(x, g, v)
    if noise_type == "scalar":
        return torch.addcmul(x, g.squeeze(-1), v)
    return x + torch.bmm(g, v.unsqueeze(-1)).squeeze(-1)


def axpy(y: torch.Tensor, x: torch.Tensor, a) -> torch.Tensor:
    """``y + a x`` for a step size ``a`` that is a float (one grid) or a ``(batch, 1)`` tensor
    (one grid per series); one fused kernel either way."""
    if isinstance(a, torch.Tensor):
        return torch.addcmul(y, x, a)
    return torch.add(y, x, alpha=a)


def axpy_(y: torch.Tensor, x: torch.Tensor, a) -> torch.Tensor:
    """In place ``y += a x`` (``y`` a fresh intermediate the caller owns); see :func:`axpy`."""
    if isinstance(a, torch.Tensor):
        return y.addcmul_(x, a)
    return y.add_(x, alpha=a)


class Method:
    """One small stepper. Subclasses set the declarations and implement ``step``.

    ``step(t0, t1, dt, y0, inc, state) -> (y1, error, state1)``: ``t0, t1`` are 0-d tensors
    (``(batch, 1)`` with one grid per series), ``dt`` a float (a ``(batch, 1)`` tensor), ``inc``
    the step's :class:`~neuralsde.core.brownian.Increment`. ``error`` is the embedded error
    estimate ``(batch, state)`` when ``self.want_error`` is set and the method has one for
    this noise type, else None. ``init(t0, t1, y0, fg0)`` sees the whole span.

    Declarations:
        sde_types, noise_types: what the method integrates.
        strong_order: for the noise type it is best at (see :meth:`order`).
        levy_area: needs the space-time Levy area ``U`` in the increment.
        adaptive: may take variable steps (multistep methods may not).
        error_noise_types: noise types with an embedded error estimate at no extra cost.
        grid_times: evaluates ``f`` and ``g`` only at step endpoints, so values tabulated on
            the step grid (the SDE's ``precompute`` hook) are exact.
        per_series: supports one grid per series (``dt`` a tensor, ``t`` of shape (batch, 1)).
        reversible: provides the algebraic inverse used by ``adjoint="reversible"``.
        torchsde_name: the method's name in torchsde, for ``adjoint="backsolve"``.
        requires: attributes the SDE must have beyond the protocol.
    """

    name: str = ""
    sde_types: tuple[str, ...] = ("ito",)
    noise_types: tuple[str, ...] = NOISE_TYPES
    strong_order: float = 0.5
    levy_area: bool = False
    adaptive: bool = True
    error_noise_types: tuple[str, ...] = ()
    grid_times: bool = True
    per_series: bool = False
    reversible: bool = False
    torchsde_name: str | None = None
    option_names: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()

    @classmethod
    def fits(cls, sde) -> bool:
        """Whether this method can integrate ``sde`` (declarations only, no evaluation)."""
        return (
            sde.sde_type in cls.sde_types
            and sde.noise_type in cls.noise_types
            and all(hasattr(sde, name) for name in cls.requires)
        )

    @classmethod
    def has_error_estimate(cls, noise_type: str) -> bool:
        return noise_type in cls.error_noise_types

    def __init__(self, sde, options: dict | None = None):
        options = dict(options or {})
        unknown = set(options) - set(self.option_names)
        if unknown:
            raise ValueError(
                f"options {sorted(unknown)} are not understood by method={self.name!r}; "
                f"it takes {list(self.option_names) or 'no options'}"
            )
        missing = [n for n in self.requires if not hasattr(sde, n)]
        if missing:
            raise TypeError(
                f"method={self.name!r} needs an SDE with {list(self.requires)}; "
                f"{type(getattr(sde, 'sde', sde)).__name__} lacks {missing}"
            )
        self.sde = sde  # bound to the solve's args: sde.f(t, y), sde.g(t, y), sde.f_and_g(t, y)
        self.noise_type = sde.noise_type
        self.options = options
        self.want_error = False

    def order(self) -> float:
        """Strong order for this SDE's noise type (used by adaptive step control)."""
        return self.strong_order

    def init(self, t0: torch.Tensor, t1: torch.Tensor, y0: torch.Tensor, fg0) -> object:
        """State before the first step of ``[t0, t1]``; ``fg0 = (f(t0, y0), g(t0, y0))`` may
        be reused."""
        return None

    def fg(self, t, y):
        return self.sde.f_and_g(t, y)

    def noise(self, x, g, v):
        return add_noise(self.noise_type, x, g, v)

    def step(self, t0, t1, dt, y0, inc, state):
        raise NotImplementedError
