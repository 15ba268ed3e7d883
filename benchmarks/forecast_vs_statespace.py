"""Probabilistic forecasts of real gappy series (issue 20, item 1): the latent SDE (Brownian and
fractional noise) against statsmodels' state-space models and the seasonal-naive forecast.

    python benchmarks/forecast_vs_statespace.py [--quick] [--fresh]

Each latent fit's samples are kept in ``results/forecast_parts/`` (not committed), so an
interrupted run resumes where it stopped; ``--fresh`` refits everything.

Series (shipped under ``datasets/``): Mauna Loa CO2 weekly (59 real gaps), the Nile's annual
flow, and El Nino 1+2 monthly sea surface temperature. Each is held out over its last 15%;
inside the training span 30% of the observed points are removed at random (seed 0), on top
of the real gaps. Every model sees only the gappy training span.

Models:
- ``LatentSDEForecaster`` with its defaults, Brownian and fractional noise (learnable H), and
  the series' season length where it has one (``seasonal_period``; the same information
  statsmodels' seasonal models get); each without and with a deterministic linear trend
  (``trend=True``; statsmodels likewise offers local level and local linear trend);
- statsmodels ``UnobservedComponents``: local level, local linear trend, each plus a
  trigonometric seasonal (3 harmonics) where the series has a season; ``SARIMAX``: ARIMA(1,1,1)
  with Fourier terms of the season as regressors; all fitted by their own maximum likelihood,
  NaN handled by the Kalman filter;
- seasonal naive: the value one season earlier (last value without a season), with the
  Gaussian interval of Hyndman & Athanasopoulos (sd of the in-sample seasonal differences times
  sqrt(number of seasons ahead)).

Metrics on the held-out points: CRPS (from 400 samples, or exact for a Gaussian predictive;
``neuralsde.metrics``), RMSE of the median, 50% and 90% central-interval coverage, fit seconds.
"""

from __future__ import annotations

import argparse
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import RESULTS, markdown, write  # noqa: E402
from scipy import stats  # noqa: E402

from neuralsde.datasets import load_elnino, load_mauna_loa_co2, load_nile  # noqa: E402
from neuralsde.estimators import LatentSDEForecaster  # noqa: E402
from neuralsde.metrics import coverage, crps_gaussian, crps_samples  # noqa: E402

# name -> (loader, season in steps for statsmodels, the same season as a duration)
SERIES = {
    "Mauna Loa CO2 (weekly)": (load_mauna_loa_co2, 365.25 / 7, "365.25D"),
    "Nile (annual)": (load_nile, None, None),
    "El Nino 1+2 SST (monthly)": (load_elnino, 12, "365.25D"),
}
HOLDOUT, DROP, N_SAMPLES = 0.15, 0.3, 400
Z50, Z90 = stats.norm.ppf(0.75), stats.norm.ppf(0.95)


def split(ds, seed=0):
    """``(train dataset with extra NaN, test times, test values)``."""
    y = ds["values"].values[0, :, 0]
    n_train = len(y) - int(round(HOLDOUT * len(y)))
    train = ds.isel(time=slice(0, n_train)).copy(deep=True)
    ytr = train["values"].values[0, :, 0]
    observed = np.flatnonzero(np.isfinite(ytr))
    drop = np.random.default_rng(seed).choice(observed, int(DROP * len(observed)), replace=False)
    ytr[drop] = np.nan
    test = np.isfinite(y[n_train:])
    return train, ds["time"].values[n_train:][test], y[n_train:][test], test


def gaussian_scores(mean, sd, y):
    return {
        "crps": float(crps_gaussian(mean, sd, y).mean()),
        "rmse": float(np.sqrt(((mean - y) ** 2).mean())),
        "cov50": coverage(mean - Z50 * sd, mean + Z50 * sd, y),
        "cov90": coverage(mean - Z90 * sd, mean + Z90 * sd, y),
    }


def sample_scores(samples, y):
    q = np.quantile(samples, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    return {
        "crps": float(crps_samples(samples, y).mean()),
        "rmse": float(np.sqrt(((q[2] - y) ** 2).mean())),
        "cov50": coverage(q[1], q[3], y),
        "cov90": coverage(q[0], q[4], y),
    }


def fourier(n, period, k=3, start=0):
    t = np.arange(start, start + n)[:, None] * np.arange(1, k + 1)[None] * 2 * np.pi / period
    return np.concatenate([np.sin(t), np.cos(t)], 1)


def statespace(ytr, n_ahead, period, keep):
    """The statsmodels models: name -> (forecast mean, sd, seconds)."""
    import statsmodels.api as sm

    specs = {"UC local level": {"level": "local level"},
             "UC local linear trend": {"level": "local linear trend"}}  # fmt: skip
    out = {}
    season = [{"period": period, "harmonics": 3}] if period else None
    for name, kw in specs.items():
        if season:
            kw = {**kw, "freq_seasonal": season}
            name += " + seasonal"
        start = time.perf_counter()
        res = sm.tsa.UnobservedComponents(ytr, **kw).fit(disp=False, maxiter=200)
        fc = res.get_forecast(n_ahead)
        out[name] = (fc.predicted_mean[keep], np.sqrt(fc.var_pred_mean[keep]),
                     time.perf_counter() - start)  # fmt: skip
    exog = fourier(len(ytr), period) if period else None
    start = time.perf_counter()
    res = sm.tsa.SARIMAX(ytr, exog=exog, order=(1, 1, 1), trend="t").fit(disp=False, maxiter=200)
    fc = res.get_forecast(n_ahead, exog=fourier(n_ahead, period, start=len(ytr)) if period
                          else None)  # fmt: skip
    name = "SARIMAX(1,1,1) + drift" + (" + Fourier(3)" if period else "")
    out[name] = (fc.predicted_mean[keep], np.sqrt(fc.var_pred_mean[keep]),
                 time.perf_counter() - start)  # fmt: skip
    return out


def seasonal_naive(ytr, n_ahead, period, keep):
    """Value one season back (the last observed value at that phase), Gaussian interval."""
    m = int(round(period)) if period else 1
    y = ytr.copy()
    for i in range(len(y)):  # fill gaps with the last observed value at the same phase
        if not np.isfinite(y[i]) and i >= m:
            y[i] = y[i - m]
    last = y[-m:]
    h = np.arange(1, n_ahead + 1)
    mean = last[(h - 1) % m]
    diffs = y[m:] - y[:-m]
    sd = np.nanstd(diffs[np.isfinite(diffs)]) * np.sqrt((h - 1) // m + 1)
    return mean[keep], sd[keep]


PARTS = RESULTS / "forecast_parts"


def cached_latent(key, fresh, *args, **kwargs):
    """:func:`latent`'s ``(samples, seconds, hurst)``, read from ``PARTS`` when a run with the
    same key has finished before."""
    path = PARTS / f"{key}.npz"
    if path.exists() and not fresh:
        z = np.load(path)
        return z["samples"], float(z["seconds"]), float(z["hurst"])
    s, sec, model = latent(*args, **kwargs)
    hurst = float(getattr(model, "hurst_", np.nan) or np.nan)
    PARTS.mkdir(parents=True, exist_ok=True)
    np.savez(path, samples=s, seconds=sec, hurst=hurst)
    return s, sec, hurst


def latent(train, test_times, period, noise, quick, seed=0, trend=False):
    kw = {"noise": noise, "random_state": seed, "verbose": False, "trend": trend}
    if period:
        kw["seasonal_period"] = period
    if quick:
        kw["epochs"] = 10
    start = time.perf_counter()
    model = LatentSDEForecaster(**kw).fit(train)
    seconds = time.perf_counter() - start
    out = model.predict(train, times=test_times, n_samples=N_SAMPLES, random_state=seed + 1)
    return out["samples"].values[:, 0, :, 0], seconds, model


VARIANTS = [("brownian", False), ("fractional", False), ("brownian", True), ("fractional", True)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fresh", action="store_true", help="ignore finished latent fits")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results, tables, fans = {}, [], {}
    wall = time.perf_counter()
    for name, (loader, period, duration) in SERIES.items():
        ds = loader()
        train, t_test, y_test, keep = split(ds)
        ytr = train["values"].values[0, :, 0]
        rows = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = statespace(ytr, len(keep), period, keep)
        for m, (mean, sd, sec) in models.items():
            rows[m] = {**gaussian_scores(mean, sd, y_test), "seconds": sec}
        mean, sd = seasonal_naive(ytr, len(keep), period, keep)
        rows["seasonal naive" if period else "naive (last value)"] = {
            **gaussian_scores(mean, sd, y_test), "seconds": 0.0}  # fmt: skip
        samples = {}
        for noise, trend in VARIANTS:
            label = f"latent SDE ({noise}{', trend' if trend else ''})"
            key = f"{'_'.join(name.split()[:2])}_{noise}_{'trend' if trend else 'flat'}"
            key += "_quick" if args.quick else ""
            s, sec, hurst = cached_latent(key, args.fresh, train, t_test, duration, noise,
                                          args.quick, trend=trend)  # fmt: skip
            rows[label] = {**sample_scores(s, y_test), "seconds": sec}
            if noise == "fractional":
                rows[label]["hurst"] = hurst
            samples[label] = s
        best_sm = min((k for k in rows if k.startswith(("UC", "SARIMAX"))),
                      key=lambda k: rows[k]["crps"])  # fmt: skip
        results[name] = {"rows": rows, "best_statsmodels": best_sm, "n_test": int(keep.sum()),
                         "n_train_observed": int(np.isfinite(ytr).sum())}  # fmt: skip
        tables.append(markdown(
            [name, "CRPS", "RMSE (median)", "50% cov.", "90% cov.", "fit s"],
            [[k + (" **(best statsmodels)**" if k == best_sm else ""), f"{v['crps']:.4g}",
              f"{v['rmse']:.4g}", f"{v['cov50']:.2f}", f"{v['cov90']:.2f}",
              f"{v['seconds']:.1f}"] for k, v in rows.items()]))  # fmt: skip
        best_latent = min(samples, key=lambda k: rows[k]["crps"])
        fans[name] = (ds, train, t_test, y_test, samples[best_latent], best_latent,
                      models[best_sm], best_sm)  # fmt: skip
    wall = time.perf_counter() - wall

    fig, axes = plt.subplots(len(fans), 1, figsize=(11, 3.2 * len(fans)))
    for ax, (name, (ds, train, t_test, y_test, s, lat, (mean, sd, _), best)) in zip(
        axes, fans.items(), strict=True
    ):
        t_all = ds["time"].values
        n_show = min(len(t_all), 3 * len(t_test) + 40)
        tt = train["time"].values
        ax.plot(tt[-(n_show - len(t_test)):],
                train["values"].values[0, -(n_show - len(t_test)):, 0], "k.", ms=2,
                label="training points (30% removed)")  # fmt: skip
        ax.plot(t_test, y_test, "r.", ms=3, label="held out")
        q = np.quantile(s, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
        ax.fill_between(t_test, q[0], q[4], color="C0", alpha=0.2, label=f"{lat} 90%")
        ax.fill_between(t_test, q[1], q[3], color="C0", alpha=0.3)
        ax.plot(t_test, q[2], "C0")
        ax.plot(t_test, mean, "C1", lw=1, label=f"{best} mean")
        ax.plot(t_test, mean - Z90 * sd, "C1--", lw=0.8)
        ax.plot(t_test, mean + Z90 * sd, "C1--", lw=0.8, label=f"{best} 90%")
        ax.set_title(name)
    for ax in axes:
        ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(RESULTS / "forecast_vs_statespace.png", dpi=100)

    def beats(r):
        best = r["rows"][r["best_statsmodels"]]["crps"]
        return min(v["crps"] for k, v in r["rows"].items() if k.startswith("latent")) <= best

    wins = [n for n, r in results.items() if beats(r)]
    md = "\n\n".join(tables)
    md += (
        f"\n\nHeld out: the last {HOLDOUT:.0%} of each series; {DROP:.0%} of the training "
        f"points removed at random. CRPS in the series' units (lower is better); coverage of "
        f"the central 50% and 90% intervals. The latent SDE beats the best statsmodels model's "
        f"CRPS on {len(wins)} of {len(results)} series ({', '.join(wins) or 'none'}). "
        f"{wall:.0f} s in all. ![fan charts](forecast_vs_statespace.png)\n"
    )
    write("forecast_vs_statespace" + ("_quick" if args.quick else ""),
          {"results": results, "wins": wins}, md)  # fmt: skip


if __name__ == "__main__":
    main()
