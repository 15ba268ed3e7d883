"""``sample``: draw from a score model by handing a reverse-time SDE to ``neuralsde.solve``.

Each sampler only *builds an SDE object* and calls ``solve`` once, on the knots of a sampling
schedule (:mod:`neuralsde.diffusion.schedules`); there is no stepping loop here (a test counts
the calls). The samplers and their default schedule and steps:

============  ========  =====  ==================================================================
sampler       schedule  steps  what ``solve`` integrates
============  ========  =====  ==================================================================
euler         uniform   1000   reverse SDE, Euler-Maruyama
pc            uniform   500    reverse SDE predictor + Langevin corrector (snr 0.16), one
                               :class:`~neuralsde.diffusion.reverse.PredictorCorrectorSDE`
ode           --        --     probability flow, Heun; adaptive (step doubling) unless
                               ``steps`` or ``schedule`` is given
heun_edm      karras    10     EDM's Heun (Karras et al. 2022), optional churn
ddim          logsnr    20     DDIM (Song et al. 2021)
dpmpp_2m      logsnr    20     DPM-Solver++(2M) (Lu et al. 2022); alias ``dpm2``
dpmpp_3m      logsnr    20     DPM-Solver++(3M)
dpmpp_2m_sde  karras    20     SDE-DPM-Solver++(2M), ``eta`` (default 1)
dpmpp_3m_sde  karras    20     SDE-DPM-Solver++(3M), ``eta`` (default 1)
sa_solver     logsnr    20     SA-Solver (Xue et al. 2023), predictor 3, corrector 4
er_sde        karras    20     ER-SDE-Solver-3 (Cui et al. 2023)
restart       karras    10     Restart sampling (Xu et al. 2023) on Heun EDM
adaptive      --        --     reverse SDE, Gotta Go Fast (Jolicoeur-Martineau et al. 2021):
                               Euler-Maruyama / improved Euler pair, one step size per sample
============  ========  =====  ==================================================================

A final Tweedie denoising step ``x0 = (x + sigma^2 score) / alpha`` at the last knot is applied
when ``denoise=True`` (one extra score evaluation, as in Song et al.; for the knot samplers it
is the last step to noise level 0 of k-diffusion and diffusers).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from neuralsde.core import reverse, solve
from neuralsde.core.arguments import check_device, positive, positive_int
from neuralsde.core.brownian import BrownianTree
from neuralsde.core.control import SeriesController
from neuralsde.core.loop import DivergenceError
from neuralsde.diffusion.arguments import (
    CheckedScore,
    check_eps,
    check_generator,
    check_shape,
    check_steps,
)
from neuralsde.diffusion.density import LOGP_METHODS, PathDensity, Superposition
from neuralsde.diffusion.edm import restart_path
from neuralsde.diffusion.guidance import as_guidance_list, guided_score
from neuralsde.diffusion.inversion import Inversion, replay
from neuralsde.diffusion.reverse import PredictorCorrectorSDE, tweedie
from neuralsde.diffusion.schedules import schedule_times
from neuralsde.diffusion.score import check_score_fn


class _Sampler(NamedTuple):
    kind: str  # "sde", "pc", "ode", "knot", "adaptive"
    schedule: str | None
    steps: int | None
    stochastic: bool = False


SAMPLERS = {
    "euler": _Sampler("sde", "uniform", 1000, True),
    "pc": _Sampler("pc", "uniform", 500, True),
    "ode": _Sampler("ode", None, None),
    "heun_edm": _Sampler("knot", "karras", 10),
    "ddim": _Sampler("knot", "logsnr", 20),
    "dpmpp_2m": _Sampler("knot", "logsnr", 20),
    "dpmpp_3m": _Sampler("knot", "logsnr", 20),
    "dpmpp_2m_sde": _Sampler("knot", "karras", 20, True),
    "dpmpp_3m_sde": _Sampler("knot", "karras", 20, True),
    "sa_solver": _Sampler("knot", "logsnr", 20, True),
    "er_sde": _Sampler("knot", "karras", 20, True),
    "restart": _Sampler("knot", "karras", 10, True),
    "adaptive": _Sampler("adaptive", None, None, True),
}
ALIASES = {"dpm2": "dpmpp_2m"}
METHODS = tuple(SAMPLERS) + tuple(ALIASES)
DEFAULT_STEPS = {name: s.steps for name, s in SAMPLERS.items()}
# Restart's defaults: EDM noise levels [0.06, 0.30] (Xu et al.'s CIFAR-10 VP interval), 2 cycles
RESTART = {"s_min": 0.06, "s_max": 0.30, "cycles": 2, "restart_steps": 3}
_MARGINALS = ("alpha", "sigma", "t_from_log_snr", "prior_sampling", "T", "eps")


class _Counter:
    """Counts score evaluations (number of function evaluations, NFE)."""

    def __init__(self, fn):
        self.fn, self.nfe = fn, 0

    def __call__(self, x, t):
        self.nfe += 1
        return self.fn(x, t)


def check_forward_sde(sde, method: str) -> None:
    """TypeError unless ``sde`` has the Gaussian marginals the samplers read."""
    missing = [name for name in _MARGINALS if not hasattr(sde, name)]
    if missing:
        raise TypeError(
            f"sde: method={method!r} needs a forward SDE with Gaussian marginals "
            f"N(alpha_t x0, sigma_t^2) (VPSDE, SubVPSDE, VESDE or a ForwardSDE subclass); "
            f"{type(sde).__name__} lacks {missing}"
        )


def sample(
    score_model,
    sde,
    shape,
    method: str = "euler",
    steps: int | None = None,
    guidance=None,
    generator=None,
    *,
    schedule=None,
    eta: float | None = None,
    options: dict | None = None,
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
    return_logp: bool = False,
    t_start: float | None = None,
):
    """Generate ``shape = (batch, *event)`` samples by integrating a reverse-time SDE/ODE.

    Args:
        score_model: callable ``(x: (batch, *event), t: (batch,)) -> score`` (a trained
            :class:`ScoreModel` or an exact score).
        sde: the forward SDE (``VPSDE``, ``SubVPSDE``, ``VESDE``).
        method: a sampler of the module's table (``METHODS``).
        steps: the number of schedule intervals (default: the table's; 50 for ``ode`` with a
            named schedule); for ``ode`` steps or a schedule switch to fixed steps, for
            ``adaptive`` the schedule's first interval is the initial step.
        guidance: an :class:`Inpaint`, :class:`ObservationGuidance`,
            :class:`ResidualGuidance` or a list of them.
        generator: seeds the prior draw and the Brownian path (the stochastic knot samplers
            and ``adaptive`` read a :class:`~neuralsde.core.brownian.BrownianTree`, so the
            same seed gives the same path whatever the schedule). A
            :class:`~neuralsde.core.keyed.KeyedGenerator` draws each row's noise from its key:
            a chunk of rows samples what they sample in the whole batch (except ``pc``,
            whose corrector step averages over the batch).
        schedule: ``"uniform"``, ``"logsnr"``, ``"karras"``, ``"exponential"``, a constructor
            such as ``karras(rho=5)``, ``sigmas(levels)`` or a tensor of forward times from
            ``T`` down to ``eps`` (see :mod:`neuralsde.diffusion.schedules`).
        eta: noise of ``dpmpp_2m_sde`` / ``dpmpp_3m_sde`` (default 1; 0 is the ODE sampler).
        options: the sampler's options, e.g. ``{"churn": 10}`` for ``heun_edm``,
            ``{"order": 2, "phi": f}`` for ``er_sde``, ``{"tau": f}`` for ``sa_solver``,
            ``{"s_min", "s_max", "cycles", "restart_steps"}`` for ``restart``.
        x_T: optional prior sample ``(batch, *event)`` to start from, or an
            :class:`~neuralsde.diffusion.inversion.Inversion` from ``invert``: then it is
            replayed with its own method and knots (``method`` and the schedule arguments are
            not read) and the state at ``eps`` it was inverted from comes back.
        eps: the last knot of a named schedule (default ``sde.eps``).
        rtol, atol: tolerances of ``ode`` (default 1e-4, 1e-4) and ``adaptive`` (0.05, 0.0078,
            Gotta Go Fast's).

        t_start: the forward time of ``x_T`` when the path starts below ``T`` (SDEdit: the
            guide noised to ``t_start``); ``schedule`` is then a tensor of times from
            ``t_start`` down and ``x_T`` is required.
        return_logp: also return the Itô density estimate of ``log p_eps`` at the sampler's
            last state (before the final denoising step), ``(batch,)`` float64, accumulated
            from the scores the sampler evaluates (no extra evaluation, no divergence;
            :mod:`neuralsde.diffusion.density`). Only for samplers whose noise is the forward
            SDE's diffusion: ``euler``.

    Returns:
        ``(batch, *event)`` samples; ``(samples, logp)`` with ``return_logp``; the info dict
        ``{"nfe": ...}`` is appended with ``return_info``.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE, GaussianMixture
        >>> sde, gm = VPSDE(), GaussianMixture.default_2d()
        >>> x = sample(gm.score_fn(sde), sde, (64, 2), method="dpmpp_2m", steps=10,
        ...            schedule="logsnr", generator=torch.Generator().manual_seed(0))
        >>> x.shape
        torch.Size([64, 2])
    """
    if isinstance(x_T, Inversion):  # replay an exact inversion with its own method and knots
        if tuple(x_T.noise.shape) != tuple(shape):
            raise ValueError(f"x_T: the inversion has shape {tuple(x_T.noise.shape)}, not "
                             f"{tuple(shape)}")  # fmt: skip
        return replay(score_model, sde, x_T)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    name = ALIASES.get(method, method)
    spec = SAMPLERS[name]
    check_score_fn(score_model)
    check_forward_sde(sde, method)
    given_steps = steps is not None
    steps = spec.steps if steps is None else check_steps(steps)
    check_generator(generator)
    if isinstance(score_model, Superposition) and name not in LOGP_METHODS:
        raise ValueError(
            f"method={method!r}: a superposition weighs its models by log-densities tracked "
            f"with the Itô estimator, which needs the reverse SDE's noise; use one of "
            f"{list(LOGP_METHODS)}"
        )
    if return_logp and name not in LOGP_METHODS:
        raise ValueError(
            f"return_logp: method={method!r} does not integrate the reverse SDE with the "
            f"forward SDE's diffusion g (the Itô density estimator needs increments with noise "
            f"g, else a divergence term remains); use one of {list(LOGP_METHODS)}"
        )
    eps = None if eps is None else check_eps(eps, sde)
    positive(snr, "snr")
    positive_int(corrector_steps, "corrector_steps")
    device = None if device is None else check_device(device)
    shape = check_shape(shape)
    items = as_guidance_list(guidance)
    for g in items:
        g.check_shape(shape)
    opts = _options(name, options, eta)
    fixed = spec.kind not in ("ode", "adaptive") or schedule is not None or steps is not None
    default = default_schedule(name)
    if t_start is not None:
        t_start = positive(t_start, "t_start")
        if not t_start <= sde.T or x_T is None:
            raise ValueError(
                f"t_start={t_start!r}: a path that starts below T={sde.T:g} needs t_start in "
                f"(0, T] and x_T, a sample of the marginal at t_start"
            )
        if return_logp:
            raise ValueError("return_logp: the Itô estimate starts from the prior at T; "
                             "a path from t_start < T has no density to start from")  # fmt: skip
    knots = schedule_times(default if schedule is None else schedule, sde, steps or 50, eps,
                           t_start)  # fmt: skip
    if given_steps and len(knots) - 1 != steps:
        raise ValueError(
            f"steps={steps} disagrees with the schedule given as data, which has "
            f"{len(knots) - 1} intervals; pass one or the other"
        )
    steps = len(knots) - 1 if fixed else None
    path = knots
    if name == "restart":
        r = {k: opts.pop(k, v) for k, v in RESTART.items()}
        path = restart_path(knots, sde, float(r["s_min"]), float(r["s_max"]),
                            int(r["cycles"]), int(r["restart_steps"]))  # fmt: skip

    if device is None:
        params = list(score_model.parameters()) if hasattr(score_model, "parameters") else []
        device = params[0].device if params else torch.device("cpu")
    if x_T is None:
        x_T = sde.prior_sampling(shape, generator=generator, dtype=dtype).to(device)
    elif tuple(x_T.shape) != shape:
        raise ValueError(f"x_T must have shape {shape}; got {tuple(x_T.shape)}")
    y0 = x_T.reshape(shape[0], -1)

    tracker = PathDensity(score_model, sde) if return_logp else None
    score = CheckedScore(tracker or score_model)  # guidance terms are checked when there are
    if items:
        score = CheckedScore(guided_score(score, sde, items), "the guided score")
    counter = _Counter(score)
    pf = spec.kind in ("ode", "knot")
    sde_type = "stratonovich" if spec.kind in ("ode", "adaptive") else "ito"
    rev = reverse(sde, counter, probability_flow=pf, shape=shape[1:], eps=float(knots[-1]),
                  path=path, sde_type=sde_type)  # fmt: skip
    span = float(rev.knots[-1])
    ts = torch.tensor([0.0, span], dtype=y0.dtype, device=y0.device)
    bm = None
    if spec.kind == "knot":  # noise from a Brownian tree, or none for the ODE samplers
        noisy = spec.stochastic or float(opts.get("churn", 0.0)) > 0
        bm = BrownianTree(0.0, ts[-1], y0.shape, generator=generator, dtype=y0.dtype,
                          device=y0.device) if noisy else _no_noise  # fmt: skip
    if spec.kind == "pc":
        pcs = PredictorCorrectorSDE(rev, snr=float(snr), corrector_steps=int(corrector_steps))
        ts = torch.tensor([0.0, pcs.t_end], dtype=y0.dtype, device=y0.device)
        y = solve(pcs, y0, ts, method="euler", dt=1.0, generator=generator)[-1]
    elif spec.kind == "ode" and not fixed:
        y = solve(rev, y0, ts, method="heun", dt=0.05 * span, controller="doubling",
                  rtol=1e-4 if rtol is None else rtol, atol=1e-4 if atol is None else atol,
                  generator=generator)[-1]  # fmt: skip
    elif spec.kind == "adaptive":
        ctrl = SeriesController(rtol=0.05 if rtol is None else rtol,
                                atol=0.0078 if atol is None else atol)  # fmt: skip
        tree = BrownianTree(0.0, span, y0.shape, generator=generator, dtype=y0.dtype,
                            device=y0.device)  # fmt: skip
        y = solve(rev, y0, ts, method="heun", dt=float(rev.knots[1]), controller=ctrl,
                  bm=tree)[-1]  # fmt: skip
    else:
        core = {"sde": "euler", "ode": "heun"}.get(spec.kind, name)
        y = solve(rev, y0, ts, method=core, grid=torch.from_numpy(rev.knots), bm=bm,
                  options=opts or None, generator=generator)[-1]  # fmt: skip
    x = y.reshape(shape)
    logp = tracker.finish(x, float(knots[-1])) if tracker is not None else None
    if denoise:
        t_end = torch.full((shape[0],), float(knots[-1]), dtype=x.dtype, device=x.device)
        with torch.no_grad() if not items else torch.enable_grad():
            s = counter(x, t_end)
        view = (-1,) + (1,) * (x.dim() - 1)
        x = tweedie(x, s, sde.alpha(t_end).reshape(view), sde.sigma(t_end).reshape(view)).detach()
    if not bool(torch.isfinite(x).all()):
        raise DivergenceError(float(knots[-1]), len(path))
    out = (x,) if logp is None else (x, logp)
    if return_info:
        out += ({"nfe": counter.nfe, "method": method, "steps": steps, "knots": knots},)
    return out if len(out) > 1 else x


def default_schedule(method: str) -> str:
    """The schedule ``method`` samples on when none is given (the module's table)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    return SAMPLERS[ALIASES.get(method, method)].schedule or "uniform"


def _no_noise(ta, tb):
    """The Brownian source of the deterministic knot samplers, which read no noise."""
    return None


def _options(name, options, eta):
    opts = dict(options or {})
    if eta is not None:
        if name not in ("dpmpp_2m_sde", "dpmpp_3m_sde"):
            raise ValueError(f"eta is a parameter of dpmpp_2m_sde and dpmpp_3m_sde, not {name!r}")
        opts["eta"] = float(eta)
    if opts and SAMPLERS[name].kind != "knot":
        raise ValueError(f"options: method={name!r} takes none; got {sorted(opts)}")
    if name == "restart":
        from neuralsde.core.methods import METHODS as CORE

        allowed = set(RESTART) | set(CORE["restart"].option_names)
        unknown = set(opts) - allowed
        if unknown:
            raise ValueError(f"options {sorted(unknown)} are not understood by 'restart'")
    return opts


def sample_nfe(method: str, steps: int) -> int:
    """Score evaluations of a fixed-step run of ``steps`` schedule intervals, the final
    denoising step included (``restart`` with its default cycles)."""
    name = ALIASES.get(method, method)
    n = int(steps)
    if name == "heun_edm":
        return 2 * n + 1
    if name == "restart":
        cycles, r = RESTART["cycles"], RESTART["restart_steps"]
        return 2 * (n + 1 + cycles * r) + 1  # n + 1 steps down (t_min inserted), r per cycle
    if name in (
        "sa_solver",
        "ddim",
        "dpmpp_2m",
        "dpmpp_3m",
        "dpmpp_2m_sde",
        "dpmpp_3m_sde",
        "er_sde",
    ):
        return n + 1
    if name == "euler":
        return n + 1
    if name in ("pc", "ode"):
        return 2 * n + 1
    return math.nan
