"""The ``neuralsde`` command line (click): fit and apply estimators to CSV, Parquet and NetCDF
files, detect change points, sample diffusion checkpoints, describe a saved model, run the demo.

Every command reads its data through :func:`neuralsde.data.files.read_batch` (the input gate),
writes progress bars to stderr (``--quiet`` turns them off), exits 0 on success and 2 on bad
input with a one-line message naming the file or column. Times in the outputs are the user's
own time stamps: dates stay dates.

Example::

    neuralsde classify fit train.csv --label label --out model/
    neuralsde classify predict model/ test.csv --out preds.csv
    neuralsde forecast fit sales.csv --out fc/ && neuralsde forecast predict fc/ sales.csv \\
        --horizon 12 --quantiles 0.05,0.5,0.95 --out forecast.csv --plot fan.png
    neuralsde detect nile.csv --column flow --n-bkps 1 --out bkps.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["cli", "main"]

_BAD_INPUT = (ValueError, TypeError, FileNotFoundError, KeyError)
_CLI_INFO = "cli.json"


class _Group(click.Group):
    """Bad input ends with exit code 2 and one line on stderr, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _BAD_INPUT as err:
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            click.echo(f"error: {message}", err=True)
            ctx.exit(2)


def _data_options(f):
    """The options that say how a table is laid out."""
    f = click.option(
        "--values",
        "value_cols",
        default=None,
        help="Comma-separated value columns (default: every other column).",
    )(f)
    f = click.option(
        "--time",
        "time_col",
        default="time",
        show_default=True,
        help="Time column (numbers or dates).",
    )(f)
    f = click.option("--id", "id_col", default=None,
                     help="Series id column of a long table (default: 'id' when present; "
                          "none: the file is one wide series).")(f)  # fmt: skip
    return f


def _quiet(f):
    return click.option("--quiet", is_flag=True, help="No progress bars.")(f)


def _read(path, id_col, time_col, value_cols, label_col=None, single=False):
    from neuralsde.data.files import read_batch

    return read_batch(path, id_col=id_col, time_col=time_col, value_cols=value_cols,
                      label_col=label_col, single=single)  # fmt: skip


def _write_info(folder: Path, info: dict) -> None:
    (folder / _CLI_INFO).write_text(json.dumps(info, indent=2, default=str))


def _load(folder, cls_name):
    from neuralsde import estimators

    return getattr(estimators, cls_name).load(folder)


def _times_out(values):
    """Time stamps as text a CSV reader parses back: ISO dates for datetimes."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind != "M":
        return arr
    seconds = arr.astype("datetime64[s]")
    midnight = bool((seconds == seconds.astype("datetime64[D]")).all())
    return np.datetime_as_string(seconds, unit="D" if midnight else "s")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neuralsde")
def cli():
    """Neural SDEs for irregular, gappy time series: classify, forecast, detect changes."""


# ------------------------------------------------------------------------------ demo
@cli.command()
@click.option("--out", default="out", show_default=True, help="Folder for the figures.")
@click.option("--quick", is_flag=True, help="Smaller sizes.")
def demo(out, quick):
    """Run the end-to-end demo on shipped data (writes PNGs under OUT)."""
    from neuralsde.cli.demo import demo as run

    run(out, quick)


# ------------------------------------------------------------------------------ classify
@cli.group()
def classify():
    """Classify series with a stable neural SDE (SDEClassifier)."""


@classify.command("fit")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--label", "label_col", required=True, help="Label column (constant per series).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to save the model in.")  # fmt: skip
@_data_options
@click.option("--kind", default="lnsde", show_default=True,
              type=click.Choice(["lsde", "lnsde", "gsde", "naive", "ncde"]))  # fmt: skip
@click.option("--epochs", default=100, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@_quiet
def classify_fit(data, label_col, out_dir, id_col, time_col, value_cols, kind, epochs, seed,
                 quiet):  # fmt: skip
    """Fit a classifier on DATA (one row per series and time stamp) and save it."""
    from neuralsde.estimators import SDEClassifier

    batch = _read(data, id_col, time_col, value_cols, label_col)
    clf = SDEClassifier(kind=kind, epochs=epochs, random_state=seed, verbose=not quiet)
    clf.fit(batch)
    folder = clf.save(out_dir)
    accuracy = float(clf.score(batch, batch.labels))
    _write_info(folder, {"command": "classify fit", "data": str(data), "label": label_col,
                         "series": len(batch), "channels": clf.channels_,
                         "classes": clf.classes_.tolist(),
                         "metrics": {"train_accuracy": accuracy,
                                     "epochs_run": len(clf.history_.epoch_time)}})  # fmt: skip
    click.echo(f"saved {folder} (train accuracy {accuracy:.3f} on {len(batch)} series)")


@classify.command("predict")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="CSV of predictions: id, prediction, one probability per class.")  # fmt: skip
@_data_options
@_quiet
def classify_predict(model_dir, data, out_file, id_col, time_col, value_cols, quiet):
    """Predict the class of every series in DATA with a saved classifier."""
    import pandas as pd

    clf = _load(model_dir, "SDEClassifier")
    batch = _read(data, id_col, time_col, value_cols)
    proba = clf.predict_proba(batch)
    frame = pd.DataFrame({"id": batch.series, "prediction": clf.classes_[proba.argmax(1)]})
    for k, c in enumerate(clf.classes_):
        frame[f"proba_{c}"] = proba[:, k]
    frame.to_csv(out_file, index=False)
    click.echo(f"wrote {out_file} ({len(frame)} series)")


# ------------------------------------------------------------------------------ forecast
@cli.group()
def forecast():
    """Forecast and interpolate with a latent neural SDE (LatentSDEForecaster)."""


@forecast.command("fit")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@_data_options
@click.option("--noise", default="brownian", show_default=True,
              type=click.Choice(["brownian", "fractional"]))  # fmt: skip
@click.option("--epochs", default=100, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@_quiet
def forecast_fit(data, out_dir, id_col, time_col, value_cols, noise, epochs, seed, quiet):
    """Fit a latent SDE forecaster on DATA and save it."""
    from neuralsde.estimators import LatentSDEForecaster

    batch = _read(data, id_col, time_col, value_cols)
    model = LatentSDEForecaster(noise=noise, epochs=epochs, random_state=seed,
                                verbose=not quiet).fit(batch)  # fmt: skip
    folder = model.save(out_dir)
    elbo = float(model.elbo(batch))
    _write_info(folder, {"command": "forecast fit", "data": str(data), "series": len(batch),
                         "channels": model.channels_,
                         "metrics": {"train_elbo_per_value": elbo,
                                     "epochs_run": len(model.history_.epoch_time)}})  # fmt: skip
    click.echo(f"saved {folder} (train ELBO {elbo:.3f} nats per value)")


def _future_times(batch, horizon):
    """``horizon`` stamps after the last observation, one typical step apart (the inferred
    calendar frequency for dates, else the median gap)."""
    import numpy as np
    import pandas as pd

    if batch.time_encoding is not None:
        stamps = np.unique(batch.datetimes()[~np.isnat(batch.datetimes())])
        freq = pd.infer_freq(pd.DatetimeIndex(stamps)) if len(stamps) >= 3 else None
        if freq is not None:
            return pd.date_range(stamps[-1], periods=horizon + 1, freq=freq)[1:]
        step = np.median(np.diff(stamps))
        return stamps[-1] + step * np.arange(1, horizon + 1)
    raw = batch.times.double().numpy()
    raw = np.unique(raw[np.isfinite(raw)])
    step = float(np.median(np.diff(raw))) if raw.size > 1 else 1.0
    return raw[-1] + step * np.arange(1, horizon + 1)


@forecast.command("predict")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--horizon", required=True, type=click.IntRange(1),
              help="Number of steps past the last observation (the data's own step).")  # fmt: skip
@click.option("--quantiles", default="0.05,0.5,0.95", show_default=True)
@click.option("--samples", "n_samples", default=200, show_default=True, type=click.IntRange(2))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="forecast.csv (long table) or forecast.nc (xarray Dataset).")  # fmt: skip
@click.option("--plot", "plot_file", default=None, type=click.Path(dir_okay=False),
              help="Also write a fan chart of the first series to this PNG.")  # fmt: skip
@_data_options
@click.option("--seed", default=0, show_default=True, type=int)
@_quiet
def forecast_predict(model_dir, data, horizon, quantiles, n_samples, out_file, plot_file, id_col,
                     time_col, value_cols, seed, quiet):  # fmt: skip
    """Forecast HORIZON steps past DATA with a saved forecaster."""
    try:
        levels = [float(q) for q in quantiles.split(",")]
    except ValueError:
        raise ValueError(
            f"--quantiles must be numbers like 0.05,0.5,0.95; got {quantiles!r}"
        ) from None
    if not all(0 < q < 1 for q in levels):
        raise ValueError(f"--quantiles must lie strictly between 0 and 1; got {quantiles!r}")
    if Path(out_file).suffix.lower() not in (".csv", ".nc"):
        raise ValueError(f"--out must end in .csv or .nc; got {out_file}")
    model = _load(model_dir, "LatentSDEForecaster")
    batch = _read(data, id_col, time_col, value_cols)
    times = _future_times(batch, horizon)
    ds = model.predict(batch, times=times, n_samples=n_samples, quantiles=levels,
                       random_state=seed)  # fmt: skip
    if plot_file:
        _fan_chart(ds, batch, plot_file)
    summary = ds.drop_vars(["samples", "sample"])
    if out_file.lower().endswith(".nc"):
        summary.to_netcdf(out_file)
    else:
        frame = summary["mean"].to_dataframe().reset_index()
        for q in levels:
            col = summary["quantiles"].sel(quantile=q).drop_vars("quantile")
            frame[f"q{q:g}"] = col.to_dataframe(name="q").reset_index()["q"]
        frame["time"] = _times_out(frame["time"].to_numpy())
        frame.rename(columns={"series": "id"}).to_csv(out_file, index=False)
    click.echo(f"wrote {out_file} ({len(batch)} series, {horizon} steps)")


def _fan_chart(ds, batch, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralsde.plotting import plot_forecast

    ax = plot_forecast(ds, observed=batch[[0]])
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=110)
    plt.close(ax.figure)


# ------------------------------------------------------------------------------ detect
@cli.command()
@click.argument("data", type=click.Path(dir_okay=False))
@click.option(
    "--column",
    "columns",
    default=None,
    help="Comma-separated value column(s) to scan (default: every other column).",
)
@click.option("--time", "time_col", default="time", show_default=True)
@click.option("--pen", type=float, default=None, help="Score threshold (nats).")
@click.option("--n-bkps", type=click.IntRange(0), default=None, help="Number of changes.")
@click.option("--window", default="auto", show_default=True,
              help="Observations on each side of a candidate, or 'auto'.")  # fmt: skip
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="bkps.json; the score curve goes to <out>_score.csv and a plot to "
                   "<out>.png.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=int)
@_quiet
def detect(data, columns, time_col, pen, n_bkps, window, out_file, seed, quiet):
    """Find change points in the one series of DATA (latent SDE likelihood ratios)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from neuralsde.estimators import LatentSDEChangeDetector

    if pen is not None and n_bkps is not None:
        raise ValueError("give --pen or --n-bkps, not both")
    window = window if window == "auto" else _int(window, "--window")
    batch = _read(data, None, time_col, columns, single=True)
    det = LatentSDEChangeDetector(window=window, random_state=seed, progress=not quiet)
    det.fit(batch)
    bkps = det.predict(pen=pen, n_bkps=n_bkps)
    stamps = _times_out(det.to_times(bkps))
    out = Path(out_file)
    result = {"data": str(data), "columns": [str(c) for c in det.series_.channels],
              "bkps": [int(b) for b in bkps], "times": [x.item() if hasattr(x, "item") else x
                                                        for x in stamps],
              "pen": det.pen_, "window": det.window_}  # fmt: skip
    out.write_text(json.dumps(result, indent=2, default=str))
    score = pd.DataFrame({"time": _times_out(det.score_["time"].values),
                          "score": det.score_.values})  # fmt: skip
    score.to_csv(out.with_name(out.stem + "_score.csv"), index=False)
    fig = det.plot(bkps=bkps)
    fig.savefig(out.with_suffix(".png"), dpi=110)
    plt.close(fig)
    click.echo(f"wrote {out} ({len(bkps) - 1} change points)")


def _int(text, option):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{option} must be an integer or 'auto'; got {text!r}") from None


# the samplers and schedules of neuralsde.diffusion.sampling, listed here so that the command
# line starts without importing torch (tests/test_cli.py checks the lists agree)
SAMPLERS = ["euler", "pc", "ode", "heun_edm", "ddim", "dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde",
            "dpmpp_3m_sde", "sa_solver", "er_sde", "restart", "adaptive", "dpm2"]  # fmt: skip
SCHEDULES = ["uniform", "logsnr", "karras", "exponential"]


# ------------------------------------------------------------------------------ generate
@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--n", "n", default=4, show_default=True, type=click.IntRange(1))
@click.option("--method", default="dpmpp_2m", show_default=True, type=click.Choice(SAMPLERS),
              help="Sampler (see 'Which sampler' in the diffusion tutorial).")  # fmt: skip
@click.option("--schedule", default=None, type=click.Choice(SCHEDULES),
              help="Noise schedule (default: the sampler's).")  # fmt: skip
@click.option("--steps", default=None, type=click.IntRange(1),
              help="Solver steps (default: the method's).")  # fmt: skip
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="samples.nc")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=int)
@_quiet
def generate(checkpoint, n, method, schedule, steps, out_file, seed, quiet):
    """Draw N samples from a diffusion CHECKPOINT (e.g. models/darcy_score_64.pt)."""
    import torch
    import xarray as xr

    from neuralsde.diffusion import load_checkpoint, sample

    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"{checkpoint}: no such file")
    model, meta = load_checkpoint(checkpoint)
    net = model.net.config
    if net["kind"] == "unet":
        event = (int(net["channels"]), int(meta["resolution"]), int(meta["resolution"]))
    else:
        event = tuple(int(k) for k in net["shape"])
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = sample(model, model.sde, (n, *event), method=method, steps=steps, schedule=schedule,
                   generator=gen)  # fmt: skip
    if meta.get("problem") == "darcy":
        from neuralsde.diffusion.fields import DarcyFields

        a, u = DarcyFields(model, meta).physical(x)
        dims = ("sample", "y", "x")
        ds = xr.Dataset({"a": (dims, a.numpy()), "u": (dims, u.numpy())})
    else:
        dims = ("sample", *[f"dim_{k}" for k in range(len(event))])
        ds = xr.Dataset({"samples": (dims, x.numpy())})
    ds.attrs.update({"checkpoint": str(checkpoint), "method": method, "seed": seed})
    ds.to_netcdf(out_file)
    click.echo(f"wrote {out_file} ({n} samples of shape {event})")


# ------------------------------------------------------------------------------ info
@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
def info(model_dir):
    """Describe a saved model: what it is, what it was trained on, its metrics."""
    folder = Path(model_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no saved model here (config.json is missing)")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path} is corrupted ({err})") from None
    click.echo(f"model: {config.get('estimator')} (schema {config.get('schema')}, neuralsde "
               f"{config.get('version')})")  # fmt: skip
    params = config.get("params", {})
    shown = {k: v for k, v in params.items() if not isinstance(v, dict)}
    click.echo("parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    extra = folder / _CLI_INFO
    if extra.is_file():
        meta = json.loads(extra.read_text())
        click.echo(f"trained on: {meta.get('data')} ({meta.get('series')} series, channels "
                   f"{meta.get('channels')})")  # fmt: skip
        for k, v in meta.get("metrics", {}).items():
            click.echo(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


def main(argv=None) -> int:
    """Entry point of the ``neuralsde`` console script and ``python -m neuralsde``."""
    try:
        cli.main(args=argv, prog_name="neuralsde", standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
