"""``sample``: draw from a score model by handing a reverse-time SDE to ``neuralsde.solve``.

Each method only *builds an SDE object* and calls ``solve`` once; there is no stepping loop
here (a test counts the calls):

==========  ==============================================================================
euler       reverse SDE, Euler-Maruyama, ``steps`` uniform steps
pc          reverse SDE predictor + Langevin corrector (snr 0.16) as one
            :class:`~neuralsde.diffusion.reverse.PredictorCorrectorSDE`, Euler with ``dt = 1``
ode         probability-flow ODE, adaptive Heun (step-doubling error control)
dpm2        probability-flow ODE, DPM-Solver++(2M) (core method ``dpm2``), log-SNR grid
adaptive    reverse SDE, Euler-Maruyama with step-doubling error control
==========  ==============================================================================

A final Tweedie denoising step ``x0 = (x + sigma^2 score) / alpha`` at ``t = eps`` is applied
when ``denoise=True`` (one extra score evaluation, as in Song et al.).
"""

from __future__ import annotations

import math
import numbers

import torch

from neuralsde.core import reverse, solve
from neuralsde.diffusion.guidance import as_guidance_list, guided_score
from neuralsde.diffusion.reverse import PredictorCorrectorSDE, tweedie
from neuralsde.diffusion.score import check_score_fn

METHODS = ("euler", "pc", "ode", "dpm2", "adaptive")
DEFAULT_STEPS = {"euler": 1000, "pc": 500, "ode": None, "dpm2": 20, "adaptive": None}


class _Counter:
    """Counts score evaluations (number of function evaluations, NFE)."""

    def __init__(self, fn):
        self.fn, self.nfe = fn, 0

    def __call__(self, x, t):
        self.nfe += 1
        return self.fn(x, t)


def _check_steps(method, steps):
    if steps is None:
        return DEFAULT_STEPS[method]
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be a positive integer; got {type(steps).__name__}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    return int(steps)


def _euler(rev, y0, steps, generator, opts):
    return solve(rev, y0, _span(y0), method="euler", dt=1.0 / steps, generator=generator)[-1]


def _pc(rev, y0, steps, generator, opts):
    pcs = PredictorCorrectorSDE(
        rev, steps, snr=opts["snr"], corrector_steps=opts["corrector_steps"]
    )
    ts = torch.tensor([0.0, pcs.t_end], dtype=y0.dtype, device=y0.device)
    return solve(pcs, y0, ts, method="euler", dt=1.0, generator=generator)[-1]


def _ode(rev, y0, steps, generator, opts):
    if steps is None:
        return solve(
            rev,
            y0,
            _span(y0),
            method="heun",
            dt=0.05,
            rtol=opts["rtol"],
            atol=opts["atol"],
            generator=generator,
            controller="doubling",
        )[-1]
    return solve(rev, y0, _span(y0), method="heun", dt=1.0 / steps, generator=generator)[-1]


def _dpm2(rev, y0, steps, generator, opts):
    return solve(rev, y0, _span(y0), method="dpm2", dt=1.0 / steps, generator=generator)[-1]


def _adaptive(rev, y0, steps, generator, opts):
    dt = 0.01 if steps is None else 1.0 / steps
    return solve(
        rev,
        y0,
        _span(y0),
        method="euler",
        dt=dt,
        rtol=opts["rtol"],
        atol=opts["atol"],
        generator=generator,
        controller="doubling",
    )[-1]


def _span(y0):
    return torch.tensor([0.0, 1.0], dtype=y0.dtype, device=y0.device)


# method -> (builder, probability flow?, schedule, sde_type)
_SAMPLERS = {
    "euler": (_euler, False, "linear", "ito"),
    "pc": (_pc, False, "linear", "ito"),
    "ode": (_ode, True, "linear", "stratonovich"),
    "dpm2": (_dpm2, True, "logsnr", "ito"),
    "adaptive": (_adaptive, False, "linear", "ito"),
}


def sample(
    score_model,
    sde,
    shape,
    method: str = "euler",
    steps: int | None = None,
    guidance=None,
    generator: torch.Generator | None = None,
    *,
    x_T=None,
    eps=None,
    snr: float = 0.16,
    corrector_steps: int = 1,
    rtol: float | None = None,
    atol: float | None = None,
    denoise: bool = True,
    dtype=torch.float32,
    device=None,
    return_info: bool = False,
):
    """Generate ``shape = (batch, *event)`` samples by integrating a reverse-time SDE/ODE.

    Args:
        score_model: callable ``(x: (batch, *event), t: (batch,)) -> score`` (a trained
            :class:`ScoreModel` or an exact score).
        sde: the forward SDE (``VPSDE``, ``SubVPSDE``, ``VESDE``).
        method: ``"euler"``, ``"pc"``, ``"ode"``, ``"dpm2"`` or ``"adaptive"``.
        steps: number of (predictor) steps; defaults euler 1000, pc 500, dpm2 20; for ``ode``
            and ``adaptive`` it sets fixed steps / the initial step (default: adaptive).
        guidance: an :class:`Inpaint`, :class:`ObservationGuidance`,
            :class:`ResidualGuidance` or a list of them.
        generator: seeds the prior draw and the Brownian path.
        x_T: optional prior sample ``(batch, *event)`` to start from.
        rtol, atol: tolerances of ``ode`` (default 1e-4, 1e-4) and ``adaptive`` (1e-2, 1e-2).

    Returns:
        ``(batch, *event)`` samples, or ``(samples, {"nfe": ...})`` with ``return_info``.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE, GaussianMixture
        >>> sde, gm = VPSDE(), GaussianMixture.default_2d()
        >>> x = sample(gm.score_fn(sde), sde, (64, 2), method="dpm2", steps=10,
        ...            generator=torch.Generator().manual_seed(0))
        >>> x.shape
        torch.Size([64, 2])
    """
    if method not in _SAMPLERS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    check_score_fn(score_model)
    if method in ("ode", "adaptive") and steps is not None:
        steps = _check_steps(method, steps)
    else:
        steps = _check_steps(method, steps)
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"shape must be (batch, *event) with positive sizes; got {shape}")
    items = as_guidance_list(guidance)
    for g in items:
        g.check_shape(shape)
    tol = {"ode": (1e-4, 1e-4), "adaptive": (1e-2, 1e-2)}.get(method, (None, None))
    opts = {
        "snr": float(snr),
        "corrector_steps": int(corrector_steps),
        "rtol": tol[0] if rtol is None else rtol,
        "atol": tol[1] if atol is None else atol,
    }

    counter = _Counter(guided_score(score_model, sde, items))
    builder, pf, schedule, sde_type = _SAMPLERS[method]
    rev = reverse(
        sde,
        counter,
        probability_flow=pf,
        shape=shape[1:],
        eps=eps,
        schedule=schedule,
        sde_type=sde_type,
    )
    if device is None:
        params = list(score_model.parameters()) if hasattr(score_model, "parameters") else []
        device = params[0].device if params else torch.device("cpu")
    if x_T is None:
        x_T = sde.prior_sampling(shape, generator=generator, dtype=dtype).to(device)
    elif tuple(x_T.shape) != shape:
        raise ValueError(f"x_T must have shape {shape}; got {tuple(x_T.shape)}")
    y = builder(rev, x_T.reshape(shape[0], -1), steps, generator, opts)
    x = y.reshape(shape)
    if denoise:
        t_end = torch.full((shape[0],), rev.eps, dtype=x.dtype, device=x.device)
        with torch.no_grad() if not items else torch.enable_grad():
            s = counter(x, t_end)
        view = (-1,) + (1,) * (x.dim() - 1)
        x = tweedie(x, s, sde.alpha(t_end).reshape(view), sde.sigma(t_end).reshape(view)).detach()
    if return_info:
        return x, {"nfe": counter.nfe, "method": method, "steps": steps}
    return x


def sample_nfe(method: str, steps: int) -> int:
    """Nominal score evaluations of a fixed-step run (without the final denoising step)."""
    return {"euler": steps + 1, "pc": 2 * steps + 1, "dpm2": steps + 1}.get(method, math.nan)
