"""Validation sweep: do training settings close the stable SDEs' gap at missing rate 0.7?

BasicMotions, LSDE / LNSDE / GSDE at missing rates 0 and 0.7, 5 seeds (same drops and
70/15/15 splits as ``stable_uea.py``), under a few training settings. Settings are compared by
mean *validation* accuracy; test accuracy is printed beside it but never used for a choice.

* ``base``: the ``stable_uea.py`` defaults (lr 1e-2, 100 epochs, patience 20, batch 16);
* ``lr3``: lr 1e-3, 200 epochs, patience 40;
* ``lr3_sig1``: as ``lr3`` with the diffusion scale started at 1 instead of 0.1;
* ``lr3_wd``: as ``lr3`` with AdamW weight decay 0.1;
* ``lr3_S10``: as ``lr3`` with time stretched 10x (the drift, bounded by 1, integrates over
  [0, 10] instead of [0, 1]; same number of steps);
* ``lr3_S10_sig``: ``lr3_S10`` with the diffusion scale started at 0.5;
* ``lr3_h16``: as ``lr3`` with hidden size 16.

``--head linear`` replaces the classifier's read-out (one hidden layer on ``tanh(z_T)``) by the
plain ``Linear(z_T)`` used before 2026-11-22; each record notes its head.

    python benchmarks/stable_uea_sweep.py --jobs 16 [--head linear]

Writes ``results/stable_uea_val_sweep.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CONFIGS = {
    "base": dict(lr=1e-2, epochs=100, patience=20),
    "lr3": dict(lr=1e-3, epochs=200, patience=40),
    "lr3_sig1": dict(lr=1e-3, epochs=200, patience=40, sigma=1.0),
    "lr3_wd": dict(lr=1e-3, epochs=200, patience=40, weight_decay=0.1),
    "lr3_S10": dict(lr=1e-3, epochs=200, patience=40, stretch=10.0),
    "lr3_S10_sig": dict(lr=1e-3, epochs=200, patience=40, stretch=10.0, sigma=0.5),
    "lr3_h16": dict(lr=1e-3, epochs=200, patience=40, hidden=16),
}


class _SweptClassifier:
    """An ``SDEClassifier`` with the swept knobs that are not estimator parameters."""

    def __new__(cls, stretch=1.0, sigma=None, weight_decay=None, head="mlp", **params):
        import torch

        from neuralsde import estimators

        class Swept(estimators.SDEClassifier):
            def _fit_scaling(self, batch):
                super()._fit_scaling(batch)
                self.scaler_ = self.scaler_.with_time_scale(self.scaler_.time_scale / stretch)
                self.dt_ *= stretch

            def _seeded_model(self):
                model = super()._seeded_model()
                if head == "linear":
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(int(self.random_state))
                        model.head = torch.nn.Linear(model.encoder.hidden, len(self.classes_))
                diffusion = getattr(model.encoder, "diffusion", None)
                if sigma is not None and hasattr(diffusion, "raw_scale"):
                    with torch.no_grad():
                        diffusion.raw_scale.fill_(math.log(math.expm1(sigma)))
                return model

            def _train(self, loss_fn, train, val):
                from neuralsde.train import fit

                self.history_ = fit(
                    self.model_, loss_fn, train, val, epochs=self.epochs, lr=self.lr,
                    batch_size=self.batch_size, patience=self.patience, verbose=False,
                    weight_decay=weight_decay or 0.0,
                    generator=torch.Generator().manual_seed(int(self.random_state)),
                )  # fmt: skip

        return Swept(**params)


def run_one(job: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from neuralsde.data import IrregularBatch
    from neuralsde.datasets import load_basic_motions

    cfg = dict(CONFIGS[job["config"]])
    batch = IrregularBatch.from_xarray(load_basic_motions()).to(dtype=torch.float32)
    train, val, test = batch.drop(job["rate"], seed=job["seed"]).split(
        (0.7, 0.15, 0.15), seed=job["seed"]
    )
    clf = _SweptClassifier(
        kind=job["kind"], hidden=cfg.pop("hidden", 32), depth=2, batch_size=16,
        random_state=job["seed"], verbose=False, head=job.get("head", "mlp"), **cfg,
    )  # fmt: skip
    start = time.perf_counter()
    clf.fit(train, eval_set=(val, val.labels))
    return {
        **job,
        "val": float(clf.score(val, val.labels)),
        "test": float(clf.score(test, test.labels)),
        "epochs_run": len(clf.history_.train_loss),
        "best_epoch": clf.history_.best_epoch,
        "sec": time.perf_counter() - start,
    }


def table(records: list[dict]) -> str:
    groups = defaultdict(list)
    for r in records:
        groups[(r["config"], r.get("head", "mlp"), r["kind"], r["rate"])].append(r)
    kinds = [k for k in ("lsde", "lnsde", "gsde") if any(r["kind"] == k for r in records)]
    rates = sorted({r["rate"] for r in records})
    cols = [f"{k.upper()} rate {r:g}" for k in kinds for r in rates]
    lines = [
        "Mean validation / test accuracy over 5 seeds (BasicMotions). Settings are compared by "
        "validation accuracy only.",
        "",
        "| setting | head | " + " | ".join(cols) + " | mean validation |",
        "|---|---|" + "---|" * (len(cols) + 1),
    ]
    for config, head in itertools.product(CONFIGS, ("mlp", "linear")):
        cells, vals = [], []
        for k in kinds:
            for r in rates:
                g = groups.get((config, head, k, r), [])
                vals += [x["val"] for x in g]
                cells.append(
                    f"{statistics.mean(x['val'] for x in g):.2f} / "
                    f"{statistics.mean(x['test'] for x in g):.2f}"
                    if g
                    else "-"
                )
        if any(c != "-" for c in cells):
            mean_val = statistics.mean(vals)
            lines.append(f"| {config} | {head} | " + " | ".join(cells) + f" | {mean_val:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--kinds", nargs="+", default=["lsde", "lnsde", "gsde"])
    p.add_argument("--rates", nargs="+", type=float, default=[0.0, 0.7])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--head", choices=["mlp", "linear"], default="mlp")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", type=Path, default=HERE / "results" / "stable_uea_val_sweep.json")
    p.add_argument("--table-only", action="store_true", help="rewrite the table from --out")
    args = p.parse_args(argv)
    records = json.loads(args.out.read_text()) if args.out.exists() else []
    if not args.table_only:
        jobs = [
            {"config": c, "kind": k, "rate": r, "seed": s, "head": args.head}
            for c in args.configs
            for k in args.kinds
            for r in args.rates
            for s in args.seeds
        ]
        done = {
            (r["config"], r.get("head", "mlp"), r["kind"], r["rate"], r["seed"]) for r in records
        }
        jobs = [
            j
            for j in jobs
            if tuple(j[k] for k in ("config", "head", "kind", "rate", "seed")) not in done
        ]
        with ProcessPoolExecutor(args.jobs) as pool:
            for fut in as_completed([pool.submit(run_one, j) for j in jobs]):
                records.append(fut.result())
                args.out.write_text(json.dumps(records, indent=1))
    md = table(records)
    args.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
