"""Steppers, one small class per method, collected in a registry."""

from . import dpm2, euler, heun, milstein, reversible_heun, srk  # noqa: F401  (registration)
from .base import METHODS, Method, add_noise, register

__all__ = ["METHODS", "Method", "add_noise", "register"]
