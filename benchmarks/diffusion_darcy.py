"""Darcy forward and inverse problems from ~3% observed points with the shipped joint [a; u]
score model, with and without PDE-residual guidance, against physics baselines.

Forward: ``a`` observed at 3% of the nodes, predict ``u`` (relative L2 of the sample mean).
Inverse: ``u`` observed at 3% of the nodes, predict ``a`` (error rate of the thresholded
sample mean). Baseline (forward): interpolate the sparse ``a`` (nearest / linear, then
threshold to {3, 12}), then solve the PDE. Baseline (inverse): the better constant field.
Guidance weights are chosen on separate validation fields (``--tune``), never on test fields.

    python benchmarks/diffusion_darcy.py --device cuda --tune        # as run for the results
    python benchmarks/diffusion_darcy.py --fields 4 --steps 50       # a CPU smoke run

Writes benchmarks/results/diffusion_darcy.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuralsde.diffusion.fields import DarcyFields, interpolate_sparse, random_mask, threshold_a
from neuralsde.pde import darcy_dataset, solve_darcy

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"


def rel_l2(pred, true):
    return ((pred - true).norm(dim=(-2, -1)) / true.norm(dim=(-2, -1))).cpu().numpy()


def evaluate(
    fields, a, u, mask, *, samples, steps, method, obs_weight, residual_weight, sigma_y, seed, chunk
):
    """Per-field forward rel. L2 of u and inverse error rate of a."""
    fwd, inv, fwd_a_err = [], [], []
    for lo in range(0, a.shape[0], chunk):
        sl = slice(lo, lo + chunk)
        kw = dict(
            method=method,
            steps=steps,
            obs_weight=obs_weight,
            sigma_y=sigma_y,
            residual_weight=residual_weight,
            generator=torch.Generator().manual_seed(seed),
        )
        A, U = fields.sample(samples, a_obs=a[sl], a_mask=mask[sl], **kw)
        fwd += list(rel_l2(U.mean(1).cpu(), u[sl]))
        fwd_a_err += list((threshold_a(A.mean(1).cpu()) != a[sl]).float().mean((-2, -1)).numpy())
        A, U = fields.sample(samples, u_obs=u[sl], u_mask=mask[sl], **kw)
        inv += list((threshold_a(A.mean(1).cpu()) != a[sl]).float().mean((-2, -1)).numpy())
    return np.array(fwd), np.array(inv), np.array(fwd_a_err)


def baselines(a, u, mask):
    out = {}
    for kind in ("nearest", "linear"):
        errs = []
        for i in range(a.shape[0]):
            ai = interpolate_sparse(a[i].numpy(), mask[i].numpy(), kind)
            ai = np.where(ai >= 7.5, 12.0, 3.0)
            errs.append(float(rel_l2(torch.tensor(solve_darcy(ai))[None], u[i : i + 1])[0]))
        out[f"forward_interp_{kind}_then_solve_relL2"] = float(np.mean(errs))
    frac = (a == 12.0).float().mean((-2, -1)).numpy()
    out["inverse_best_constant_error_rate"] = float(np.mean(np.minimum(frac, 1 - frac)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default=str(ROOT / "models" / "darcy_score_64.pt"))
    p.add_argument("--fields", type=int, default=20)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--method", default="euler")
    p.add_argument("--fraction", type=float, default=0.03)
    p.add_argument("--obs-weight", type=float, default=100.0)
    p.add_argument("--residual-weight", type=float, default=0.03)
    p.add_argument("--sigma-y", type=float, default=0.05)
    p.add_argument("--tune", action="store_true", help="pick weights on validation fields")
    p.add_argument("--tune-fields", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--chunk", type=int, default=20)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(2 if args.device == "cpu" else 8)
    fields = DarcyFields.from_checkpoint(args.checkpoint)
    fields.model.to(args.device)
    n = fields.n
    t0 = time.time()
    a_np, u_np = darcy_dataset(args.fields, n=n, seed=12345)
    a, u = torch.tensor(a_np), torch.tensor(u_np)
    mask = random_mask(n, args.fraction, torch.Generator().manual_seed(1), fields=args.fields)
    base = dict(
        samples=args.samples,
        steps=args.steps,
        method=args.method,
        seed=0,
        chunk=args.chunk,
        sigma_y=args.sigma_y,
    )
    obs_w, res_w, tuning = args.obs_weight, args.residual_weight, []
    if args.tune:
        nv = args.tune_fields
        va, vu = (torch.tensor(v) for v in darcy_dataset(nv, n=n, seed=777))
        vm = random_mask(n, args.fraction, torch.Generator().manual_seed(2), fields=nv)
        tb = {**base, "samples": 1}

        def trial(ow, rw):
            f, i, _ = evaluate(fields, va, vu, vm, obs_weight=ow, residual_weight=rw, **tb)
            tuning.append(
                {
                    "obs_weight": ow,
                    "residual_weight": rw,
                    "forward_relL2": float(f.mean()),
                    "inverse_error": float(i.mean()),
                }
            )
            print(tuning[-1], flush=True)
            return tuning[-1]["forward_relL2"] + tuning[-1]["inverse_error"]

        # stage 1: observation weight without the residual; stage 2: the residual weight
        obs_w = min([30.0, 100.0, 300.0], key=lambda ow: trial(ow, 0.0))
        res_w = min([0.003, 0.03, 0.3], key=lambda rw: trial(obs_w, rw))
    rows = {}
    for name, rw in (("no_pde_guidance", 0.0), ("pde_guidance", res_w)):
        t1 = time.time()
        f, i, fa = evaluate(fields, a, u, mask, obs_weight=obs_w, residual_weight=rw, **base)
        rows[name] = {
            "residual_weight": rw,
            "forward_relL2_mean": float(f.mean()),
            "forward_relL2_std": float(f.std()),
            "forward_a_error_rate": float(fa.mean()),
            "inverse_error_rate_mean": float(i.mean()),
            "inverse_error_rate_std": float(i.std()),
            "seconds": time.time() - t1,
        }
        print(name, rows[name], flush=True)
    res = {
        "resolution": n,
        "fields": args.fields,
        "observed_fraction": args.fraction,
        "observed_points": int(mask[0].sum()),
        "samples_per_field": args.samples,
        "method": args.method,
        "steps": args.steps,
        "obs_weight": obs_w,
        "sigma_y": args.sigma_y,
        "device": str(args.device),
        "diffusion": rows,
        "baselines": baselines(a, u, mask),
        "tuning_on_validation_fields": tuning,
        "seconds": time.time() - t0,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diffusion_darcy.json").write_text(json.dumps(res, indent=1, default=float))
    b = res["baselines"]
    lines = [
        f"# Darcy {n}x{n}: forward and inverse from {args.fraction:.0%} observed points",
        "",
        f"{args.fields} test fields, {res['observed_points']} observed nodes each, "
        f"{args.samples} samples per field ({args.method}, {args.steps} steps), device "
        f"{args.device}. Weights (obs {obs_w}, residual {res_w})"
        + (f" chosen on {args.tune_fields} validation fields." if args.tune else " fixed."),
        "",
        "| model | forward rel. L2 of u | inverse error rate of a |",
        "|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| diffusion, {name.replace('_', ' ')} | {r['forward_relL2_mean']:.3f} +- "
            f"{r['forward_relL2_std']:.3f} | {r['inverse_error_rate_mean']:.3f} +- "
            f"{r['inverse_error_rate_std']:.3f} |"
        )
    lines.append(
        f"| interpolate a (nearest) then solve | "
        f"{b['forward_interp_nearest_then_solve_relL2']:.3f} | - |"
    )
    lines.append(
        f"| interpolate a (linear) then solve | "
        f"{b['forward_interp_linear_then_solve_relL2']:.3f} | - |"
    )
    lines.append(f"| best constant a | - | {b['inverse_best_constant_error_rate']:.3f} |")
    (out / "diffusion_darcy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
