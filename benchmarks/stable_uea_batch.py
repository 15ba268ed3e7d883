"""The classifier's default batch size, chosen on validation: fixed 16, the reference's N/2
rule, and the largest of 16/32/64/128 that leaves 8 steps per epoch (the new default).

    python benchmarks/stable_uea.py --stage grid --grid-variant "defaults, batch N/2" \\
        --datasets ArrowHead GunPoint ItalyPowerDemand PickupGestureWiimoteZ --rates 0 0.7 \\
        --seeds 0 --results benchmarks/results/stable_uea7_batch.json
    python benchmarks/stable_uea.py --stage grid --grid-variant "defaults, batch N/8" \\
        --datasets ItalyPowerDemand --rates 0 0.7 --seeds 0 \\
        --results benchmarks/results/stable_uea7_batch.json
    python benchmarks/stable_uea_batch.py     # writes results/stable_uea7_batch.md

BasicMotions (56 training series) is left out: every rule gives it batch 16. The ``defaults``
rows (fixed 16) come from results/stable_uea7.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "results"
MODELS = {"lsde": "LSDE", "lnsde": "LNSDE", "gsde": "GSDE", "naive": "naive SDE",
          "ncde": "NCDE"}  # fmt: skip
RULES = {"fixed 16 (before)": "defaults", "N/2 (reference)": "defaults, batch N/2",
         "8 steps per epoch (default)": "defaults, batch N/8"}  # fmt: skip


def main():
    batch = json.loads((HERE / "stable_uea7_batch.json").read_text())
    base = json.loads((HERE / "stable_uea7.json").read_text())

    def rec(variant, dataset, model, rate):
        src = base if variant == "defaults" else batch
        return src.get(f"{variant}|{dataset}|{model}|{rate:g}|0")

    sets = sorted({k.split("|")[1] for k in batch if k.startswith("defaults, batch N/2")})
    lines = ["# Default batch size of SDEClassifier, chosen on validation", "",
             "Mean validation and test accuracy of the defaults (lr 1e-2) over five models at "
             "missing rates 0 and 0.7, seed 0. The 8-steps rule gives batch 16 on the three "
             "smaller sets, where its rows are those of fixed 16.", "",
             "| data set (training series) | rule | batch | validation | test | fit seconds |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for d in sets:
        for name, variant in RULES.items():
            recs = [rec(variant, d, m, r) for m in MODELS for r in (0.0, 0.7)]
            if any(x is None for x in recs):
                continue
            bs = recs[0]["params"].get("batch_size", 16)
            lines.append(
                f"| {d} ({recs[0]['n_train']}) | {name} | {bs} | "
                f"{np.mean([x['val_accuracy'] for x in recs]):.3f} | "
                f"{np.mean([x['test_accuracy'] for x in recs]):.3f} | "
                f"{np.mean([x['fit_seconds'] for x in recs]):.0f} |"
            )
    lines += current_defaults(base, batch)
    (HERE / "stable_uea7_batch.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def current_defaults(base, batch, rates=(0.0, 0.3, 0.5, 0.7), seeds=(0, 1, 2)):
    """The headline of the current defaults: the ``defaults`` rows, with ItalyPowerDemand's
    replaced by its batch-64 rows (the only set of the five whose batch the rule changes)."""
    sets = ["ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "PickupGestureWiimoteZ"]

    def acc(d, m, r):
        src, v = (batch, "defaults, batch N/8") if d == "ItalyPowerDemand" else (base, "defaults")
        got = [src.get(f"{v}|{d}|{m}|{r:g}|{s}") for s in seeds]
        return np.mean([g["test_accuracy"] for g in got]) if all(got) else None

    out = ["", "## Mean test accuracy of the current defaults over five sets (seeds 0-2)", "",
           "ItalyPowerDemand at batch 64 (the rule), the other four sets at batch 16, as in "
           "`stable_uea7_summary.md`'s `defaults` rows.", "",
           "| model | " + " | ".join(f"rate {r:g}" for r in rates) + " |",
           "|---|" + "---|" * len(rates)]  # fmt: skip
    for m, name in MODELS.items():
        cells = []
        for r in rates:
            vals = [acc(d, m, r) for d in sets]
            cells.append("–" if any(v is None for v in vals) else f"{np.mean(vals):.3f}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


if __name__ == "__main__":
    main()
