"""Hurst recovery: a latent SDE with a learnable MarkovFBM fitted to exact fractional OU data.

One configuration for every case, the estimator's defaults (100 Adam epochs, then the L-BFGS
polish of ``polish="auto"``) except ``latent_dim=1``::

    LatentSDEForecaster(latent_dim=1, noise=MarkovFBM(hurst=0.5, K=5, gamma_max=20,
                                                      learn_hurst=True))

(with fractional noise the default posterior is the backward filter, ``posterior=
"backward_filter"``). For each true H, fractional OU paths are generated exactly
(``neuralsde.datasets.simulate_fou``), observed at irregular times with noise 0.01, and the fit
starts at H = 0.5. The target is ``|H_hat - H| <= 0.1`` (goal 0.05) on the benchmark data
(theta 1, sigma 1, 64 series x 20 times, seed 0) and on fOU data with other theta, sigma,
numbers of series and observations and seeds, which no choice was made on.

Run: ``python benchmarks/hurst_recovery.py [--quick]``; writes
``benchmarks/results/hurst_recovery.{json,md}``.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import RESULTS, markdown, write

from neuralsde.data import IrregularBatch
from neuralsde.datasets import simulate_fou
from neuralsde.estimators import LatentSDEForecaster
from neuralsde.noise import MarkovFBM

# (label, theta, sigma, series, times, seed): the benchmark data first, then unseen cases
CASES = [
    ("benchmark data", 1.0, 1.0, 64, 20, 0),
    ("unseen: fast, quiet, dense", 3.0, 0.5, 48, 40, 1),
    ("unseen: slow, loud, sparse", 0.3, 2.0, 96, 12, 2),
]


def make_data(hurst: float, n_series: int, n_times: int, seed: int, theta=1.0, sigma=1.0):
    """Exact fOU paths on [0, 1] at irregular times, observation noise 0.01."""
    ds = simulate_fou(n_series, n_times, hurst=hurst, theta=theta, sigma=sigma, t_end=1.0,
                      irregular=True, seed=seed)  # fmt: skip
    batch = IrregularBatch.from_xarray(ds)
    g = torch.Generator().manual_seed(seed)
    noisy = batch.values + 0.01 * torch.randn(
        batch.values.shape, generator=g, dtype=batch.values.dtype
    )
    return IrregularBatch.from_padded(batch.times, noisy, batch.lengths)


def estimator(**overrides) -> LatentSDEForecaster:
    """The one configuration (``overrides`` only for the comparison rows)."""
    noise = MarkovFBM(hurst=0.5, K=5, gamma_max=20.0, learn_hurst=True)
    return LatentSDEForecaster(**{"latent_dim": 1, "noise": noise, "verbose": False,
                                  **overrides})  # fmt: skip


def recover(hurst: float, case=CASES[0], **overrides) -> dict:
    label, theta, sigma, series, times, seed = case
    data = make_data(hurst, series, times, seed, theta, sigma)
    model = estimator(**overrides)
    start = time.perf_counter()
    model.fit(data)
    h = model.hurst_
    return {
        "case": label, "theta": theta, "sigma": sigma, "series": series, "times": times,
        "seed": seed, "true_hurst": hurst, "estimated_hurst": h, "abs_error": abs(h - hurst),
        "within_0.1": abs(h - hurst) <= 0.1, "within_0.05": abs(h - hurst) <= 0.05,
        "fit_seconds": time.perf_counter() - start, "hurst_trajectory": model.hurst_history_,
        "overrides": {k: str(v) for k, v in overrides.items()},
    }  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hurst", type=float, nargs="+", default=[0.3, 0.7])
    p.add_argument("--quick", action="store_true", help="the benchmark data only")
    p.add_argument(
        "--compare", action="store_true", help="also the neural posterior and latent_dim=4"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    runs = []
    for case in CASES[:1] if args.quick else CASES:
        for h in args.hurst:
            runs.append(recover(h, case))
            r = runs[-1]
            print(f"{case[0]}: H = {h:.2f} -> {r['estimated_hurst']:.3f}", flush=True)
    if args.compare:
        for over in ({"posterior": "neural"}, {"latent_dim": 4}):
            for h in args.hurst:
                runs.append(recover(h, CASES[0], **over))
    rows = [[r["case"] + ("" if not r["overrides"] else f", {r['overrides']}"),
             f"{r['theta']:g} / {r['sigma']:g} / {r['series']} x {r['times']} / {r['seed']}",
             f"{r['true_hurst']:.2f}", f"{r['estimated_hurst']:.3f}", f"{r['abs_error']:.3f}",
             "yes" if r["within_0.1"] else "no", "yes" if r["within_0.05"] else "no",
             f"{r['fit_seconds']:.0f}"] for r in runs]  # fmt: skip
    table = (
        "`LatentSDEForecaster(latent_dim=1, noise=MarkovFBM(hurst=0.5, K=5, gamma_max=20, "
        "learn_hurst=True))`, every other argument at its default (backward-filter posterior, "
        "100 Adam epochs, then at most 50 L-BFGS evaluations, `polish='auto'`); exact fOU data "
        "on [0, 1] at irregular times, observation noise 0.01.\n\n"
        + markdown(
            [
                "data",
                "theta / sigma / series x times / seed",
                "true H",
                "estimated H",
                "abs error",
                "within 0.1",
                "within 0.05",
                "fit s",
            ],
            rows,
        )  # fmt: skip
    )
    table += "\n\n![Hurst trajectories](hurst_recovery.png)"
    write("hurst_recovery", {"cases": CASES, "runs": runs}, table)
    plot(runs)
    return runs


def plot(runs) -> None:
    """The learned H per epoch for every run: ``results/hurst_recovery.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.4))
    for i, r in enumerate(runs):
        style = "-" if not r["overrides"] else ":"
        label = r["case"] + (f", {r['overrides']}" if r["overrides"] else "")
        ax.plot(r["hurst_trajectory"], style, color=f"C{i % 10}", lw=1.2,
                label=f"{label}, true {r['true_hurst']}")  # fmt: skip
    for h in sorted({r["true_hurst"] for r in runs}):
        ax.axhspan(h - 0.05, h + 0.05, color="gray", alpha=0.15)
    ax.set(xlabel="epoch (last point: after the L-BFGS polish)", ylabel="learned H",
           ylim=(0.1, 0.9))  # fmt: skip
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(RESULTS / "hurst_recovery.png", dpi=100)


if __name__ == "__main__":
    main()
