"""Stable neural SDEs vs naive SDE vs Neural CDE on UEA data under the missing-rate protocol.

Protocol (Oh, Lim & Kim, ICLR 2024): drop ``int(L * rate)`` points per channel of each series
(seeded), split 70/15/15 stratified by label (seeded), train on 70 % with early stopping on the
15 % validation split, report test accuracy on the last 15 % (never used for any choice).
Hyper-parameters are the CLI defaults, identical for every model; the batch size (16 rather than
full batch) was chosen by mean validation accuracy, never by test accuracy.

Results go to a resumable JSON file (default ``benchmarks/results/stable_uea.json``; one record
per dataset/model/rate/seed; finished runs are skipped) and a markdown table beside it. Run many
jobs as parallel single-threaded processes::

    python benchmarks/stable_uea.py --datasets BasicMotions --models lsde lnsde gsde naive ncde \
        --rates 0 0.3 0.5 0.7 --seeds 0 1 2 3 4 --epochs 100 --jobs 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LOADERS = {"BasicMotions": "load_basic_motions", "ArrowHead": "load_arrow_head"}
MODELS = ("lsde", "lnsde", "gsde", "naive", "ncde")
NAMES = {"lsde": "LSDE", "lnsde": "LNSDE", "gsde": "GSDE", "naive": "naive SDE", "ncde": "NCDE"}


def key(dataset, model, rate, seed):
    return f"{dataset}|{model}|{rate:g}|{seed}"


def run_one(job: dict) -> dict:
    """Train and test one (dataset, model, rate, seed); returns its record."""
    import torch

    torch.set_num_threads(1)
    import neuralsde.datasets as nd
    from neuralsde.data import IrregularBatch
    from neuralsde.estimators import SDEClassifier

    ds = getattr(nd, LOADERS[job["dataset"]])()
    batch = IrregularBatch.from_xarray(ds).to(dtype=torch.float32)
    batch = batch.drop(job["rate"], seed=job["seed"])
    train, val, test = batch.split((0.7, 0.15, 0.15), seed=job["seed"])
    clf = SDEClassifier(
        kind=job["model"], hidden=job["hidden"], depth=job["depth"], epochs=job["epochs"],
        lr=job["lr"], batch_size=job["batch_size"], patience=job["patience"],
        random_state=job["seed"], verbose=False, device=job.get("device", "cpu"),
    )  # fmt: skip
    start = time.perf_counter()
    clf.fit(train, eval_set=(val, val.labels))
    wall = time.perf_counter() - start
    h = clf.history_
    return {
        **job,
        "test_accuracy": float(clf.score(test, test.labels)),
        "val_accuracy": float(clf.score(val, val.labels)),
        "epochs_run": len(h.epoch_time),
        "best_epoch": h.best_epoch,
        "stopped": h.stopped,
        "sec_per_epoch": float(np.mean(h.epoch_time)),
        "fit_seconds": wall,
        "n_train": len(train), "n_val": len(val), "n_test": len(test),
        "host": platform.node(), "cpu_count": os.cpu_count(),
    }  # fmt: skip


def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(path: Path, results: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
    os.replace(tmp, path)


def table(results: dict, dataset: str) -> str:
    recs = [r for r in results.values() if r["dataset"] == dataset]
    if not recs:
        return ""
    rates = sorted({r["rate"] for r in recs})
    models = [m for m in MODELS if any(r["model"] == m for r in recs)]
    head = "| model | " + " | ".join(f"rate {r:g}" for r in rates) + " | s/epoch | seeds |"
    lines = [
        f"### {dataset}: test accuracy (mean ± std over seeds)",
        "",
        head,
        "|" + "---|" * (len(rates) + 3),
    ]
    for m in models:
        cells, spe, seeds = [], [], set()
        for rate in rates:
            acc = [r["test_accuracy"] for r in recs if r["model"] == m and r["rate"] == rate]
            spe += [r["sec_per_epoch"] for r in recs if r["model"] == m and r["rate"] == rate]
            seeds |= {r["seed"] for r in recs if r["model"] == m and r["rate"] == rate}
            cells.append(f"{np.mean(acc):.3f} ± {np.std(acc):.3f} (n={len(acc)})" if acc else "–")
        lines.append(
            f"| {NAMES[m]} | " + " | ".join(cells) + f" | {np.mean(spe):.3f} | {len(seeds)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--datasets", nargs="+", default=["BasicMotions", "ArrowHead"], choices=sorted(LOADERS)
    )
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--rates", nargs="+", type=float, default=[0.0, 0.3, 0.5, 0.7])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=16, help="0 = full batch")
    p.add_argument("--patience", type=int, default=20)
    p.add_argument("--jobs", type=int, default=1, help="parallel single-threaded processes")
    p.add_argument("--results", type=Path, default=HERE / "results" / "stable_uea.json")
    p.add_argument(
        "--table", type=Path, default=None, help="markdown output (default: results path with .md)"
    )
    args = p.parse_args(argv)

    args.results.parent.mkdir(parents=True, exist_ok=True)
    results = load_results(args.results)
    args.batch_size = args.batch_size or None
    common = {
        "epochs": args.epochs,
        "hidden": args.hidden,
        "depth": args.depth,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "patience": args.patience,
    }
    jobs = [
        {"dataset": d, "model": m, "rate": r, "seed": s, **common}
        for d in args.datasets
        for r in args.rates
        for s in args.seeds
        for m in args.models
        if key(d, m, r, s) not in results
    ]
    print(f"{len(jobs)} runs to do ({len(results)} already in {args.results})", flush=True)
    from tqdm.auto import tqdm

    with tqdm(total=len(jobs), desc="stable_uea") as bar:
        if args.jobs <= 1:
            for job in jobs:
                rec = run_one(job)
                results[key(rec["dataset"], rec["model"], rec["rate"], rec["seed"])] = rec
                save_results(args.results, results)
                bar.update()
        else:
            with ProcessPoolExecutor(args.jobs) as pool:
                futures = [pool.submit(run_one, job) for job in jobs]
                for fut in as_completed(futures):
                    rec = fut.result()
                    results[key(rec["dataset"], rec["model"], rec["rate"], rec["seed"])] = rec
                    save_results(args.results, results)
                    bar.set_postfix_str(
                        f"{rec['model']} {rec['rate']:g} acc={rec['test_accuracy']:.2f}"
                    )
                    bar.update()
    md = "\n".join(table(results, d) for d in LOADERS if table(results, d))
    out = args.table or args.results.with_suffix(".md")
    out.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
