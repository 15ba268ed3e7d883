"""Restoration with a mean-reverting SDE (IR-SDE, Luo et al. 2023) and its fast sampler MRS
(Li et al., ICLR 2025), on the one core.

The forward :class:`~neuralsde.diffusion.sdes.MeanRevertingSDE` drifts a clean signal
``x_0`` towards its degraded copy ``mu``; in ``y = x - mu`` it is a VP-type SDE. A
noise-prediction network sees ``y_t`` and ``mu`` (:class:`RestorationModel`), trained by
denoising score matching on (clean, degraded) pairs (:func:`train_restorer`, the shared
training loop). :func:`restore` starts from ``mu + lam z`` and integrates back:

* ``method="sde"``: IR-SDE's reverse SDE (Euler-Maruyama on the core);
* ``method="mrs"``: MRS, the exponential integrators of the samplers on the same VP-type
  form (``alpha_t = e^{-thetabar_t}``, ``sigma_t = lam sqrt(1 - alpha_t^2)``): ODE of order
  1, 2, 3 (``ddim``, ``dpmpp_2m``, ``dpmpp_3m``) in the data (DPM-Solver++) or the noise
  (DPM-Solver) parametrisation, or SDE of order 2 (``dpmpp_2m_sde``, data); no second copy of
  DPM-Solver.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neuralsde.data.validation import as_float_tensor
from neuralsde.diffusion.arguments import check_steps
from neuralsde.diffusion.sampling import sample

__all__ = ["MRS_METHODS", "RestorationModel", "restore", "train_restorer"]

MRS_METHODS = {("ode", 1): "ddim", ("ode", 2): "dpmpp_2m", ("ode", 3): "dpmpp_3m",
               ("sde", 2): "dpmpp_2m_sde"}  # fmt: skip


class RestorationModel(nn.Module):
    """Score ``s(y, t | mu) = -net([y c_in(t), mu], t)[..., :C] / sigma(t)`` of ``y = x - mu``.

    ``net`` maps ``(B, *shape[:-1], 2C)`` to the same shape (the last axis: channels of
    ``y`` then of ``mu``), e.g. ``ScoreMLP((length, 2 * C))``.
    """

    def __init__(self, net: nn.Module, sde):
        super().__init__()
        self.net, self.sde = net, sde

    def _eps_and_sigma(self, y, t, mu):
        if mu.shape != y.shape:
            raise ValueError(f"mu of shape {tuple(mu.shape)} does not match x of shape "
                             f"{tuple(y.shape)}")  # fmt: skip
        view = (-1,) + (1,) * (y.dim() - 1)
        t = torch.as_tensor(t, dtype=y.dtype).reshape(-1).expand(y.shape[0])
        a, s = self.sde.alpha(t).reshape(view), self.sde.sigma(t).reshape(view)
        out = self.net(torch.cat([y * torch.rsqrt(a**2 + s**2), mu.to(y.dtype)], -1), t)
        return out[..., : y.shape[-1]], s

    def noise_prediction(self, y, t, mu):
        """The network's estimate of the noise in ``y_t``: ``(B, ..., C)``."""
        return self._eps_and_sigma(y, t, mu)[0]

    def forward(self, y, t, mu):
        eps, sigma = self._eps_and_sigma(y, t, mu)
        return -eps / sigma


def train_restorer(clean, degraded, sde, net: nn.Module, *, epochs: int = 50,
                   batch_size: int = 256, lr: float = 1e-3, generator=None,
                   verbose: bool = True):  # fmt: skip
    """Fit ``net`` by denoising score matching on pairs ``clean, degraded: (n, ..., C)`` (the
    same shape) under ``sde`` (a :class:`MeanRevertingSDE`). Returns ``(RestorationModel,
    history)`` in eval mode."""
    from neuralsde.train import fit

    clean = as_float_tensor(clean, "clean", torch.get_default_dtype(), min_dim=2)
    degraded = as_float_tensor(degraded, "degraded", clean.dtype, min_dim=2)
    if degraded.shape != clean.shape:
        raise ValueError(f"degraded has shape {tuple(degraded.shape)}; clean has "
                         f"{tuple(clean.shape)}: they must be pairs")  # fmt: skip
    model = RestorationModel(net, sde)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)

    def loss_fn(m, batch):
        x0, mu = batch
        t = sde.eps + (sde.T - sde.eps) * torch.rand(x0.shape[0], generator=gen, dtype=x0.dtype)
        z = torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
        view = (-1,) + (1,) * (x0.dim() - 1)
        y_t = sde.alpha(t).reshape(view) * (x0 - mu) + sde.sigma(t).reshape(view) * z
        return ((m.noise_prediction(y_t, t, mu) - z) ** 2).mean()

    history = fit(model, loss_fn, (clean, degraded), epochs=epochs, lr=lr,
                  batch_size=batch_size, patience=None, lr_schedule="cosine", verbose=verbose,
                  generator=gen, desc="restorer")  # fmt: skip
    return model.eval(), history


def restore(model, sde, degraded, method: str = "mrs", steps: int | None = None,
            order: int = 2, kind: str = "sde", eta: float = 0.5, end: float | None = 0.2,
            prediction: str = "data", generator=None):  # fmt: skip
    """Restore ``degraded: (B, ..., C)`` with a trained :class:`RestorationModel`.

    ``method="sde"``: the reverse SDE by Euler-Maruyama on uniform knots, ``steps`` steps
    (default 100; IR-SDE) down to ``sde.eps``. ``method="mrs"``: MRS of ``kind`` ``"sde"``
    (order 2, noise parameter ``eta``) or ``"ode"`` (``order`` 1-3), ``steps`` steps
    (default 9) on uniform knots down to the time where ``sigma_t = end * lam``, then the
    final Tweedie step: ``steps + 1`` network evaluations. The defaults (SDE, ``eta = 0.5``,
    ``end = 0.2``, 10 evaluations) were chosen on validation windows of OU and stochastic
    Lorenz data (``benchmarks/diffusion_restoration.py``): stopping the integration at a
    moderate noise level leaves the least-trained, lowest-noise stretch to the denoiser.
    ``end=None``: down to ``sde.eps``. ``prediction``: the integrators' parametrisation,
    ``"data"`` (DPM-Solver++) or ``"noise"`` (DPM-Solver; the ODE only).
    """
    eps = None
    if method == "sde":
        name, steps = "euler", check_steps(100 if steps is None else steps)
    elif method == "mrs":
        if (kind, order) not in MRS_METHODS:
            raise ValueError(f"order: MRS takes (kind, order) in {sorted(MRS_METHODS)}; got "
                             f"({kind!r}, {order!r})")  # fmt: skip
        name, steps = MRS_METHODS[(kind, order)], check_steps(9 if steps is None else steps)
        eps = None if end is None else _end_time(sde, end)
        if prediction not in ("data", "noise") or (prediction == "noise" and kind == "sde"):
            raise ValueError(f"prediction must be 'data' or, for kind='ode', 'noise'; got "
                             f"{prediction!r} with kind={kind!r}")  # fmt: skip
    else:
        raise ValueError(f"method must be 'sde' (IR-SDE) or 'mrs'; got {method!r}")
    mu = as_float_tensor(degraded, "degraded", torch.get_default_dtype(), min_dim=2)

    def score(y, t):
        return model(y, t, mu)

    y = sample(score, sde, tuple(mu.shape), method=name, steps=steps, schedule="uniform",
               generator=generator, dtype=mu.dtype, eps=eps,
               eta=eta if name == "dpmpp_2m_sde" else None,
               options={"prediction": "noise"} if prediction == "noise" and order > 1
               else None)  # fmt: skip
    return y + mu


def _end_time(sde, end) -> float:
    """The time where ``sigma_t = end * lam`` (``0 < end < 1``)."""
    end = float(end)
    if not 0 < end < 1:
        raise ValueError(f"end must lie in (0, 1) (a noise level as a fraction of lam); got "
                         f"{end!r}")  # fmt: skip
    lam = math.log(math.sqrt(1 - end * end) / (end * sde.lam))
    return float(sde.t_from_log_snr(torch.tensor(lam, dtype=torch.float64)))
