"""Denoising score matching (Vincent 2011; Song et al. 2021), with the likelihood weighting.

With ``x_t = alpha x_0 + sigma z``, the loss ``lambda(t) |s(x_t, t) + z / sigma|^2`` is
minimised by the true score. ``lambda = sigma^2`` gives the plain noise-prediction loss
``|sigma s + z|^2``; ``lambda = g(t)^2`` (likelihood weighting) makes the time integral an
upper bound on the negative log-likelihood (Song et al. 2021, "maximum likelihood training").

:func:`edm_loss` is EDM's training objective (Karras et al. 2022, section 5): noise levels
``s = sigma / alpha`` drawn log-normally, ``log s ~ N(p_mean, p_std^2)`` (clipped to the SDE's
range), and the denoiser's squared error weighted by ``(s^2 + sd^2) / (s sd)^2``, which is
the preconditioned network's squared error against its unit-variance target.
"""

from __future__ import annotations

import torch


def dsm_loss(
    score_model,
    sde,
    x0: torch.Tensor,
    likelihood_weighting: bool = False,
    generator: torch.Generator | None = None,
    eps: float | None = None,
) -> torch.Tensor:
    """Monte Carlo denoising score matching loss at uniform ``t in [eps, T]``.

    ``score_model(x, t)`` with ``x: (batch, *shape)``, ``t: (batch,)``; ``x0: (batch, *shape)``.
    Returns a 0-d tensor (mean over the batch of the per-sample sum over dimensions, divided
    by the number of dimensions).

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE
        >>> sde = VPSDE()
        >>> loss = dsm_loss(lambda x, t: -x, sde, torch.randn(64, 2))
        >>> loss.dim()
        0
    """
    eps = sde.eps if eps is None else float(eps)
    b = x0.shape[0]
    dev = "cpu" if generator is not None else x0.device
    t = torch.rand(b, generator=generator, dtype=x0.dtype, device=dev).to(x0.device)
    t = eps + (sde.T - eps) * t
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=dev).to(x0.device)
    view = (-1,) + (1,) * (x0.dim() - 1)
    a = sde.alpha(t).reshape(view)
    s = sde.sigma(t).reshape(view)
    xt = a * x0 + s * z
    if hasattr(score_model, "noise_prediction"):
        # same minimiser, better conditioned: |sigma s + z|^2 = |z - z_hat|^2
        resid = z - score_model.noise_prediction(xt, t)
    else:
        resid = s * score_model(xt, t) + z
    per = resid.pow(2).reshape(b, -1).mean(-1)
    if likelihood_weighting:
        per = per * (sde.diffusion(t) / sde.sigma(t)) ** 2
    return per.mean()


def edm_loss(
    score_model,
    sde,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> torch.Tensor:
    """EDM's weighted denoising loss for a ``ScoreModel(..., preconditioning="edm")``.

    ``x0: (batch, *shape)``. Returns a 0-d tensor (mean over the batch and dimensions).

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VESDE, ScoreMLP, ScoreModel
        >>> sde = VESDE(sigma_min=0.002, sigma_max=80.0)
        >>> model = ScoreModel(ScoreMLP(2, hidden=8), sde, preconditioning="edm")
        >>> edm_loss(model, sde, torch.randn(16, 2)).dim()
        0
    """
    if getattr(score_model, "preconditioning", None) != "edm":
        raise ValueError(
            "score_model: edm_loss trains the EDM-preconditioned denoiser; build it with "
            "ScoreModel(net, sde, preconditioning='edm')"
        )
    b = x0.shape[0]
    dev = "cpu" if generator is not None else x0.device
    ln_s = p_mean + p_std * torch.randn(b, generator=generator, dtype=torch.float64, device=dev)
    lo, hi = sde.log_snr(torch.tensor([sde.T, sde.eps], dtype=torch.float64)).tolist()
    t = sde.t_from_log_snr((-ln_s).clamp(lo, hi)).clamp(sde.eps, sde.T).to(x0)
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=dev).to(x0.device)
    view = (-1,) + (1,) * (x0.dim() - 1)
    a, s = sde.alpha(t).reshape(view), sde.sigma(t).reshape(view)
    sh2, sd2 = (s / a) ** 2, score_model.sigma_data**2
    weight = (sh2 + sd2) / (sh2 * sd2)
    err = (score_model.denoise(a * x0 + s * z, t) - x0).pow(2) * weight
    return err.reshape(b, -1).mean(-1).mean()
