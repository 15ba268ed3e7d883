"""The end-to-end demo on shipped data (``neuralsde demo``): solver accuracy, sample paths,
the shipped data, a gappy classification and a change point."""

from __future__ import annotations

import time
from pathlib import Path

import torch


def _strong_error_table(quick: bool):
    """Strong errors E|y_T^dt - y_T^ref| of several methods on an OU process and a neural SDE,
    each against a fine-step reference on the same Brownian path (float64)."""
    from neuralsde.core import solve
    from neuralsde.core.brownian import BrownianPath
    from neuralsde.examples import OU, NeuralSDE

    torch.manual_seed(0)
    batch = 500 if quick else 2000
    dts = [2.0**-k for k in range(3, 7)]
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    problems = {
        "OU": (OU(theta=2.0, mu=0.5, sigma=0.6), 1),
        "neural SDE": (NeuralSDE(2, width=32).double(), 2),
    }
    methods = {
        "ito": ["euler", "milstein", "srk"],
        "stratonovich": ["heun", "midpoint", "reversible_heun"],
    }
    rows = []
    torch.set_grad_enabled(False)
    for name, (sde, d) in problems.items():
        y0 = torch.full((batch, d), 1.0, dtype=torch.float64)
        gen = torch.Generator().manual_seed(1)
        bm = BrownianPath(0.0, 1.0, 2**11, (batch, d), generator=gen)
        for calculus, names in methods.items():
            sde.sde_type = calculus
            ref_method = "srk" if calculus == "ito" else "heun"
            ref = solve(sde, y0, ts, method=ref_method, dt=2**-11, bm=bm)[-1]
            for method in names:
                errs = [
                    (solve(sde, y0, ts, method=method, dt=dt, bm=bm)[-1] - ref).abs().mean().item()
                    for dt in dts
                ]
                rows.append((name, calculus, method, errs))
        sde.sde_type = "ito"
    torch.set_grad_enabled(True)
    header = f"{'SDE':<11} {'calculus':<13} {'method':<16}" + "".join(
        f"dt=1/{round(1 / dt):<6}" for dt in dts
    )
    lines = [header, "-" * len(header)]
    for name, calculus, method, errs in rows:
        lines.append(
            f"{name:<11} {calculus:<13} {method:<16}" + "".join(f"{e:<10.2e}" for e in errs)
        )
    return "\n".join(lines)


def _paths_figure(out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralsde.core import solve
    from neuralsde.examples import OU, NeuralSDE

    gen = torch.Generator().manual_seed(0)
    ts = torch.linspace(0, 3, 151)
    ou = OU(theta=1.5, mu=0.5, sigma=0.6)
    y_ou = solve(ou, torch.full((200, 1), 2.0), ts, dt=0.01, generator=gen)
    torch.manual_seed(1)
    neural = NeuralSDE(2, width=32)
    with torch.no_grad():
        y_nn = solve(neural, torch.zeros(8, 2), ts, method="srk", dt=0.01, generator=gen)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    t = ts.numpy()
    axes[0].plot(t, y_ou[:, :20, 0].numpy(), lw=0.7, alpha=0.6)
    mean = [ou.mean(2.0, s) for s in t]
    sd = [ou.var(s) ** 0.5 for s in t]
    lo = [m - 2 * s for m, s in zip(mean, sd, strict=False)]
    hi = [m + 2 * s for m, s in zip(mean, sd, strict=False)]
    axes[0].plot(t, mean, "k", lw=2, label="exact mean")
    axes[0].fill_between(t, lo, hi, color="k", alpha=0.12, label="exact mean ± 2 sd")
    axes[0].set(title="Ornstein-Uhlenbeck (Euler, dt = 0.01)", xlabel="t", ylabel="y")
    axes[0].legend(loc="upper right")
    for k in range(2):
        axes[1].plot(t, y_nn[:, :, k].numpy(), lw=0.8, color=f"C{k}", alpha=0.7)
    axes[1].set(title="untrained neural SDE, 2 states (SRK)", xlabel="t")
    path = out / "demo_paths.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _data_figure(out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralsde.data import IrregularBatch
    from neuralsde.datasets import load_mauna_loa_co2
    from neuralsde.plotting import plot_series

    ds = load_mauna_loa_co2()
    batch = IrregularBatch.coerce(ds["values"], "Mauna Loa CO2")
    n_missing = int((~batch.mask).sum())
    axes = plot_series(
        batch, title="Mauna Loa CO2 (weekly, shipped data): observed points and gaps"
    )
    path = out / "demo_data.png"
    axes[0].figure.savefig(path, dpi=110)
    plt.close(axes[0].figure)
    return path, batch, n_missing


def _classify_basic_motions(quick: bool):
    """Fit a linear-noise stable SDE classifier on shipped BasicMotions with half of every
    channel's points missing; early stopping uses the validation split only."""
    from neuralsde.data import IrregularBatch
    from neuralsde.datasets import load_basic_motions
    from neuralsde.estimators import SDEClassifier

    batch = IrregularBatch.coerce(load_basic_motions()).to(dtype=torch.float32)
    gappy = batch.drop(0.5, seed=0)
    train, val, test = gappy.split((0.7, 0.15, 0.15), seed=0)
    # the defaults: LNSDE, hidden 32, AdamW at lr 1e-2, batches of 16 for this size, patience 20
    clf = SDEClassifier(epochs=15 if quick else 40, random_state=0, verbose=False)
    clf.fit(train, eval_set=(val, val.labels))
    return clf.score(test, test.labels), len(train), len(test), len(clf.history_.epoch_time)


def _nile_change_point():
    from neuralsde.datasets import load_nile
    from neuralsde.estimators import LatentSDEChangeDetector

    ds = load_nile()
    det = LatentSDEChangeDetector(window="auto", random_state=0).fit(ds["values"])
    k = det.predict(n_bkps=1)[0]
    return str(ds["time"].values[k])[:4]


def demo(out: str = "out", quick: bool = False) -> int:
    """Run the end-to-end demo; writes PNGs under ``out``."""
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print("== neuralsde demo ==\n")
    print("1. Strong errors against a fine-step reference on the same Brownian path")
    print("   (Ito methods on the Ito SDE, Stratonovich methods on the Stratonovich SDE)\n")
    print(_strong_error_table(quick))
    print(f"\n2. Sample paths -> {_paths_figure(outdir)}")
    path, batch, n_missing = _data_figure(outdir)
    print(
        f"\n3. Shipped data: Mauna Loa CO2, {batch.values.shape[1]} weekly stamps, "
        f"{n_missing} missing -> {path}"
    )
    acc, n_train, n_test, epochs = _classify_basic_motions(quick)
    print(
        f"\n4. BasicMotions (shipped), 50% of every channel missing: LNSDE classifier trained "
        f"on {n_train} series ({epochs} epochs), test accuracy {acc:.3f} on {n_test} series"
    )
    print(
        f"\n5. Nile (shipped): latent-SDE change detector puts the change at {_nile_change_point()}"
        " (the Aswan dam works began in 1898)"
    )
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return 0
