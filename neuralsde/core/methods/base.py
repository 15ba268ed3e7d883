"""The stepper contract: a method declares what it supports and takes one step.

``solve`` reads the declarations (``sde_types``, ``noise_types``, ``requires``,
``strong_order``, ``levy_area``, ``adaptive``) to validate a request; it never switches on
method names.
"""

from __future__ import annotations

import torch

from ..sde import NOISE_TYPES, f_and_g

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    METHODS[cls.name] = cls
    return cls


def add_noise(noise_type: str, x: torch.Tensor, g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Return ``x + g v`` for a noise type (fused for diagonal and scalar noise)."""
    if noise_type == "diagonal":
        return torch.addcmul(x, g, v)
    if noise_type == "scalar":
        return torch.addcmul(x, g.squeeze(-1), v)
    return x + torch.bmm(g, v.unsqueeze(-1)).squeeze(-1)


class Method:
    """One small stepper. Subclasses set the declarations and implement ``step``.

    ``step(t0, t1, dt, y0, dW, U, state) -> (y1, state1)`` with ``t0, t1`` 0-d tensors,
    ``dt`` a float, ``dW: (batch, brownian)`` the Brownian increment and ``U`` its
    time integral ``int_t0^t1 (W_s - W_t0) ds`` (only for methods with ``levy_area``).
    """

    name: str = ""
    sde_types: tuple[str, ...] = ("ito",)
    noise_types: tuple[str, ...] = NOISE_TYPES
    strong_order: float = 0.5
    levy_area: bool = False
    adaptive: bool = True
    option_names: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # attributes the SDE must have beyond the protocol

    @classmethod
    def fits(cls, sde) -> bool:
        """Whether this method can integrate ``sde`` (declarations only, no evaluation)."""
        return (
            sde.sde_type in cls.sde_types
            and sde.noise_type in cls.noise_types
            and all(hasattr(sde, name) for name in cls.requires)
        )

    def __init__(self, sde, options: dict | None = None):
        options = dict(options or {})
        unknown = set(options) - set(self.option_names)
        if unknown:
            raise ValueError(
                f"options {sorted(unknown)} are not understood by method={self.name!r}; "
                f"it takes {list(self.option_names) or 'no options'}"
            )
        self.sde = sde
        self.noise_type = sde.noise_type
        self.options = options

    def order(self) -> float:
        """Strong order for this SDE's noise type (used by adaptive step control)."""
        return self.strong_order

    def init(self, t0: torch.Tensor, y0: torch.Tensor, fg0) -> object:
        """State before the first step; ``fg0 = (f(t0, y0), g(t0, y0))`` may be reused."""
        return None

    def fg(self, t, y):
        return f_and_g(self.sde, t, y)

    def noise(self, x, g, v):
        return add_noise(self.noise_type, x, g, v)

    def step(self, t0, t1, dt, y0, dW, U, state):
        raise NotImplementedError
