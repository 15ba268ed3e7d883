"""Noise sources beyond Brownian motion: Markov-approximate fractional Brownian motion."""

from neuralsde.noise.markov_fbm import MarkovFBM, fbm_cov, riemann_liouville_cov
from neuralsde.noise.transform import FractionalSDE, fractional

__all__ = ["MarkovFBM", "FractionalSDE", "fractional", "fbm_cov", "riemann_liouville_cov"]
