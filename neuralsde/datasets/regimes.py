"""Piecewise (regime-switching) SDE series with known change points.

Between change points the series follows one OU regime dX = theta (mu - X) dt + sigma dW
(sampled exactly), or for ``kind="hurst"`` a fractional OU regime driven by fractional
Gaussian noise of Hurst index H. The state is continuous across a change; only the dynamics
switch. Change point ``c`` (an index into ``time``) means the dynamics of segment ``k + 1``
apply from ``time[c]`` on: ``values[:, :c]`` and ``values[:, c:]`` are the two segments
(the ruptures convention), and ``regime[i]`` is the segment of index ``i``.
"""

from __future__ import annotations

import json
from math import gamma

import numpy as np

from ._build import check_positive_int, make_dataset, rng_from, time_grid
from .fractional import davies_harte_fgn

__all__ = ["KINDS", "simulate_regime_switching"]

KINDS = ("mean", "volatility", "mean_reversion", "hurst")

_VARIANCE = 0.25  # stationary variance held fixed where the kind asks for it


def _default_segments(kind: str, n_segments: int) -> list[dict]:
    if kind == "mean":
        base = [{"mu": 0.0, "theta": 2.0, "sigma": 0.5}, {"mu": 1.5, "theta": 2.0, "sigma": 0.5}]
    elif kind == "volatility":
        base = [{"mu": 0.0, "theta": 2.0, "sigma": 0.3}, {"mu": 0.0, "theta": 2.0, "sigma": 1.2}]
    elif kind == "mean_reversion":
        base = [
            {"mu": 0.0, "theta": th, "sigma": float(np.sqrt(2 * th * _VARIANCE))}
            for th in (0.5, 8.0)
        ]
    else:
        base = [
            {"mu": 0.0, "theta": 2.0, "hurst": h, "sigma": _fou_sigma(h, 2.0, _VARIANCE)}
            for h in (0.3, 0.8)
        ]
    return [dict(base[k % 2]) for k in range(n_segments)]


def _fou_sigma(hurst: float, theta: float, variance: float) -> float:
    """sigma giving the stationary fOU variance sigma^2 H Gamma(2H) theta^(-2H) = variance."""
    return float(np.sqrt(variance * theta ** (2 * hurst) / (hurst * gamma(2 * hurst))))


def _change_indices(change_points, n_times: int) -> np.ndarray:
    cps = np.atleast_1d(np.asarray(change_points, dtype=np.float64))
    if cps.size and np.all((cps > 0) & (cps < 1)):
        idx = np.rint(cps * n_times).astype(int)
    elif cps.size and np.all(cps == np.round(cps)):
        idx = cps.astype(int)
    else:
        raise ValueError(
            "change_points must be fractions in (0, 1) or integer indices, got "
            f"{list(np.atleast_1d(change_points))}"
        )
    if np.any(idx < 1) or np.any(idx > n_times - 1) or np.any(np.diff(idx) <= 0):
        raise ValueError(
            f"change_points must give strictly increasing indices in [1, {n_times - 1}], got "
            f"{idx.tolist()}"
        )
    return idx


def simulate_regime_switching(
    n_series: int = 8,
    n_times: int = 400,
    kind: str = "mean",
    *,
    change_points=(0.5,),
    segments: list[dict] | None = None,
    t_end: float = 20.0,
    times=None,
    irregular: bool = False,
    seed=0,
):
    """Series whose SDE switches regime at known change points.

    Args:
        kind: what changes between segments (defaults alternate between two regimes):
            ``"mean"`` (mu 0 -> 1.5; theta 2, sigma 0.5),
            ``"volatility"`` (sigma 0.3 -> 1.2; theta 2, mu 0),
            ``"mean_reversion"`` (theta 0.5 -> 8 with sigma^2 / (2 theta) = 0.25 held fixed, so
            the stationary variance does not change),
            ``"hurst"`` (fractional OU, H 0.3 -> 0.8, theta 2, sigma chosen so that the
            stationary variance sigma^2 H Gamma(2H) theta^(-2H) stays 0.25; regular times only).
        change_points: fractions of ``n_times`` in (0, 1) or integer indices.
        segments: one dict per segment with keys ``mu, theta, sigma`` (and ``hurst`` for
            ``"hurst"``) overriding the defaults.
        times / irregular / t_end / n_times / seed: as in ``simulate_ou``.

    Returns:
        Dataset with ``values (series, time, channel)``, ``regime (time)``, and over the dim
        ``change_point``: ``change_index`` (int) and ``change_time``; ``attrs`` repeat them
        (``change_points``, ``change_times``) with ``kind`` and ``segments`` (JSON).

    Example:
        >>> ds = simulate_regime_switching(2, 100, "volatility", change_points=[40, 70])
        >>> ds["change_index"].values.tolist(), ds.attrs["change_points"]
        ([40, 70], [40, 70])
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    n_series = check_positive_int(n_series, "n_series")
    rng = rng_from(seed)
    t = time_grid(n_times, t_end, times, irregular, rng)
    cps = _change_indices(change_points, len(t))
    n_seg = len(cps) + 1
    params = _default_segments(kind, n_seg)
    if segments is not None:
        if len(segments) != n_seg:
            raise ValueError(
                f"segments must hold {n_seg} dicts (one per segment), got {len(segments)}"
            )
        params = [{**p, **s} for p, s in zip(params, segments, strict=True)]
    regime = np.searchsorted(cps, np.arange(len(t)), side="right")
    if kind == "hurst":
        x = _fractional_regimes(t, regime, params, n_series, rng)
    else:
        x = _ou_regimes(t, regime, params, n_series, rng)
    return make_dataset(
        x[..., None],
        t,
        channel=["x"],
        extra={
            "regime": ("time", regime.astype(np.int64)),
            "change_index": ("change_point", cps.astype(np.int64)),
            "change_time": ("change_point", t[cps]),
        },
        attrs={
            "name": f"regime-switching SDE ({kind})",
            "source": "neuralsde.datasets.simulate_regime_switching",
            "licence": "MIT (synthetic)",
            "kind": kind,
            "change_points": cps.tolist(),
            "change_times": t[cps].tolist(),
            "segments": json.dumps(params),
        },
    )


def _ou_regimes(t, regime, params, n_series, rng) -> np.ndarray:
    p0 = params[0]
    x = np.empty((n_series, len(t)))
    x[:, 0] = p0["mu"] + p0["sigma"] / np.sqrt(2 * p0["theta"]) * rng.standard_normal(n_series)
    for k, h in enumerate(np.diff(t)):
        p = params[regime[k]]
        a = np.exp(-p["theta"] * h)
        sd = p["sigma"] * np.sqrt((1 - a * a) / (2 * p["theta"]))
        x[:, k + 1] = p["mu"] + (x[:, k] - p["mu"]) * a + sd * rng.standard_normal(n_series)
    return x


def _fractional_regimes(t, regime, params, n_series, rng) -> np.ndarray:
    steps = np.diff(t)
    if not np.allclose(steps, steps[0], rtol=1e-10, atol=0):
        raise ValueError('kind="hurst" needs regular times (Davies-Harte fractional noise)')
    theta_max = max(p["theta"] for p in params)
    sub = max(1, int(np.ceil(steps[0] * theta_max / 1e-2)))
    h = steps[0] / sub
    fine_regime = np.repeat(regime[:-1], sub)
    # independent exact fractional Gaussian noise within each segment, scaled to step h
    dB = np.empty((n_series, fine_regime.shape[0]))
    for k, p in enumerate(params):
        sel = np.flatnonzero(fine_regime == k)
        if sel.size:
            dB[:, sel] = davies_harte_fgn(sel.size, p["hurst"], n_series, rng) * h ** p["hurst"]
    p0 = params[0]
    var0 = (
        p0["sigma"] ** 2 * p0["hurst"] * gamma(2 * p0["hurst"]) * p0["theta"] ** (-2 * p0["hurst"])
    )
    state = p0["mu"] + np.sqrt(var0) * rng.standard_normal(n_series)
    out = np.empty((n_series, len(t)))
    out[:, 0] = state
    for j in range(fine_regime.shape[0]):
        p = params[fine_regime[j]]
        a = np.exp(-p["theta"] * h)
        state = p["mu"] + (state - p["mu"]) * a + p["sigma"] * (1 - a) / (p["theta"] * h) * dB[:, j]
        if (j + 1) % sub == 0:
            out[:, (j + 1) // sub] = state
    return out
