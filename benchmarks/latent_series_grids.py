"""Latent SDE fits on one grid per series against the union grid of a mini-batch.

Runs ``latent_irregular_fit.py`` (OU, 32 series x 100 irregular times, 50% missing, the last
10% of the span held out, 100 epochs) with each series solved on its own times (the default)
and with ``--union`` (every series of a mini-batch on the union of their times, the pre-#12
grid), on two kinds of data:

- *shared times*: one irregular time axis for all series (the benchmark of issue #5); each
  series' own grid then *is* the union grid, so both give the same fit;
- *own times*: every series has its own irregular times, the case the per-series grids are
  for: the union of a mini-batch of ``B`` series has about ``B`` times as many time stamps.

Reported: fit time, held-out 90% coverage and mean log predictive density. Run
``python benchmarks/latent_series_grids.py`` (about two hours on one core), or
``--from DIR`` to tabulate runs written there by ``latent_irregular_fit.py --out DIR``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import markdown, write
from latent_irregular_fit import main as fit

RUNS = [  # (data, batch, extra flags)
    ("shared times", 8, []),
    ("own times", 8, ["--own-times"]),
    ("own times", 32, ["--own-times"]),
]


def stem(data, union):
    return (
        "latent_irregular_fit_ou"
        + ("_own_times" if data == "own times" else "")
        + ("_union" if union else "")
    )


def table(records):
    rows, out = [], {}
    for data, batch, _ in RUNS:
        pair = {u: records.get((data, batch, u)) for u in (False, True)}
        if None in pair.values():
            continue
        series, union = pair[False], pair[True]
        speedup = union["fit_seconds"] / series["fit_seconds"]
        out[f"{data}, batch {batch}"] = {"series": series, "union": union, "speedup": speedup}
        for name, r in (("own grid per series", series), ("union grid", union)):
            res = r["latent_sde"]
            rows.append([data, batch, name, f"{r['fit_seconds']:.0f}", f"{res['coverage90']:.3f}",
                         f"{res['log_density']:.4f}",
                         f"{speedup:.2f}x" if r is series else ""])  # fmt: skip
    md = markdown(
        ["data", "batch", "grid", "fit (s)", "90% coverage", "log predictive density",
         "speed-up"], rows,
    )  # fmt: skip
    return out, md


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="read runs from latent_irregular_fit.py --out DIR (per data/batch dirs)",
    )
    p.add_argument("--work", type=Path, default=Path("/tmp/latent_series_grids"))
    args = p.parse_args(argv)
    records = {}
    for data, batch, flags in RUNS:
        for union in (False, True):
            where = (args.source or args.work) / f"{data.split()[0]}_b{batch}"
            path = where / f"{stem(data, union)}.json"
            if args.source is None:
                fit([*flags, "--batch", str(batch), "--out", str(where)]
                    + (["--union"] if union else []))  # fmt: skip
            if path.exists():
                records[data, batch, union] = json.loads(path.read_text())
    out, md = table(records)
    write("latent_series_grids", out, md)


if __name__ == "__main__":
    main()
