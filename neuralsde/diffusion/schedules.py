"""Sampling schedules as data: the knots ``T = t_0 > t_1 > ... > t_N = eps`` a sampler steps on.

A schedule is given to :func:`~neuralsde.diffusion.sample` as

- a named constructor: ``"uniform"`` (uniform in ``t``), ``"logsnr"`` (uniform in the log
  signal-to-noise ratio ``lambda = log(alpha / sigma)``), ``"karras"`` (EDM, Karras et al.
  2022: uniform in ``sigma^(1/rho)`` of the EDM noise level, ``rho = 7``) or
  ``"exponential"`` (uniform in the log of the EDM noise level: k-diffusion's and diffusers'
  exponential sigmas), or a configured one such as ``karras(rho=5)``;
- a tensor of forward times ``t_i``;
- :func:`sigmas` of a tensor of EDM noise levels ``sigma_i = sigma_t / alpha_t`` (k-diffusion's
  ``sigmas``; a trailing 0 is dropped: the final denoising step is that jump).

The EDM noise level ``sigma_t / alpha_t = exp(-lambda_t)`` is the one all Gaussian forward
SDEs share (for VE it is the SDE's own sigma). Uniform in its log is uniform in ``lambda``, so
``"exponential"`` (the name k-diffusion and diffusers use) and ``"logsnr"`` (DPM-Solver's)
give the same knots; both names are accepted.

Example:
    >>> from neuralsde.diffusion import VPSDE
    >>> knots = schedule_times("karras", VPSDE(), steps=4)
    >>> knots.shape, float(knots[0]), float(knots[-1])
    (torch.Size([5]), 1.0, 0.001)
"""

from __future__ import annotations

import torch

NAMES = ("uniform", "logsnr", "karras", "exponential")


class Schedule:
    """A named schedule constructor with its parameters; ``times(sde, steps, eps)`` builds the
    float64 knots ``(steps + 1,)`` from ``sde.T`` down to ``eps``."""

    def __init__(self, name: str, **params):
        if name not in NAMES:
            raise ValueError(f"unknown schedule {name!r}; choose one of {list(NAMES)}")
        self.name, self.params = name, params

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({inner})"

    def times(self, sde, steps: int, eps: float) -> torch.Tensor:
        T = torch.tensor(sde.T, dtype=torch.float64)
        e = torch.tensor(eps, dtype=torch.float64)
        u = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
        if self.name == "uniform":
            return T + u * (e - T)
        lam0, lam1 = _log_snr(sde, T), _log_snr(sde, e)
        if self.name == "exponential":  # geometric EDM levels, computed as such
            ls0, ls1 = -lam0, -lam1
            return _ends(sde.t_from_log_snr(-(ls0 + u * (ls1 - ls0))), T, e)
        if self.name == "logsnr":
            return _ends(sde.t_from_log_snr(lam0 + u * (lam1 - lam0)), T, e)
        rho = float(self.params.get("rho", 7.0))
        if not rho > 0:
            raise ValueError(f"karras: rho must be positive; got {rho!r}")
        s0, s1 = torch.exp(-lam0) ** (1 / rho), torch.exp(-lam1) ** (1 / rho)
        return _ends(sde.t_from_log_snr(-rho * torch.log(s0 + u * (s1 - s0))), T, e)


class Sigmas:
    """A schedule given as EDM noise levels ``sigma_t / alpha_t`` (decreasing)."""

    def __init__(self, values):
        self.values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)

    def __repr__(self) -> str:
        return f"sigmas({self.values.tolist()})"

    def times(self, sde, steps=None, eps=None) -> torch.Tensor:
        v = self.values
        if len(v) > 1 and float(v[-1]) == 0.0:
            v = v[:-1]
        if not bool((v > 0).all()):
            raise ValueError(f"schedule: noise levels must be positive; got {v.tolist()}")
        return sde.t_from_log_snr(-torch.log(v)).double()


def uniform() -> Schedule:
    """Knots uniform in forward time ``t``."""
    return Schedule("uniform")


def logsnr() -> Schedule:
    """Knots uniform in ``lambda = log(alpha_t / sigma_t)`` (DPM-Solver's choice)."""
    return Schedule("logsnr")


def karras(rho: float = 7.0) -> Schedule:
    """EDM's knots (Karras et al. 2022, eq. 5): uniform in ``sigma^(1/rho)`` of the EDM noise
    level ``sigma = sigma_t / alpha_t``."""
    return Schedule("karras", rho=rho)


def exponential() -> Schedule:
    """Knots uniform in the log of the EDM noise level ``sigma_t / alpha_t`` (k-diffusion's
    ``get_sigmas_exponential``); the same knots as :func:`logsnr`."""
    return Schedule("exponential")


def sigmas(values) -> Sigmas:
    """A schedule of EDM noise levels ``sigma_t / alpha_t``, decreasing (a trailing 0 is
    allowed and dropped)."""
    return Sigmas(values)


def schedule_times(schedule, sde, steps: int, eps: float | None = None,
                   start: float | None = None) -> torch.Tensor:  # fmt: skip
    """The float64 knots ``(N + 1,)`` of ``schedule`` for ``sde``, checked: strictly
    decreasing, starting at the prior (``t_0 = sde.T``), ending at a positive time.

    ``schedule``: a name of :data:`NAMES`, a :class:`Schedule`, :func:`sigmas` or a tensor of
    forward times. ``steps`` and ``eps`` (default ``sde.eps``) are read by named schedules.
    ``start``: a partial path from ``t_0 = start < T`` (SDEdit); its knots must be a tensor.
    """
    eps = float(sde.eps if eps is None else eps)
    if start is not None:
        if isinstance(schedule, str | Schedule | Sigmas) or not hasattr(schedule, "__len__"):
            raise ValueError(
                f"schedule: a path that starts at t_start={start:g} takes its knots as a tensor "
                f"of times from t_start down; got {schedule!r}"
            )
        return check_knots(torch.as_tensor(schedule).detach().to("cpu", torch.float64)
                           .reshape(-1), sde, start)  # fmt: skip
    if isinstance(schedule, str):
        schedule = Schedule(schedule)
    if isinstance(schedule, (Schedule, Sigmas)):
        knots = schedule.times(sde, steps, eps)
        try:
            return check_knots(knots, sde)
        except ValueError as err:  # the knots came from eps and steps: say so
            raise ValueError(
                f"{err} (the knots were built from eps={eps:g} and steps={steps}; a positive "
                f"eps keeps them apart)"
            ) from None
    elif isinstance(schedule, (torch.Tensor, list, tuple)) or hasattr(schedule, "__array__"):
        knots = torch.as_tensor(schedule).detach().to("cpu", torch.float64).reshape(-1)
    else:
        raise TypeError(
            f"schedule must be a name of {list(NAMES)}, a constructor such as karras(rho=7), "
            f"sigmas(tensor) or a tensor of times; got {type(schedule).__name__}"
        )
    return check_knots(knots, sde)


def check_knots(knots: torch.Tensor, sde, start: float | None = None) -> torch.Tensor:
    """Raise ValueError unless ``knots`` decrease strictly from ``start`` (default ``sde.T``)
    to a time in ``(0, T)``; returns them with the first knot set to exactly ``start``."""
    if knots.numel() < 2:
        raise ValueError(f"schedule must hold at least 2 times; got {knots.tolist()}")
    if not bool(torch.isfinite(knots).all()):
        raise ValueError(f"schedule must be finite; got {knots.tolist()}")
    d = torch.diff(knots)
    if not bool((d < 0).all()):
        i = int(torch.nonzero(d >= 0)[0])
        raise ValueError(
            f"schedule must decrease strictly in t (increase in noise level backwards); got "
            f"t[{i}]={float(knots[i]):.6g} followed by t[{i + 1}]={float(knots[i + 1]):.6g}"
        )
    if start is not None and abs(float(knots[0]) - start) > 1e-6 * max(1.0, sde.T):
        raise ValueError(f"schedule must start at t_start={start:g}; it starts at "
                         f"t = {float(knots[0]):.6g}")  # fmt: skip
    if start is None and abs(float(knots[0]) - sde.T) > 1e-6 * max(1.0, sde.T):
        s = float(sde.sigma(torch.tensor(float(knots[0]), dtype=torch.float64)))
        raise ValueError(
            f"schedule must start at the prior, t = T = {sde.T:g}; it starts at "
            f"t = {float(knots[0]):.6g} (noise level sigma_t = {s:.4g}), where samples from "
            f"the prior N(0, {sde.prior_std:g}^2) are not yet distributed as p_t"
        )
    if not float(knots[-1]) > 0:
        raise ValueError(
            f"schedule must end at a time eps > 0 (the final denoising step jumps to t = 0); "
            f"got t = {float(knots[-1]):.6g}"
        )
    knots = knots.clone()
    knots[0] = sde.T if start is None else start
    return knots


def _log_snr(sde, t):
    return torch.log(sde.alpha(t)) - torch.log(sde.sigma(t))


def _ends(t, T, e):
    t = t.double().clone()
    t[0], t[-1] = T, e
    return t


def edm_sigma(sde, t) -> torch.Tensor:
    """EDM noise level ``sigma_t / alpha_t`` at forward time ``t``."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return sde.sigma(t) / sde.alpha(t)


__all__ = [
    "NAMES",
    "Schedule",
    "Sigmas",
    "check_knots",
    "edm_sigma",
    "exponential",
    "karras",
    "logsnr",
    "schedule_times",
    "sigmas",
    "uniform",
]
