"""One helper between the parametrisations of a denoising model's output.

For a forward SDE with Gaussian marginals ``x_t = alpha_t x_0 + sigma_t eps`` a network may
predict the noise ``eps``, the data ``x0``, the velocity ``v = alpha_t eps - sigma_t x_0``
(Salimans & Ho 2022) or the score ``grad log p_t = -eps / sigma_t``. Given ``x`` and any one of
them, the others follow linearly; for ``v`` the pair ``(x, v)`` determines ``(x_0, eps)``
through ``alpha^2 + sigma^2`` (1 for VP, not for VE and sub-VP, which are covered too).

EDM's ``sigma`` parametrisation (Karras et al. 2022) is the VE view of any such SDE:
``x_hat = x / alpha_t``, ``sigma_hat = sigma_t / alpha_t``, denoiser ``D(x_hat, sigma_hat) = x0``
(:func:`to_edm`, :func:`from_edm`).

Example:
    >>> import torch
    >>> x, eps = torch.tensor([1.0]), torch.tensor([0.5])
    >>> convert(eps, x, alpha=0.6, sigma=0.8, source="eps", target="x0")
    tensor([1.])
"""

from __future__ import annotations

import torch

KINDS = ("eps", "x0", "v", "score", "flow")


def _x0_eps(value, x, alpha, sigma, source, dalpha=None, dsigma=None):
    if source == "flow":  # value = dalpha x0 + dsigma eps, x = alpha x0 + sigma eps
        det = alpha * dsigma - sigma * dalpha
        return (dsigma * x - sigma * value) / det, (alpha * value - dalpha * x) / det
    if source == "eps":
        return (x - sigma * value) / alpha, value
    if source == "x0":
        return value, (x - alpha * value) / sigma
    if source == "score":
        eps = -sigma * value
        return (x - sigma * eps) / alpha, eps
    norm = alpha * alpha + sigma * sigma  # source == "v"
    return (alpha * x - sigma * value) / norm, (sigma * x + alpha * value) / norm


def convert(value, x, alpha, sigma, source: str, target: str, dalpha=None,
            dsigma=None) -> torch.Tensor:  # fmt: skip
    """Convert a model output ``value`` at ``x`` (same shape) from one parametrisation to
    another. ``source, target`` in ``("eps", "x0", "v", "score", "flow")``; ``alpha, sigma``
    are the marginal coefficients at the time of ``x``, broadcast against it. ``sigma`` must be
    positive when converting from ``x0`` or to ``score``.

    ``"flow"`` is the velocity of a stochastic interpolant ``x_t = alpha_t x_0 + sigma_t eps``
    (Albergo, Boffi & Vanden-Eijnden), ``E[dalpha_t x_0 + dsigma_t eps | x_t]``; it needs the
    time derivatives ``dalpha, dsigma``.
    """
    for name, kind in (("source", source), ("target", target)):
        if kind not in KINDS:
            raise ValueError(f"{name} must be one of {list(KINDS)}; got {kind!r}")
    if "flow" in (source, target) and (dalpha is None or dsigma is None):
        raise ValueError("dalpha and dsigma (the coefficients' time derivatives) are needed "
                         "to convert to or from 'flow'")  # fmt: skip
    x0, eps = _x0_eps(value, x, alpha, sigma, source, dalpha, dsigma)
    if target == "flow":
        return dalpha * x0 + dsigma * eps
    if target == "x0":
        return x0
    if target == "eps":
        return eps
    if target == "score":
        return -eps / sigma
    return alpha * eps - sigma * x0


def to_edm(x, alpha, sigma):
    """``(x_hat, sigma_hat) = (x / alpha, sigma / alpha)``: the state and noise level in EDM's
    (VE) parametrisation, where the data prediction is the denoiser ``D(x_hat, sigma_hat)``."""
    return x / alpha, sigma / alpha


def from_edm(x_hat, alpha):
    """Back from EDM's state ``x_hat`` to the SDE's: ``x = alpha x_hat``."""
    return alpha * x_hat
