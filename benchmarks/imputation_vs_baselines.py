"""Imputation of gappy trajectory windows (issue 20, item 2): diffusion imputation, the latent
SDE posterior, statsmodels' Kalman smoother and linear interpolation, at 30%, 50% and 70%
missing, on OU and stochastic-Lorenz windows; and the generative comparison of the diffusion
model with the latent SDE's prior (signature-kernel MMD to held-out windows).

    python benchmarks/imputation_vs_baselines.py [--quick]

Windows of 32 points (OU: theta 1, stationary variance 1, dt 0.25; Lorenz: x, y, z over t in
[0, 2], standardised). Missing entries drawn independently per point and channel (each window
keeps at least one point per channel). Scores on the missing entries of 100 held-out windows:
RMSE of the mean (the point estimate) and CRPS (32 samples; Gaussian for the smoother).

- diffusion: the score model of the trajectory benchmarks (VP SDE, ScoreMLP), observation
  guidance (``neuralsde.diffusion.impute``, Euler-Maruyama, 200 steps);
- latent SDE: ``LatentSDEForecaster`` with its defaults, 30 epochs on 2,000 training windows
  with 50% missing, posterior samples at the windows' own times;
- Kalman smoother: statsmodels ``SARIMAX`` AR(1) smoother with fixed parameters per channel:
  for OU the exact model (``phi = e^{-theta dt}``, unit stationary variance), for Lorenz the
  AR(1) fitted by Yule-Walker on the training windows;
- linear interpolation (flat beyond the first and last observed point).
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
import xarray as xr  # noqa: E402
from _common import RESULTS, markdown, write  # noqa: E402
from diffusion_restoration import lorenz_windows  # noqa: E402
from diffusion_trajectories import DT, LENGTH, THETA, fit_ou_score, ou_windows, sig_mmd  # noqa: E402

from neuralsde.diffusion import VPSDE, ScoreMLP, sample, train_score  # noqa: E402
from neuralsde.diffusion.trajectories import impute  # noqa: E402
from neuralsde.estimators import LatentSDEForecaster  # noqa: E402
from neuralsde.metrics import crps_gaussian, crps_samples  # noqa: E402

RATES = (0.3, 0.5, 0.7)
N_SAMPLES = 32


def make_mask(shape, rate, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape, generator=g) >= rate
    mask[:, 0] |= ~mask.any(1)
    return mask


def linear(observed, mask):
    out = observed.clone()
    t = np.arange(observed.shape[1])
    for i in range(observed.shape[0]):
        for c in range(observed.shape[2]):
            m = mask[i, :, c].numpy()
            out[i, :, c] = torch.tensor(np.interp(t, t[m], observed[i, m, c].numpy()))
    return out


def kalman(observed, mask, phi, var):
    """AR(1) smoother with fixed ``phi`` and stationary ``var`` per channel: (mean, sd)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    mean, sd = torch.zeros_like(observed), torch.zeros_like(observed)
    for c in range(observed.shape[2]):
        params = [phi[c], var[c] * (1 - phi[c] ** 2)]
        for i in range(observed.shape[0]):
            y = observed[i, :, c].double().numpy().copy()
            y[~mask[i, :, c].numpy()] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = SARIMAX(y, order=(1, 0, 0)).smooth(params)
            mean[i, :, c] = torch.tensor(res.smoothed_state[0])
            sd[i, :, c] = torch.tensor(np.sqrt(np.maximum(res.smoothed_state_cov[0, 0], 1e-12)))
    return mean, sd


def as_dataset(values, times):
    return xr.Dataset({"values": (("series", "time", "channel"), values.double().numpy())},
                      coords={"time": times})  # fmt: skip


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    sde = VPSDE()
    times = DT * np.arange(LENGTH)
    results, tables, examples = {}, [], {}
    for data in ("OU", "stochastic Lorenz"):
        windows = ou_windows if data == "OU" else lorenz_windows
        train, _ = windows(2000 if args.quick else 20000, seed=0)
        test, _ = windows(100, seed=6)
        held, _ = windows(200, seed=9)
        ch = train.shape[-1]
        if data == "OU":
            score, _, _ = fit_ou_score(train, sde, args.quick)
            phi, var = [float(np.exp(-THETA * DT))], [1.0]
        else:
            score, _ = train_score(train, sde, ScoreMLP((LENGTH, ch), hidden=256, depth=4),
                                   epochs=5 if args.quick else 20, batch_size=256, lr=1e-3,
                                   ema_decay=0.999, generator=torch.Generator().manual_seed(0),
                                   verbose=False)  # fmt: skip
            x = train.double()
            var = x.var((0, 1)).tolist()
            phi = (((x[:, 1:] - x.mean((0, 1))) * (x[:, :-1] - x.mean((0, 1)))).mean((0, 1))
                   / x.var((0, 1))).tolist()  # fmt: skip
        # the latent SDE learns from gappy training windows (50% missing)
        sub = train[:2000]
        gappy = torch.where(make_mask(sub.shape, 0.5, 1), sub, torch.nan)
        t0 = time.perf_counter()
        latent = LatentSDEForecaster(epochs=5 if args.quick else 30, random_state=0,
                                     verbose=False).fit(as_dataset(gappy, times))  # fmt: skip
        latent_s = time.perf_counter() - t0
        # generation: the latent SDE's prior against the diffusion model
        with torch.no_grad():
            gen = sample(score, sde, (200, LENGTH, ch), method="euler", steps=500,
                         generator=torch.Generator().manual_seed(3))  # fmt: skip
        prior = latent.sample_prior(times, n_samples=200, random_state=3)["samples"].values
        prior = torch.tensor(prior[:, 0], dtype=torch.float32)
        held2, _ = windows(200, seed=10)
        k = 1.0 if data == "OU" else 0.25  # Lorenz: scaled so the signature kernel stays finite
        gen_rows = {"diffusion (Euler-Maruyama, 500 steps)": sig_mmd(k * gen, k * held),
                    "latent SDE prior": sig_mmd(k * prior, k * held),
                    "held-out vs held-out (floor)": sig_mmd(k * held2, k * held)}  # fmt: skip
        rows = {}
        for rate in RATES:
            mask = make_mask(test.shape, rate, 7)
            miss = ~mask
            observed = torch.where(mask, test, torch.nan)
            with torch.no_grad():
                ds = impute(score, sde, observed, times=times, n_samples=N_SAMPLES,
                            method="euler", steps=200,
                            generator=torch.Generator().manual_seed(8))  # fmt: skip
            diff = torch.tensor(ds["samples"].values, dtype=torch.float32)
            post = latent.predict(as_dataset(observed, times), n_samples=N_SAMPLES,
                                  random_state=8)["samples"].values  # fmt: skip
            post = torch.tensor(post, dtype=torch.float32)
            km, ks = kalman(observed, mask, phi, var)
            lin = linear(observed, mask)
            y = test[miss].double().numpy()

            def score_samples(s, y=y, miss=miss):
                s = s.double()
                rmse = float(((s.mean(0)[miss].numpy() - y) ** 2).mean() ** 0.5)
                crps = float(crps_samples(s[:, miss].numpy(), y).mean())
                return rmse, crps

            r = {"diffusion imputation": score_samples(diff),
                 "latent SDE posterior": score_samples(post)}  # fmt: skip
            kal = float(((km[miss].double().numpy() - y) ** 2).mean() ** 0.5)
            r["Kalman smoother" + (" (exact OU model)" if data == "OU" else " (AR(1))")] = (
                kal, float(crps_gaussian(km[miss].double().numpy(),
                                         ks[miss].double().numpy(), y).mean()))  # fmt: skip
            li = float(((lin[miss].double().numpy() - y) ** 2).mean() ** 0.5)
            r["linear interpolation"] = (li, float(np.abs(lin[miss].double().numpy() - y).mean()))
            rows[rate] = r
            if rate == 0.5:
                examples[data] = (test, observed, diff, post, km, lin)
        results[data] = {
            "imputation": {f"{rate:.0%}": {k: {"rmse": v[0], "crps": v[1]} for k, v in r.items()}
                           for rate, r in rows.items()},
            "generation_sig_mmd2": gen_rows,
            "latent_fit_seconds": latent_s,
        }  # fmt: skip
        names = list(rows[RATES[0]])
        table = markdown(
            [f"{data}: RMSE / CRPS on the missing entries", *(f"{r:.0%} missing" for r in RATES)],
            [[n, *(f"{rows[r][n][0]:.3f} / {rows[r][n][1]:.3f}" for r in RATES)] for n in names],
        )
        lin50 = rows[0.5]["linear interpolation"][0]
        dif50 = rows[0.5]["diffusion imputation"][0]
        kal50 = [v for k, v in rows[0.5].items() if k.startswith("Kalman")][0][0]
        lat50 = rows[0.5]["latent SDE posterior"][0]
        table += (
            f"\n\nAt 50% missing, RMSE relative to linear interpolation: diffusion "
            f"{dif50 / lin50 - 1:+.1%}, latent SDE {lat50 / lin50 - 1:+.1%}, Kalman smoother "
            f"{kal50 / lin50 - 1:+.1%}. Generation, signature-kernel MMD^2 to 200 held-out "
            f"windows{' (values scaled by 1/4)' if data != 'OU' else ''}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in gen_rows.items())
            + "."
        )
        tables.append(table)

    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6))
    for ax, (data, (test, observed, diff, post, km, lin)) in zip(axes, examples.items(),
                                                                 strict=True):  # fmt: skip
        i, t = 0, np.arange(LENGTH)
        ax.plot(t, test[i, :, 0], "k", lw=1.5, label="truth")
        ax.plot(t, observed[i, :, 0], "ko", ms=4, label="observed")
        m, s = diff[:, i, :, 0].mean(0), diff[:, i, :, 0].std(0)
        ax.plot(t, m, "C0", label="diffusion mean")
        ax.fill_between(t, m - 2 * s, m + 2 * s, color="C0", alpha=0.2)
        ax.plot(t, post[:, i, :, 0].mean(0), "C2", label="latent SDE mean")
        ax.plot(t, km[i, :, 0], "C1--", label="Kalman smoother")
        ax.plot(t, lin[i, :, 0], "C3:", label="linear")
        ax.set_title(f"{data}, 50% missing (first channel)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "imputation_vs_baselines.png", dpi=100)
    md = "\n\n".join(tables) + (
        f"\n\n{time.perf_counter() - start:.0f} s in all. "
        f"![imputation](imputation_vs_baselines.png)\n"
    )
    write("imputation_vs_baselines" + ("_quick" if args.quick else ""), results, md)


if __name__ == "__main__":
    main()
