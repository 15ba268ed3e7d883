"""MMD to held-out data against the number of score evaluations (NFE) for every sampler, with
a score MLP trained on two-moons; plus the two-sample noise floor of the MMD.

    python benchmarks/diffusion_samplers.py [--quick]

Writes benchmarks/results/diffusion_samplers.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuralsde.diffusion import VPSDE, ScoreMLP, mmd2, train_score, two_moons
from neuralsde.diffusion.sampling import sample

OUT = Path(__file__).resolve().parent / "results"


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n_eval = 1000 if args.quick else 2000
    seeds = [0, 1] if args.quick else [0, 1, 2]
    sde = VPSDE()
    data = two_moons(20000, generator=torch.Generator().manual_seed(0))
    t0 = time.time()
    model, hist = train_score(
        data,
        sde,
        ScoreMLP(2, hidden=128, depth=4),
        epochs=8 if args.quick else 40,
        batch_size=512,
        lr=2e-3,
        ema_decay=0.999,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    train_s = time.time() - t0
    held = [two_moons(n_eval, generator=torch.Generator().manual_seed(100 + s)) for s in seeds]
    floor = [
        float(mmd2(two_moons(n_eval, generator=torch.Generator().manual_seed(200 + s)), held[i]))
        for i, s in enumerate(seeds)
    ]
    grid = {
        "euler": [
            ("steps", s)
            for s in ([20, 100, 500] if args.quick else [10, 20, 50, 100, 200, 500, 1000])
        ],
        "pc": [("steps", s) for s in ([10, 50, 250] if args.quick else [5, 10, 25, 50, 100, 250])],
        "dpm2": [("steps", s) for s in ([10, 20] if args.quick else [5, 10, 15, 20, 50])],
        "ode": [("rtol", r) for r in ([1e-2, 1e-3] if args.quick else [1e-2, 1e-3, 1e-4])],
        "adaptive": [("rtol", r) for r in ([0.1, 0.02] if args.quick else [0.2, 0.1, 0.05, 0.02])],
    }
    rows = []
    for method, settings in grid.items():
        for key, val in settings:
            vals, nfes, secs = [], [], []
            for i, s in enumerate(seeds):
                kw = {"steps": val} if key == "steps" else {"rtol": val, "atol": val}
                t1 = time.time()
                with torch.no_grad():
                    x, info = sample(
                        model,
                        sde,
                        (n_eval, 2),
                        method=method,
                        return_info=True,
                        generator=torch.Generator().manual_seed(s),
                        **kw,
                    )
                secs.append(time.time() - t1)
                vals.append(float(mmd2(x, held[i])))
                nfes.append(info["nfe"])
            rows.append(
                {
                    "method": method,
                    key: val,
                    "nfe": float(np.mean(nfes)),
                    "mmd2_mean": float(np.mean(vals)),
                    "mmd2_std": float(np.std(vals)),
                    "seconds": float(np.mean(secs)),
                }
            )
            print(rows[-1], flush=True)
    res = {
        "data": "two-moons (20000 train)",
        "sde": sde.config(),
        "n_eval": n_eval,
        "seeds": seeds,
        "train_seconds": train_s,
        "final_train_loss": hist.train_loss[-1],
        "noise_floor_mmd2_mean": float(np.mean(floor)),
        "noise_floor_mmd2_std": float(np.std(floor)),
        "rows": rows,
    }
    d20 = next(r for r in rows if r["method"] == "dpm2" and r.get("steps") == 20)
    e500 = next(r for r in rows if r["method"] == "euler" and r.get("steps") == 500)
    spread = max(res["noise_floor_mmd2_std"], d20["mmd2_std"], e500["mmd2_std"])
    res["dpm2_20_vs_euler_500"] = {
        "dpm2_20": d20["mmd2_mean"],
        "euler_500": e500["mmd2_mean"],
        "difference": d20["mmd2_mean"] - e500["mmd2_mean"],
        "noise": spread,
        "within_noise": abs(d20["mmd2_mean"] - e500["mmd2_mean"]) <= 3 * spread,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "diffusion_samplers.json").write_text(json.dumps(res, indent=1))
    lines = [
        "# Diffusion samplers on two-moons (trained score MLP, VP SDE)",
        "",
        f"MMD^2 (sum of 4 RBF kernels) to {n_eval} held-out points, mean +- std over "
        f"{len(seeds)} seeds. Noise floor (two independent target samples): "
        f"{res['noise_floor_mmd2_mean']:.2e} +- {res['noise_floor_mmd2_std']:.2e}.",
        "",
        "| method | setting | NFE | MMD^2 | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        setting = f"steps={r['steps']}" if "steps" in r else f"rtol={r['rtol']}"
        lines.append(
            f"| {r['method']} | {setting} | {r['nfe']:.0f} | {r['mmd2_mean']:.2e} +- "
            f"{r['mmd2_std']:.1e} | {r['seconds']:.2f} |"
        )
    c = res["dpm2_20_vs_euler_500"]
    lines += [
        "",
        f"dpm2@20 {c['dpm2_20']:.2e} vs euler@500 {c['euler_500']:.2e}: difference "
        f"{c['difference']:.1e}, noise {c['noise']:.1e} -> within noise (3 sd): "
        f"{c['within_noise']}",
    ]
    (OUT / "diffusion_samplers.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for m in grid:
            rr = sorted((r for r in rows if r["method"] == m), key=lambda r: r["nfe"])
            ax.errorbar(
                [r["nfe"] for r in rr],
                [max(r["mmd2_mean"], 1e-5) for r in rr],
                yerr=[r["mmd2_std"] for r in rr],
                marker="o",
                label=m,
                capsize=2,
            )
        fl = res["noise_floor_mmd2_mean"] + 2 * res["noise_floor_mmd2_std"]
        ax.axhline(max(fl, 1e-5), color="k", ls="--", label="noise floor (+2 sd)")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="NFE",
            ylabel="MMD$^2$ to held-out",
            title="two-moons: sample quality vs cost",
        )
        ax.legend()
        fig.tight_layout()
        fig.savefig(OUT / "diffusion_samplers.png", dpi=120)
    except Exception as err:  # plotting is optional
        print("plot skipped:", err)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
