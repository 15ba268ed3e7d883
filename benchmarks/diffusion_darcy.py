"""Darcy forward and inverse problems from ~3% observed points with a shipped joint [a; u]
score model, with and without PDE-residual guidance, against physics baselines.

DiffusionPDE's protocol (Huang et al. 2024, ``scripts/generate_darcy.py``): EDM's Heun sampler
on the Karras schedule (``--method heun_edm``), observation guidance alone for the first 80% of
the steps, then the PDE residual added and the observation weight multiplied by 0.1
(``--switch 0.8 --late-obs-factor 0.1``). DiffusionPDE scores one draw per field; here the
estimate is ``DarcyFields.estimate`` over ``--samples`` draws, and the one-draw errors
(averaged over the draws) are reported beside it.

Forward: ``a`` observed at 3% of the nodes, predict ``u`` (relative L2 of the sample mean).
Inverse: ``u`` observed at 3% of the nodes, predict ``a`` (error rate of the thresholded
sample mean). Baseline (forward): interpolate the sparse ``a`` (nearest / linear, then
threshold to {3, 12}), then solve the PDE. Baseline (inverse): the better constant field.
Guidance weights are chosen on separate validation fields (``--tune``), never on test fields.

    python benchmarks/diffusion_darcy.py --checkpoint models/darcy_score_32.pt --fields 100 \
        --samples 16 --method heun_edm --steps 100 --tune --tune-fields 8 --residual-grid 0.1 0.3 \
        --store-settings                                      # as run for the 32 x 32 results
    python benchmarks/diffusion_darcy.py --fields 4 --samples 2 --steps 10  # smoke run

Writes benchmarks/results/diffusion_darcy_<n>.{json,md} and a truth / mean / std plot of one
forward and one inverse test field (``--plot-samples`` samples each).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuralsde.core.loop import DivergenceError
from neuralsde.diffusion.checkpoint import load_checkpoint, save_checkpoint
from neuralsde.diffusion.fields import (
    DarcyFields,
    estimate_from_samples,
    interpolate_sparse,
    random_mask,
    threshold_a,
)
from neuralsde.pde import darcy_dataset, solve_darcy

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"


def rel_l2(pred, true):
    return ((pred - true).norm(dim=(-2, -1)) / true.norm(dim=(-2, -1))).cpu().numpy()


def evaluate(fields, a, u, mask, *, samples, seed, chunk, **sampler):
    """Per-field errors of the estimate from ``samples`` draws (``DarcyFields.estimate``: the
    sample mean of u, the thresholded sample mean of a) and of single draws (averaged over the
    draws): forward rel. L2 of u, its a's error rate, inverse error rate of a. ``sampler``:
    the keyword settings of ``DarcyFields.sample``."""
    out = {k: [] for k in ("forward", "forward_a", "inverse", "forward_1", "inverse_1")}
    for lo in range(0, a.shape[0], chunk):
        sl = slice(lo, lo + chunk)
        kw = {**sampler, "generator": torch.Generator().manual_seed(seed)}
        A, U = fields.sample(samples, a_obs=a[sl], a_mask=mask[sl], **kw)
        est = estimate_from_samples(A, U)
        out["forward"] += list(rel_l2(est.u, u[sl]))
        out["forward_a"] += list(error_rate(est.a, a[sl]))
        out["forward_1"] += list(rel_l2(U, u[sl, None]).mean(1))
        A, U = fields.sample(samples, u_obs=u[sl], u_mask=mask[sl], **kw)
        out["inverse"] += list(error_rate(estimate_from_samples(A, U).a, a[sl]))
        out["inverse_1"] += list(error_rate(threshold_a(A), a[sl, None]).mean(1))
    return {k: np.array(v) for k, v in out.items()}


def error_rate(pred, true):
    return (pred != true).float().mean((-2, -1)).numpy()


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


def plot(fields, a, u, mask, path, k, sampler):
    """Truth, sample mean and sample std of one forward and one inverse test field (``k``
    samples each; ``sampler`` as in :func:`evaluate`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kw = {**sampler, "generator": torch.Generator().manual_seed(3)}
    _, U = fields.sample(k, a_obs=a[:1], a_mask=mask[:1], **kw)
    A, _ = fields.sample(k, u_obs=u[:1], u_mask=mask[:1], **kw)
    A = threshold_a(A)
    rows = [("forward: u from 3% of a", u[0], U[0], a[0], mask[0]),
            ("inverse: a from 3% of u", a[0], A[0], u[0], mask[0])]  # fmt: skip
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.4))
    for ax, (title, truth, S, given, m) in zip(axes, rows, strict=True):
        ii, jj = np.nonzero(m.numpy())
        panels = [(given, "observed field (dots: observed)"), (truth, "truth"),
                  (S.mean(0), f"mean of {k} samples"), (S.std(0), "std")]  # fmt: skip
        for j, (img, label) in enumerate(panels):
            im = ax[j].imshow(np.asarray(img).T, origin="lower", cmap="viridis")
            fig.colorbar(im, ax=ax[j], fraction=0.046)
            ax[j].set_title(label if j else f"{title}\n{label}", fontsize=9)
            ax[j].set_xticks([])
            ax[j].set_yticks([])
            if j == 0:
                ax[j].plot(ii, jj, "r.", ms=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default=str(ROOT / "models" / "darcy_score_32.pt"))
    p.add_argument("--fields", type=int, default=100)
    p.add_argument("--samples", type=int, default=16, help="draws per field for the estimate")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--method", default="heun_edm")
    p.add_argument("--switch", type=float, default=0.8)
    p.add_argument("--late-obs-factor", type=float, default=0.1)
    p.add_argument("--residual-sigma", type=float, default=0.1)
    p.add_argument("--residual-grid", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    p.add_argument("--plot-samples", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fraction", type=float, default=0.03)
    p.add_argument("--obs-weight", type=float, default=100.0)
    p.add_argument("--residual-weight", type=float, default=0.03)
    p.add_argument("--sigma-y", type=float, default=0.05)
    p.add_argument("--tune", action="store_true", help="pick weights on validation fields")
    p.add_argument("--tune-fields", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--chunk", type=int, default=20)
    p.add_argument("--out", default=str(OUT))
    p.add_argument(
        "--store-settings",
        action="store_true",
        help="write the sampler settings (weights chosen on validation fields) into the "
        "checkpoint's meta, so that DarcyFields.sample and .estimate default to them",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads if args.device == "cpu" else 8)
    fields = DarcyFields.from_checkpoint(args.checkpoint)
    fields.model.to(args.device)
    n = fields.n
    t0 = time.time()
    a_np, u_np = darcy_dataset(args.fields, n=n, seed=12345)
    a, u = torch.tensor(a_np), torch.tensor(u_np)
    mask = random_mask(n, args.fraction, torch.Generator().manual_seed(1), fields=args.fields)
    sampler = dict(
        steps=args.steps,
        method=args.method,
        sigma_y=args.sigma_y,
        switch=args.switch,
        late_obs_factor=args.late_obs_factor,
        residual_sigma=args.residual_sigma,
    )
    base = dict(samples=args.samples, seed=0, chunk=args.chunk, **sampler)
    obs_w, res_w, tuning = args.obs_weight, args.residual_weight, []
    if args.tune:
        nv = args.tune_fields
        va, vu = (torch.tensor(v) for v in darcy_dataset(nv, n=n, seed=777))
        vm = random_mask(n, args.fraction, torch.Generator().manual_seed(2), fields=nv)
        tb = {**base, "samples": 1}

        def trial(ow, rw):
            try:
                e = evaluate(fields, va, vu, vm, obs_weight=ow, residual_weight=rw, **tb)
            except DivergenceError as err:  # a weight that blows the sampler up loses
                tuning.append({"obs_weight": ow, "residual_weight": rw, "diverged": str(err)})
                print(tuning[-1], flush=True)
                return float("inf")
            tuning.append(
                {
                    "obs_weight": ow,
                    "residual_weight": rw,
                    "forward_relL2": float(e["forward"].mean()),
                    "inverse_error": float(e["inverse"].mean()),
                }
            )
            print(tuning[-1], flush=True)
            return tuning[-1]["forward_relL2"] + tuning[-1]["inverse_error"]

        # stage 1: observation weight without the residual; stage 2: the residual weight
        obs_w = min([100.0, 300.0, 1000.0, 3000.0], key=lambda ow: trial(ow, 0.0))
        res_w = min(args.residual_grid, key=lambda rw: trial(obs_w, rw))
    rows = {}
    for name, rw in (("no_pde_guidance", 0.0), ("pde_guidance", res_w)):
        t1 = time.time()
        try:
            e = evaluate(fields, a, u, mask, obs_weight=obs_w, residual_weight=rw, **base)
        except DivergenceError as err:
            rows[name] = {"residual_weight": rw, "diverged": str(err)}
            print(name, rows[name], flush=True)
            continue
        rows[name] = {
            "residual_weight": rw,
            "forward_relL2_mean": float(e["forward"].mean()),
            "forward_relL2_std": float(e["forward"].std()),
            "forward_a_error_rate": float(e["forward_a"].mean()),
            "inverse_error_rate_mean": float(e["inverse"].mean()),
            "inverse_error_rate_std": float(e["inverse"].std()),
            "one_draw_forward_relL2_mean": float(e["forward_1"].mean()),
            "one_draw_inverse_error_rate_mean": float(e["inverse_1"].mean()),
            "seconds": time.time() - t1,
        }
        print(name, rows[name], flush=True)
    if args.store_settings:  # no PDE guidance by default if it diverged on any test draw
        model, meta = load_checkpoint(args.checkpoint)
        safe_rw = 0.0 if "diverged" in rows.get("pde_guidance", {}) else res_w
        meta["sampler"] = {**sampler, "obs_weight": obs_w, "residual_weight": safe_rw}
        save_checkpoint(args.checkpoint, model, meta, half=True)
        print("stored in", args.checkpoint, meta["sampler"], flush=True)
    res = {
        "resolution": n,
        "fields": args.fields,
        "observed_fraction": args.fraction,
        "observed_points": int(mask[0].sum()),
        "samples_per_field": args.samples,
        "method": args.method,
        "steps": args.steps,
        "switch": args.switch,
        "late_obs_factor": args.late_obs_factor,
        "residual_sigma": args.residual_sigma,
        "checkpoint": Path(args.checkpoint).name,
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
    stem = f"diffusion_darcy_{n}"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=float))
    b = res["baselines"]
    lines = [
        f"# Darcy {n}x{n}: forward and inverse from {args.fraction:.0%} observed points",
        "",
        f"{args.fields} test fields, {res['observed_points']} observed nodes each, "
        f"estimate from {args.samples} draw(s) per field (sample mean of u, thresholded "
        f"sample mean of a; `DarcyFields.estimate`; {args.method}, {args.steps} steps), device "
        f"{args.device}, checkpoint `{Path(args.checkpoint).name}`. After {args.switch:.0%} "
        f"of the steps the PDE residual joins (when used) and the observation weight is "
        f"multiplied by {args.late_obs_factor:g}. Weights (obs {obs_w}, residual {res_w})"
        + (f" chosen on {args.tune_fields} validation fields." if args.tune else " fixed."),
        "",
        "| model | forward rel. L2 of u | inverse error rate of a | one draw: forward / inverse |",
        "|---|---|---|---|",
    ]
    for name, r in rows.items():
        if "diverged" in r:
            lines.append(f"| diffusion, {name.replace('_', ' ')} | diverged | diverged | - |")
            continue
        lines.append(
            f"| diffusion, {name.replace('_', ' ')} | {r['forward_relL2_mean']:.3f} +- "
            f"{r['forward_relL2_std']:.3f} | {r['inverse_error_rate_mean']:.3f} +- "
            f"{r['inverse_error_rate_std']:.3f} | {r['one_draw_forward_relL2_mean']:.3f} / "
            f"{r['one_draw_inverse_error_rate_mean']:.3f} |"
        )
    lines.append(
        f"| interpolate a (nearest) then solve | "
        f"{b['forward_interp_nearest_then_solve_relL2']:.3f} | - | - |"
    )
    lines.append(
        f"| interpolate a (linear) then solve | "
        f"{b['forward_interp_linear_then_solve_relL2']:.3f} | - | - |"
    )
    lines.append(f"| best constant a | - | {b['inverse_best_constant_error_rate']:.3f} | - |")
    lines.append(
        "| DiffusionPDE (128 x 128, 2,000 steps, one draw, their paper) | 0.025 | 0.032 | - |"
    )
    lines += ["", f"![truth, mean and std]({stem}.png)"]
    plot(fields, a, u, mask, out / f"{stem}.png", args.plot_samples,
         {**sampler, "obs_weight": obs_w, "residual_weight": res_w})  # fmt: skip
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
