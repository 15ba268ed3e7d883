"""Small PDE solvers that generate training fields (Darcy flow)."""

from .darcy import (
    A_HIGH,
    A_LOW,
    darcy_dataset,
    darcy_residual,
    gaussian_random_field,
    solve_darcy,
    threshold_coefficient,
)

__all__ = [
    "A_HIGH",
    "A_LOW",
    "darcy_dataset",
    "darcy_residual",
    "gaussian_random_field",
    "solve_darcy",
    "threshold_coefficient",
]
