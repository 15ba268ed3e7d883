"""Stable neural SDEs against the naive SDE and the Neural CDE on seven UEA/UCR sets.

Protocol (Oh, Lim & Kim, ICLR 2024): drop ``int(L * rate)`` points per channel of each series
(seeded), split 70/15/15 stratified by label (seeded), train on the 70 % with early stopping on
the 15 % validation split, report test accuracy on the last 15 %. The test split is used for
nothing else: every choice (tuning, the default architecture) reads validation numbers only.

Stages (``--stage``):

* ``tune``: per data set and model, :func:`neuralsde.tune` at missing rate 0 (seed-0 split,
  ``--n-trials`` trials of 10 epochs, successive-halving pruning). The trials, the chosen
  configuration and the search time go to ``results/stable_uea7_tuning.json``; the choice is
  reused at every rate and seed, as in the paper.
* ``grid``: every model at every rate and seed with its tuned configuration (variant
  ``tuned``).
* ``ablation``: the variants of :data:`VARIANTS` on ``--datasets`` (default BasicMotions and
  ArrowHead) at rates 0 and 0.7.

Records (one per variant/data set/model/rate/seed, resumable) go to
``results/stable_uea7.json`` and the tables to ``results/stable_uea7.md``::

    python benchmarks/stable_uea.py --stage tune grid --jobs 2
    python benchmarks/stable_uea.py --stage ablation --datasets BasicMotions ArrowHead --jobs 2
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

DATASETS = (
    "ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "OSULeaf", "ACSF1",
    "PickupGestureWiimoteZ",
)  # fmt: skip
MODELS = ("lsde", "lnsde", "gsde", "naive", "ncde")
NAMES = {"lsde": "LSDE", "lnsde": "LNSDE", "gsde": "GSDE", "naive": "naive SDE", "ncde": "NCDE"}
RESULTS = HERE / "results" / "stable_uea7.json"
TUNING = HERE / "results" / "stable_uea7_tuning.json"
# the previous stop's search, under the reference protocol (read by the ``..., reference
# protocol`` variants)
TUNING_REFERENCE = HERE / "results" / "stable_uea7_tuning_reference.json"

# the first version's settings (benchmarks of the previous stop): the same for every model
_V1 = {"hidden": 32, "depth": 2, "lr": 1e-2, "batch_size": 16, "patience": 20}
# the previous stop's estimator defaults: the reference training protocol
_REF = {"architecture": "reference", "head": "reference", "schedule": "reference",
        "patience": 10, "clock": "unit"}  # fmt: skip
# each variant changes one thing of a variant above it; "defaults" is the estimator's defaults
# (the "+read-out" configuration), "tuned" those with the configuration ``tune`` chose on
# validation
VARIANTS = {
    "v1+intensity": {**_V1, "architecture": "v1", "head": "v1", "schedule": "v1",
                     "intensity": True},
    "v1": {**_V1, "architecture": "v1", "head": "v1", "schedule": "v1"},
    "+architecture": {**_V1, "architecture": "reference", "head": "v1", "schedule": "v1"},
    "+read-out": {**_V1, "architecture": "reference", "head": "reference", "schedule": "v1"},
    "+schedule": _REF,  # the reference's training protocol instead of +read-out's
    "+paper head": {**_REF, "head": "paper"},  # the BN classifier, no tanh read-out
    "+clock": {**_REF, "clock": "steps"},  # time counted in solver steps, as the reference
    "+clock+paper head": {**_REF, "clock": "steps", "head": "paper"},
    # the state moves ~n_steps times more per parameter update on the steps clock
    "+clock+paper head, lr/10": {**_REF, "clock": "steps", "head": "paper", "lr": 1e-4},
    "defaults": {},
    # the defaults with the reference's batch size: the largest of 16/32/64/128 within N / 2
    "defaults, batch N/2": {"batch_size": "N/2"},
    # the largest of 16/32/64/128 that leaves at least 8 steps per epoch
    "defaults, batch N/8": {"batch_size": "N/8"},
    "tuned": {"tuned": True},
    "tuned+intensity": {"tuned": True, "intensity": True},
    # the previous stop's tuned rows: searched and trained with the reference protocol
    "tuned, reference protocol": {**_REF, "tuned": True},
    "tuned+intensity, reference protocol": {**_REF, "tuned": True, "intensity": True},
}  # fmt: skip
ABLATION = ("v1+intensity", "v1", "+architecture", "+read-out", "+schedule", "+paper head",
            "+clock", "+clock+paper head", "+clock+paper head, lr/10", "tuned, reference protocol",
            "tuned+intensity, reference protocol", "tuned", "tuned+intensity")  # fmt: skip


def key(variant, dataset, model, rate, seed):
    return f"{variant}|{dataset}|{model}|{rate:g}|{seed}"


def load_splits(dataset: str, rate: float, seed: int):
    """(train, val, test) IrregularBatches of the protocol; variable-length series trimmed."""
    import torch

    from neuralsde.data import IrregularBatch
    from neuralsde.datasets import load_uea

    batch = IrregularBatch.from_xarray(load_uea(dataset)).to(dtype=torch.float32).trim()
    return batch.drop(rate, seed=seed).split((0.7, 0.15, 0.15), seed=seed)


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _save(path: Path, results: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True, default=float))
    os.replace(tmp, path)


def _host():
    return {"host": platform.node(), "cpu_count": os.cpu_count()}


def run_tune(job: dict) -> dict:
    """Tune one (data set, model) at rate 0 on the seed-0 validation split."""
    import torch

    torch.set_num_threads(1)
    from neuralsde.estimators import SDEClassifier
    from neuralsde.tuning import tune

    train, val, _ = load_splits(job["dataset"], 0.0, 0)  # the test split is dropped here
    res = tune(
        SDEClassifier(kind=job["model"], verbose=False, device=job.get("device", "cpu")),
        train, train.labels, eval_set=(val, val.labels), n_trials=job["n_trials"], epochs=10,
        refit=False, random_state=0,
    )  # fmt: skip
    return {**job, **res.to_dict(), **_host()}


def estimator_params(job: dict, tuning: dict) -> dict:
    """The variant's estimator parameters; ``tuning`` maps a schedule to its search results."""
    params = dict(VARIANTS[job["variant"]])
    if params.pop("tuned", False):
        found = tuning[params.get("schedule", "adamw")][f"{job['dataset']}|{job['model']}"]
        params.update(found["best_params"])
    return params


def run_one(job: dict) -> dict:
    """Train and test one (variant, data set, model, rate, seed); returns its record."""
    import torch

    torch.set_num_threads(1)
    from neuralsde.estimators import SDEClassifier

    params = estimator_params(job, job["tuning"])
    train, val, test = load_splits(job["dataset"], job["rate"], job["seed"])
    if params.get("batch_size") == "N/2":
        from neuralsde.estimators import SCHEDULES

        params["batch_size"] = SCHEDULES["reference"]["batch_size"](len(train))
    elif params.get("batch_size") == "N/8":
        fits = [b for b in (16, 32, 64, 128) if len(train) / b >= 8]
        params["batch_size"] = max(fits, default=16)
    clf = SDEClassifier(kind=job["model"], random_state=job["seed"], verbose=False,
                        device=job.get("device", "cpu"), **params)  # fmt: skip
    start = time.perf_counter()
    clf.fit(train, eval_set=(val, val.labels))
    wall = time.perf_counter() - start
    h = clf.history_
    rec = {k: v for k, v in job.items() if k != "tuning"}
    return {
        **rec, "params": params,
        "test_accuracy": float(clf.score(test, test.labels)),
        "val_accuracy": float(clf.score(val, val.labels)),
        "epochs_run": len(h.epoch_time), "best_epoch": h.best_epoch, "stopped": h.stopped,
        "sec_per_epoch": float(np.mean(h.epoch_time)), "fit_seconds": wall,
        "n_train": len(train), "n_val": len(val), "n_test": len(test), **_host(),
    }  # fmt: skip


def _execute(fn, jobs, n_jobs, on_result, desc):
    from tqdm.auto import tqdm

    with tqdm(total=len(jobs), desc=desc) as bar:
        if n_jobs <= 1:
            for job in jobs:
                on_result(fn(job))
                bar.update()
            return
        with ProcessPoolExecutor(n_jobs) as pool:
            for fut in as_completed([pool.submit(fn, job) for job in jobs]):
                on_result(fut.result())
                bar.update()


# ------------------------------------------------------------------------------ tables
def _cell(values):
    return f"{np.mean(values):.3f} ± {np.std(values):.3f} (n={len(values)})" if values else "–"


def _acc(results, variant, dataset, model, rate, field="test_accuracy"):
    return [r[field] for r in results.values() if r["variant"] == variant and
            r["dataset"] == dataset and r["model"] == model and r["rate"] == rate]  # fmt: skip


def finished(results: dict, rates, variant, datasets=DATASETS) -> list:
    """The data sets on which every model has a run at every rate."""
    return [d for d in datasets if all(_acc(results, variant, d, m, r) for m in MODELS
                                       for r in rates)]  # fmt: skip


def headline(results: dict, rates, variant="tuned", field="test_accuracy",
             datasets=DATASETS) -> str:  # fmt: skip
    """Mean over the data sets that every model finished at every rate (seed means first)."""
    done = finished(results, rates, variant, datasets)
    if not done:
        return ""
    label = "test" if field == "test_accuracy" else "validation"
    lines = [f"### Mean {label} accuracy over {len(done)} data sets ({', '.join(done)}), "
             f"variant `{variant}`", "",
             "| model | " + " | ".join(f"rate {r:g}" for r in rates) + " |",
             "|" + "---|" * (len(rates) + 1)]  # fmt: skip
    for m in MODELS:
        cells = [np.mean([np.mean(_acc(results, variant, d, m, r, field)) for d in done])
                 for r in rates]  # fmt: skip
        lines.append(f"| {NAMES[m]} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def per_dataset(results: dict, dataset: str, rates, variant="tuned") -> str:
    rows = [m for m in MODELS if any(_acc(results, variant, dataset, m, r) for r in rates)]
    if not rows:
        return ""
    lines = [f"#### {dataset} (variant `{variant}`): test accuracy, mean ± std over seeds", "",
             "| model | " + " | ".join(f"rate {r:g}" for r in rates) + " | s/epoch |",
             "|" + "---|" * (len(rates) + 2)]  # fmt: skip
    for m in rows:
        spe = [r["sec_per_epoch"] for r in results.values() if r["variant"] == variant
               and r["dataset"] == dataset and r["model"] == m]  # fmt: skip
        cells = [_cell(_acc(results, variant, dataset, m, r)) for r in rates]
        lines.append(f"| {NAMES[m]} | " + " | ".join(cells) + f" | {np.mean(spe):.2f} |")
    return "\n".join(lines) + "\n"


def ablation(results: dict, datasets, rates=(0.0, 0.7)) -> str:
    cols = [(d, r) for d in datasets for r in rates]
    out = []
    for m in MODELS:
        rows = [v for v in ABLATION if any(_acc(results, v, d, m, r) for d, r in cols)]
        if not rows:
            continue
        lines = [f"#### Ablation, {NAMES[m]}: test accuracy (validation accuracy)", "",
                 "| variant | " + " | ".join(f"{d} {r:g}" for d, r in cols) + " |",
                 "|" + "---|" * (len(cols) + 1)]  # fmt: skip
        for v in rows:
            cells = []
            for d, r in cols:
                test, val = _acc(results, v, d, m, r), _acc(results, v, d, m, r, "val_accuracy")
                cells.append(f"{np.mean(test):.3f} ({np.mean(val):.3f}, n={len(test)})"
                             if test else "–")  # fmt: skip
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def tuning_table(tuning: dict) -> str:
    if not tuning:
        return ""
    lines = ["| data set | model | hidden | width | depth | lr | val loss | trials (pruned) "
             "| search s |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for k in sorted(tuning):
        t = tuning[k]
        p = t["best_params"]
        pruned = sum(tr["state"] == "PRUNED" for tr in t["trials"])
        lines.append(f"| {t['dataset']} | {NAMES[t['model']]} | {p.get('hidden')} | "
                     f"{p.get('width')} | {p.get('depth')} | {p.get('lr', 0):.2g} | "
                     f"{t['best_value']:.3f} | {len(t['trials'])} ({pruned}) | "
                     f"{t['search_seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


# the data sets and seed on which the default protocol and clock were chosen (validation only)
SCREEN = ("BasicMotions", "ArrowHead", "GunPoint", "ItalyPowerDemand")
HEADLINES = ("defaults", "tuned", "tuned, reference protocol")


def screen(results: dict, datasets=SCREEN, rates=(0.0, 0.7), seed=0) -> str:
    """Mean validation (test) accuracy of every ablation variant over ``datasets`` x
    ``rates`` at one seed: the table the defaults were chosen from, by validation."""
    lines = [f"Mean validation accuracy (test accuracy) over {', '.join(datasets)} at rates "
             f"{', '.join(f'{r:g}' for r in rates)}, seed {seed}; cells missing a run show –.",
             "", "| variant | " + " | ".join(NAMES[m] for m in MODELS) + " |",
             "|" + "---|" * (len(MODELS) + 1)]  # fmt: skip
    for v in ABLATION:
        cells = []
        for m in MODELS:
            runs = [[r for r in results.values() if r["variant"] == v and r["dataset"] == d
                     and r["model"] == m and r["rate"] == rate and r["seed"] == seed]
                    for d in datasets for rate in rates]  # fmt: skip
            if not all(runs):
                cells.append("–")
                continue
            val = np.mean([run[0]["val_accuracy"] for run in runs])
            test = np.mean([run[0]["test_accuracy"] for run in runs])
            cells.append(f"{val:.3f} ({test:.3f})")
        if any(c != "–" for c in cells):
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary(results, rates) -> str:
    """The headline tables of every variant in :data:`HEADLINES` and the validation screen:
    what ``benchmarks/README.md`` shows (the full report has the rest)."""
    parts = [headline(results, rates, v) for v in HEADLINES]
    common = finished(results, rates, "defaults")  # the others on the defaults' data sets too
    if common:
        parts += ["The same on the data sets of the `defaults` run:\n"]
        parts += [headline(results, rates, v, datasets=common) for v in HEADLINES[1:]]
    parts += ["Validation accuracy, same runs:\n"]
    parts += [headline(results, rates, v, "val_accuracy") for v in HEADLINES]
    parts += ["### Validation screen of the defaults\n", screen(results)]
    return "\n".join(p for p in parts if p)


def report(results, tuning, rates, ablation_sets) -> str:
    parts = []
    for v in HEADLINES:
        parts += [headline(results, rates, v), headline(results, rates, v, "val_accuracy")]
    for v in HEADLINES:
        parts += [per_dataset(results, d, rates, v) for d in DATASETS]
    parts += ["### Ablation\n", ablation(results, ablation_sets)]
    parts += ["### Validation screen of the defaults\n", screen(results)]
    parts += ["### Tuned configurations (rate 0, seed-0 validation split)\n",
              tuning_table(tuning)]  # fmt: skip
    parts += ["### Tuned configurations under the reference protocol (previous stop)\n",
              tuning_table(_load(TUNING_REFERENCE))]  # fmt: skip
    return "\n".join(p for p in parts if p)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--stage", nargs="+", default=["tune", "grid"],
                   choices=["tune", "grid", "ablation", "report"])  # fmt: skip
    p.add_argument("--datasets", nargs="+", default=None, choices=DATASETS)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--rates", nargs="+", type=float, default=[0.0, 0.3, 0.5, 0.7])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument(
        "--variants",
        nargs="+",
        default=list(ABLATION),
        choices=list(VARIANTS),
        help="the ablation stage's variants",
    )
    p.add_argument("--grid-variant", default="tuned", choices=list(VARIANTS))
    p.add_argument("--n-trials", type=int, default=20)
    p.add_argument("--jobs", type=int, default=1, help="parallel single-threaded processes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--tuning", type=Path, default=TUNING)
    args = p.parse_args(argv)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    results, tuning = _load(args.results), _load(args.tuning)
    ablation_sets = ["BasicMotions", "ArrowHead"]

    if "tune" in args.stage:
        jobs = [{"dataset": d, "model": m, "n_trials": args.n_trials, "device": args.device}
                for d in args.datasets or DATASETS for m in args.models
                if f"{d}|{m}" not in tuning]  # fmt: skip

        def keep_tuning(rec):
            tuning[f"{rec['dataset']}|{rec['model']}"] = rec
            _save(args.tuning, tuning)

        _execute(run_tune, jobs, args.jobs, keep_tuning, "tune")

    def keep(rec):
        results[key(rec["variant"], rec["dataset"], rec["model"], rec["rate"], rec["seed"])] = rec
        _save(args.results, results)

    searched = {"adamw": tuning, "reference": _load(TUNING_REFERENCE)}
    for stage in ("grid", "ablation"):
        if stage not in args.stage:
            continue
        variants = [args.grid_variant] if stage == "grid" else args.variants
        sets = args.datasets or (DATASETS if stage == "grid" else ablation_sets)
        rates = args.rates if stage == "grid" else [0.0, 0.7]
        jobs = [{"variant": v, "dataset": d, "model": m, "rate": r, "seed": s,
                 "device": args.device, "tuning": searched}
                for s in args.seeds for v in variants for d in sets for r in rates
                for m in args.models
                if key(v, d, m, r, s) not in results
                and (not VARIANTS[v].get("tuned")
                     or f"{d}|{m}" in searched[VARIANTS[v].get("schedule", "adamw")])]  # fmt: skip
        _execute(run_one, jobs, args.jobs, keep, stage)

    md = report(results, tuning, args.rates, ablation_sets)
    args.results.with_suffix(".md").write_text(md)
    args.results.with_name(args.results.stem + "_summary.md").write_text(
        summary(results, args.rates)
    )
    print(md)


if __name__ == "__main__":
    main()
