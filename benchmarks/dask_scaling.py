"""Chunked forecasting with dask (issue 18): series per second for forecasting 20,000 gappy
series with a small ``LatentSDEForecaster``, in memory (one process) and over a dask-backed
array on a ``dask.distributed`` LocalCluster of 1 and 2 single-threaded worker processes.

    python benchmarks/dask_scaling.py [--series 20000] [--chunk 500]

Also measured, for the extrapolation to a large cluster (benchmarks/README.md): the driver's
serial work (the pass that reads every chunk's time stamps, the one-series probe that shapes
the result, building the graph), the compute time of one chunk, and the bytes that travel.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import xarray as xr
from _common import markdown, write

from neuralsde.estimators import LatentSDEForecaster


def fleet(n: int, length: int = 24, seed: int = 0) -> xr.DataArray:
    """``n`` Ornstein-Uhlenbeck sensors (mean-reversion rate, level and noise differ per
    sensor) read at shared irregular times, 25% of the readings missing."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 10, length))
    theta, mu, sig = rng.uniform(0.3, 2, n), rng.normal(0, 1, n), rng.uniform(0.2, 0.6, n)
    x = np.empty((n, length))
    x[:, 0] = mu + rng.normal(0, sig / np.sqrt(2 * theta))
    for k in range(1, length):
        a = np.exp(-theta * (t[k] - t[k - 1]))
        sd = sig * np.sqrt((1 - a * a) / (2 * theta))
        x[:, k] = mu + a * (x[:, k - 1] - mu) + sd * rng.normal(size=n)
    x[rng.random(x.shape) < 0.25] = np.nan
    x[:, 0] = np.where(np.isnan(x[:, 0]), mu, x[:, 0])  # every sensor read at least once
    return xr.DataArray(x[..., None], dims=("series", "time", "channel"),
                        coords={"series": np.arange(n), "time": t})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    data = fleet(args.series)
    horizon = np.linspace(float(data.time[-1]), float(data.time[-1]) + 2, 9)[1:]
    model = LatentSDEForecaster(epochs=10, verbose=False, random_state=0)
    model.fit(data.isel(series=slice(0, 200)))
    kw = dict(times=horizon, n_samples=args.samples)
    rows = {}

    start = time.perf_counter()
    eager = model.predict(data, **kw)
    rows["in memory, 1 process"] = time.perf_counter() - start
    print(f"in memory: {rows['in memory, 1 process']:.1f} s ({torch.get_num_threads()} threads)")

    chunked = data.chunk({"series": args.chunk})
    detail = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):  # fmt: skip
            model.predict(chunked.isel(series=slice(0, 2 * args.chunk)), **kw).compute()  # warm
            start = time.perf_counter()
            lazy = model.predict(chunked, **kw)
            built = time.perf_counter() - start
            out = lazy.compute()
            total = time.perf_counter() - start
        rows[f"dask, {workers} worker{'s' if workers > 1 else ''}"] = total
        detail[workers] = {"driver_s": built, "total_s": total}
        gap = float(np.max(np.abs(out["samples"].values - eager["samples"].values)))
        print(f"{workers} worker(s): {total:.1f} s (driver {built:.1f} s), max |diff| {gap:.1e}")
        detail[workers]["max_abs_diff_vs_memory"] = gap

    block = chunked.isel(series=slice(0, args.chunk)).compute()
    start = time.perf_counter()
    model.predict(block, **kw)
    per_chunk = time.perf_counter() - start
    config, weights = model.to_bytes()
    speedup = rows["dask, 1 worker"] / rows["dask, 2 workers"]
    table = [[name, f"{wall:.1f}", f"{args.series / wall:,.0f}"] for name, wall in rows.items()]
    md = markdown(["run", "wall s", "series / s"], table)
    md += (
        f"\n\n2 workers / 1 worker: **{speedup:.2f}x**. {args.series:,} series, chunks of "
        f"{args.chunk} ({args.series // args.chunk} tasks), {args.samples} posterior samples, "
        f"{len(horizon)} forecast times. Driver time before the first task (stamps pass, probe, "
        f"graph): {detail[2]['driver_s']:.2f} s; one chunk alone: {per_chunk:.2f} s; model "
        f"payload {len(config) + len(weights):,} bytes per task.\n"
    )
    write("dask_scaling", {"series": args.series, "chunk": args.chunk,
                           "samples": args.samples, "wall_s": rows, "detail": detail,
                           "speedup_2_over_1": speedup, "chunk_s": per_chunk,
                           "payload_bytes": len(config) + len(weights)}, md)  # fmt: skip


if __name__ == "__main__":
    main()
