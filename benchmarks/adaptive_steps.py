"""Adaptive steps: the embedded-error PI controller against step doubling, at equal accuracy.

For each problem and controller, a sweep of tolerances gives (drift and diffusion evaluations,
strong error at the final time) pairs; the error is ``E|y_T - y_T^ref|`` against a reference
on the same Brownian path (a torchsde ``BrownianInterval``, queryable, shared by every run):

- OU, additive noise: ``dX = -2 X dt + 0.5 dW`` (SRA1, whose embedded estimate is the
  difference to Euler's drift); reference: the exact solution, from a 2^14-step sum over the
  same path;
- a neural SDE (MLP drift and diffusion, diagonal Stratonovich noise, Heun); reference: Heun
  with 2^13 fixed steps on the same path;
- the reverse-time SDE of VP diffusion for Gaussian data ``N(0, 0.25 I)`` (exact score), from
  ``t = 1`` to ``1e-3`` (Heun; the diffusion is state-independent, so Ito = Stratonovich):
  the step must shrink by orders of magnitude near the data; reference: 2^14 Heun steps.

The evaluations needed for a target error are read off each curve by log-log interpolation;
the table gives their ratio (step doubling / PI). Run: ``python benchmarks/adaptive_steps.py``.

Where the best steps are about even, the ratio cannot much exceed 1.5: step doubling spends
three steps per attempt and keeps the two half steps, so for the same accuracy (steps of
``h/2``) it costs 3 method steps per ``h`` against PI's 2. The PI controller gains beyond that
only by rejecting fewer steps.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torchsde
from _common import markdown, write

from neuralsde import SDE, solve
from neuralsde.examples import NeuralSDE

F64 = torch.float64


class Counted(SDE):
    """Counts drift and diffusion evaluations of the wrapped SDE (f_and_g counts two)."""

    def __init__(self, sde):
        super().__init__(noise_type=sde.noise_type, sde_type=sde.sde_type)
        self.sde, self.count = sde, 0

    def f(self, t, y):
        self.count += 1
        return self.sde.f(t, y)

    def g(self, t, y):
        self.count += 1
        return self.sde.g(t, y)


class OU(SDE):
    noise_type, sde_type = "additive", "ito"
    theta, sigma = 2.0, 0.5

    def f(self, t, y):
        return -self.theta * y

    def g(self, t, y):
        return torch.full((y.shape[0], y.shape[1], 1), self.sigma, dtype=y.dtype)


def ou_reference(y0, bm, T=1.0, n=2**14):
    """``X_T = e^{-theta T} X_0 + sigma int_0^T e^{-theta (T - s)} dW_s``: on each fine step
    ``e^{-theta (T - s)}`` is expanded about the step's end, and ``int (b - s) dW = U``."""
    th, s = OU.theta, OU.sigma
    h = T / n
    out = math.exp(-th * T) * y0
    for k in range(n):
        b = (k + 1) * h
        dw, u = bm(b - h, b, return_U=True)
        e = math.exp(-th * (T - b))
        # int_a^b e^{-th (T - s)} dW_s = e (dW - th int_a^b (b - s) dW_s) + O(h^2), and
        # int_a^b (b - s) dW_s = int_a^b (W_s - W_a) ds = U (integration by parts)
        out = out + s * e * (dw - th * u)
    return out


def sweep(sde, y0, ts, method, bm, ref, controller, tolerances, dt0):
    rows = []
    for tol in tolerances:
        counted = Counted(sde)
        with torch.no_grad():
            y = solve(counted, y0, ts, method=method, dt=dt0, rtol=tol, atol=tol, bm=bm,
                      controller=controller, dt_min=1e-7)[-1]  # fmt: skip
        rows.append({"tol": tol, "evals": counted.count,
                     "error": float((y - ref).abs().mean())})  # fmt: skip
    return rows


def evals_at(rows, target):
    """Evaluations needed for ``target`` error, by log-log interpolation along the sweep."""
    err = np.log([r["error"] for r in rows])
    ev = np.log([r["evals"] for r in rows])
    order = np.argsort(-err)  # decreasing error
    err, ev = err[order], ev[order]
    if not err[-1] <= math.log(target) <= err[0]:
        return math.nan
    return float(np.exp(np.interp(-math.log(target), -err, ev)))


def problems(batch):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    ou = OU()
    y0 = torch.ones(batch, 1, dtype=F64)
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(batch, 1), dtype=F64, entropy=3,
                                   levy_area_approximation="space-time")  # fmt: skip
    yield "OU (SRA1)", ou, y0, "srk", bm, ou_reference(y0, bm)
    net = NeuralSDE(4, width=32, depth=2, sde_type="stratonovich").double()
    z0 = torch.randn(batch, 4, dtype=F64, generator=gen)
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(batch, 4), dtype=F64, entropy=5)
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    with torch.no_grad():
        ref = solve(net, z0, ts, method="heun", dt=2**-13, bm=bm)[-1]
    yield "neural SDE (Heun)", net, z0, "heun", bm, ref
    from neuralsde import reverse
    from neuralsde.diffusion import VPSDE

    vp, v = VPSDE(), 0.25

    def score(x, t):
        a, s = vp.alpha(t).unsqueeze(-1), vp.sigma(t).unsqueeze(-1)
        return -x / (a**2 * v + s**2)

    rev = reverse(vp, score, shape=(2,), sde_type="stratonovich")
    x1 = torch.randn(batch, 2, dtype=F64, generator=gen)
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(batch, 2), dtype=F64, entropy=7)
    with torch.no_grad():
        ref = solve(rev, x1, ts, method="heun", dt=2**-14, bm=bm)[-1]
    yield "VP reverse SDE, Gaussian data (Heun)", rev, x1, "heun", bm, ref


def main(batch=256, tolerances=None):
    tolerances = tolerances or [10 ** (-k / 4) for k in range(4, 21)]
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    results, table = {}, []
    for name, sde, y0, method, bm, ref in problems(batch):
        curves = {c: sweep(sde, y0, ts, method, bm, ref, c, tolerances, 0.05)
                  for c in ("doubling", "pi")}  # fmt: skip
        lo = max(min(r["error"] for r in curves[c]) for c in curves)
        hi = min(max(r["error"] for r in curves[c]) for c in curves)
        targets = np.geomspace(hi, lo, 5)[1:-1]
        ratios = []
        for target in targets:
            d, p = evals_at(curves["doubling"], target), evals_at(curves["pi"], target)
            ratios.append(d / p)
            table.append([name, f"{target:.2e}", f"{d:.0f}", f"{p:.0f}", f"{d / p:.2f}x"])
        results[name] = {"curves": curves, "targets": targets.tolist(), "ratios": ratios}
    md = markdown(
        ["problem", "strong error at T", "step doubling evals", "PI (embedded) evals",
         "doubling / PI"], table,
    )  # fmt: skip
    write("adaptive_steps", {"batch": batch, "results": results}, md)
    return results


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    main(batch=a.batch)
