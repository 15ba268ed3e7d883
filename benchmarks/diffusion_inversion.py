"""Exact inversion (issue 16, item 3): the relative round-trip error of ``sample(invert(x0))``
for reversible Heun on the probability-flow ODE and on the reverse SDE (its Brownian path
regenerated from a seed), against the naive DDIM inversion, at 20 and 100 steps, in float32
and float64, on trajectory windows and on a Darcy field of the shipped checkpoint.

    python benchmarks/diffusion_inversion.py
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from _common import markdown, write

from neuralsde.diffusion import VPSDE, ScoreMLP, ScoreModel, load_checkpoint, sample
from neuralsde.diffusion.inversion import invert

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("reversible_heun", "reversible_heun_sde", "ddim")


def trip(model, sde, x0, method, steps):
    with torch.no_grad():
        inv = invert(model, sde, x0, method=method, steps=steps)
        back = sample(model, sde, tuple(x0.shape), x_T=inv)
    return float((back.double() - x0.double()).norm() / x0.double().norm())


def main() -> None:
    torch.manual_seed(0)
    rows, results = [], {}
    start = time.perf_counter()
    net = ScoreMLP((32, 1), hidden=256, depth=4)
    cases = []
    for dtype in (torch.float32, torch.float64):
        model = ScoreModel(copy.deepcopy(net).to(dtype), VPSDE()).eval()
        g = torch.Generator().manual_seed(1)
        x0 = torch.cumsum(torch.randn(64, 32, 1, generator=g, dtype=dtype), 1) / 4
        cases.append((f"trajectory windows (64 x 32), {str(dtype)[6:]}", model, x0))
    ckpt = ROOT / "models" / "darcy_score_64.pt"
    if ckpt.exists():
        darcy, _ = load_checkpoint(ckpt)
        with torch.no_grad():
            field = sample(darcy, darcy.sde, (1, 2, 64, 64), method="dpmpp_2m", steps=10,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
        cases.append(("Darcy field (2 x 64 x 64, shipped checkpoint), float32", darcy, field))
    for name, model, x0 in cases:
        for steps in (20, 100):
            errs = {m: trip(model, model.sde, x0, m, steps) for m in METHODS}
            results[f"{name}/{steps}"] = errs
            rows.append([name, str(steps)] + [f"{errs[m]:.1e}" for m in METHODS])
    md = markdown(["data", "steps", "reversible Heun, ODE", "reversible Heun, SDE",
                   "naive DDIM inversion"], rows)  # fmt: skip
    md += (
        f"\n\nRelative round-trip error |sample(invert(x0)) - x0| / |x0| (logsnr knots). "
        f"The trajectory model is an untrained ScoreMLP (inversion does not need a good "
        f"model); reversible Heun keeps its state pair in float64 and runs the network in the "
        f"data's dtype. {time.perf_counter() - start:.0f} s in all.\n"
    )
    write("diffusion_inversion", {"round_trip": results}, md)


if __name__ == "__main__":
    main()
