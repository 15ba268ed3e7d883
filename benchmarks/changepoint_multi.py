"""Several changes in one series, and changes near the ends (issue 20, item 5): the detector's
ruptures searches with the SDE segment cost (``predict(search=...)``) against its peak picking
and ruptures' own costs.

    python benchmarks/changepoint_multi.py [--quick]

(a) Mixed changes: OU series of 1,000 points (t in [0, 50]) with 3 to 5 changes, each of the
level (mu +-1.5), the volatility (sigma x or / 2.4) or the mean-reversion speed (theta x or /
4 at equal stationary variance), at least 100 points apart; the number of changes is given
to every method. (b) Edges: 400 points, one change of volatility or mean-reversion speed at
10% of the length from either end, at each method's own default penalty (ruptures: Pelt with
the BIC-type penalty ``log(n) d`` on the signal's variance scale, for l2 and rbf). F1 with a
margin of 2% of the length (``neuralsde.changepoint.f1_score``), over 10 seeds per case.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import ruptures as rpt
from _common import markdown, write
from tqdm.auto import tqdm

from neuralsde.changepoint import f1_score
from neuralsde.datasets import simulate_regime_switching
from neuralsde.estimators import LatentSDEChangeDetector

BASE = {"mu": 0.0, "theta": 2.0, "sigma": 0.5}


def mixed(seed: int, n: int = 1000):
    """A series with 3-5 changes of mixed kinds: ``(x, bkps)``."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 6))
    while True:
        cps = np.sort(rng.choice(np.arange(100, n - 100), k, replace=False))
        if np.diff(cps).min() >= 100:
            break
    segs, cur = [dict(BASE)], dict(BASE)
    for _ in range(k):
        cur = dict(cur)
        kind = rng.choice(["mu", "sigma", "theta"])
        if kind == "mu":
            cur["mu"] = 1.5 if cur["mu"] == 0.0 else 0.0
        elif kind == "sigma":
            cur["sigma"] *= 2.4 if cur["sigma"] <= 0.5 else 1 / 2.4
        else:
            var = cur["sigma"] ** 2 / (2 * cur["theta"])
            cur["theta"] = cur["theta"] * 4 if cur["theta"] <= 2.0 else cur["theta"] / 4
            cur["sigma"] = float(np.sqrt(2 * cur["theta"] * var))
        segs.append(cur)
    ds = simulate_regime_switching(1, n, "mean", change_points=[int(c) for c in cps],
                                   segments=segs, t_end=50.0, seed=seed)  # fmt: skip
    return ds["values"].values[0, :, 0], [*map(int, cps), n]


def edge(seed: int, kind: str, where: float, n: int = 400):
    cp = int(round(where * n))
    ds = simulate_regime_switching(1, n, kind, change_points=[cp], seed=100 + seed)
    return ds["values"].values[0, :, 0], [cp, n]


def ruptures_known(name, x, k):
    s = x.reshape(-1, 1)
    if name == "Binseg l2":
        return rpt.Binseg(model="l2").fit(s).predict(n_bkps=k)
    if name == "Binseg rbf":
        return rpt.Binseg(model="rbf").fit(s).predict(n_bkps=k)
    if name == "BottomUp l2":
        return rpt.BottomUp(model="l2").fit(s).predict(n_bkps=k)
    if name == "KernelCPD rbf":
        return rpt.KernelCPD(kernel="rbf").fit(s).predict(n_bkps=k)
    if name == "Binseg ar(1)":
        return rpt.Binseg(model="ar", params={"order": 1}).fit(s).predict(n_bkps=k)
    raise ValueError(name)


def ruptures_default(name, x):
    s = x.reshape(-1, 1)
    n = len(s)
    if name == "Pelt l2 (BIC pen)":
        return rpt.Pelt(model="l2").fit(s).predict(pen=np.log(n) * float(np.var(s)))
    if name == "Pelt rbf (BIC pen)":
        return rpt.Pelt(model="rbf").fit(s).predict(pen=np.log(n))
    raise ValueError(name)


RUPTURES_KNOWN = ("Binseg l2", "Binseg rbf", "BottomUp l2", "KernelCPD rbf", "Binseg ar(1)")
RUPTURES_DEFAULT = ("Pelt l2 (BIC pen)", "Pelt rbf (BIC pen)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    seeds = range(3 if args.quick else 10)
    start = time.perf_counter()
    res = {"mixed": {}, "edges": {}}
    f1 = {}
    for seed in tqdm(seeds, desc="mixed"):
        x, bkps = mixed(seed)
        n, k = len(x), len(bkps) - 1
        margin = int(0.02 * n)
        det = LatentSDEChangeDetector(random_state=0).fit(x)
        runs = {
            "detector, peak picking": det.predict(n_bkps=k),
            "detector, Binseg with the SDE cost": det.predict(n_bkps=k, search="binseg"),
            "detector, BottomUp with the SDE cost": det.predict(n_bkps=k, search="bottomup"),
        }
        runs.update({name: ruptures_known(name, x, k) for name in RUPTURES_KNOWN})
        for name, pred in runs.items():
            f1.setdefault(name, []).append(f1_score(bkps, pred, margin))
    res["mixed"] = {name: float(np.mean(v)) for name, v in f1.items()}
    rows = [[name, f"{v:.3f}"] for name, v in res["mixed"].items()]
    md = markdown(["(a) 3-5 mixed changes, n = 1000, number known", "F1 (2% margin)"], rows)

    edge_f1 = {}
    cases = [(kind, where) for kind in ("volatility", "mean_reversion") for where in (0.1, 0.9)]
    for kind, where in tqdm(cases, desc="edges"):
        for seed in seeds:
            x, bkps = edge(seed, kind, where)
            margin = int(0.02 * len(x))
            det = LatentSDEChangeDetector(random_state=0).fit(x)
            runs = {"detector, peak picking (default pen)": det.predict(),
                    "detector, Binseg with the SDE cost (default pen)": det.predict(
                        search="binseg"),
                    "detector, Pelt with the SDE cost (default pen)": det.predict(
                        search="pelt")}  # fmt: skip
            runs.update({name: ruptures_default(name, x) for name in RUPTURES_DEFAULT})
            for name, pred in runs.items():
                edge_f1.setdefault(name, {}).setdefault(f"{kind} at {where:.0%}", []).append(
                    f1_score(bkps, pred, margin)
                )
    res["edges"] = {name: {c: float(np.mean(v)) for c, v in d.items()}
                    for name, d in edge_f1.items()}  # fmt: skip
    labels = list(next(iter(res["edges"].values())))
    md += "\n\n" + markdown(
        ["(b) one change at 10% from an end, n = 400", *labels, "mean"],
        [[name, *(f"{d[c]:.2f}" for c in labels), f"{np.mean(list(d.values())):.2f}"]
         for name, d in res["edges"].items()],
    )  # fmt: skip
    best_rpt = max(RUPTURES_KNOWN, key=lambda k: res["mixed"][k])
    ours = res["mixed"]["detector, Binseg with the SDE cost"]
    md += (
        f"\n\nDetector: `LatentSDEChangeDetector()` defaults (window 50, linear window SDEs). "
        f"(a) Binseg with the SDE cost: F1 {ours:.3f}; peak picking "
        f"{res['mixed']['detector, peak picking']:.3f}; the best ruptures cost ({best_rpt}) "
        f"{res['mixed'][best_rpt]:.3f}. {len(seeds)} seeds per case; "
        f"{time.perf_counter() - start:.0f} s in all.\n"
    )
    write("changepoint_multi" + ("_quick" if args.quick else ""), res, md)


if __name__ == "__main__":
    main()
