"""A real seasonal series with a change 23 points from its end (issue 20, item 5).

    python benchmarks/changepoint_seasonal.py

UK car drivers killed or seriously injured, monthly 1969-1984 (192 points,
``load_uk_driver_deaths``): the seat-belt law took effect at index 169 (February 1983). Every
method runs at its own default penalty: the detector (defaults, with and without
``seasonal_period=12``; peak picking and the ruptures searches with its SDE cost) and ruptures'
Pelt and Binseg with the l2, rbf and Gaussian costs (BIC-type penalty ``log(n)`` on the
standardised series, ``min_size`` 12). The series also shows the 1974 oil crisis (a level drop
around index 60-72), which the annotation does not mark: F1 against the law change alone
(margin 3 points, 2% of the length) counts it as a false alarm.
"""

from __future__ import annotations

import time

import numpy as np
import ruptures as rpt
from _common import markdown, write

from neuralsde.changepoint import f1_score
from neuralsde.datasets import load_uk_driver_deaths
from neuralsde.estimators import LatentSDEChangeDetector

LAW = 169


def main() -> dict:
    start = time.perf_counter()
    x = load_uk_driver_deaths()["values"].values[0, :, 0]
    n, truth, margin = len(x), [LAW, len(x)], int(0.02 * len(x))
    z = ((x - x.mean()) / x.std())[:, None]
    runs = {}
    for label, season in (("no season", None), ("seasonal_period=12", 12)):
        det = LatentSDEChangeDetector(seasonal_period=season, random_state=0).fit(x)
        for search in ("peaks", "binseg", "bottomup", "pelt"):
            runs[f"detector ({label}), {search}"] = det.predict(search=search)
    pen = float(np.log(n))
    for model in ("l2", "rbf", "normal"):
        runs[f"ruptures Pelt {model}"] = rpt.Pelt(model=model, min_size=12).fit(z).predict(pen=pen)
        runs[f"ruptures Binseg {model}"] = (
            rpt.Binseg(model=model, min_size=12).fit(z).predict(pen=pen)
        )
    res = {name: {"breakpoints": [int(b) for b in bk[:-1]], "f1": f1_score(truth, bk, margin)}
           for name, bk in runs.items()}  # fmt: skip
    rows = [[name, str(r["breakpoints"]), f"{r['f1']:.2f}"] for name, r in res.items()]
    md = markdown(["method (default penalty)", "breakpoints", "F1, law at 169"], rows)
    md += f"\n\n{time.perf_counter() - start:.0f} s in all.\n"
    write("changepoint_seasonal", {"law": LAW, "margin": margin, "runs": res}, md)
    return res


if __name__ == "__main__":
    main()
