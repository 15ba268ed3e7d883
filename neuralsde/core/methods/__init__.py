"""Steppers, one small class per method, collected in a registry. Methods that need structure
beyond the SDE protocol (the diffusion samplers) register from the package that provides it."""

from . import euler, heun, milstein, reversible_heun, srk  # noqa: F401  (registration)
from .base import METHODS, Method, add_noise, axpy, register, sde_type_of

__all__ = ["METHODS", "Method", "add_noise", "axpy", "register", "sde_type_of"]
