"""The ``neuralsde`` command line, run by subprocess on shipped data written out as CSV and
NetCDF: exit codes, outputs, datetimes that survive, and one-line errors naming the column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuralsde.data import IrregularBatch
from neuralsde.datasets import load_basic_motions, load_mauna_loa_co2, load_nile

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def run(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "neuralsde", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=ENV, timeout=300)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    motions = IrregularBatch.coerce(load_basic_motions())
    motions.to_dataframe().to_csv(d / "motions.csv", index=False)
    motions.to_dataset().to_netcdf(d / "motions.nc")
    IrregularBatch.coerce(load_nile()).to_dataframe().drop(columns="id").to_csv(
        d / "nile.csv", index=False
    )
    co2 = IrregularBatch.coerce(load_mauna_loa_co2()).to_dataframe().iloc[-200:]
    co2.to_csv(d / "co2.csv", index=False)
    co2.to_parquet(d / "co2.parquet")
    rc, _, err = run("classify", "fit", "motions.csv", "--label", "label", "--out", "clf_given",
                     "--epochs", "1", "--quiet", cwd=d)  # fmt: skip
    assert rc == 0, err
    return d


def test_classify_fit_predict_and_info_on_csv_and_netcdf(files):
    rc, out, err = run("classify", "fit", "motions.csv", "--label", "label", "--out", "clf",
                       "--epochs", "2", "--quiet", cwd=files)  # fmt: skip
    assert rc == 0, err
    assert "train accuracy" in out and err == ""  # --quiet: no progress bar on stderr
    for data in ("motions.csv", "motions.nc"):  # the same series, as a table and as NetCDF
        rc, out, err = run("classify", "predict", "clf", data, "--out", f"p_{data}.csv",
                           cwd=files)  # fmt: skip
        assert rc == 0, err
    preds = pd.read_csv(files / "p_motions.csv.csv")
    assert len(preds) == 80 and set(preds["prediction"]) <= {
        "Standing", "Running", "Walking", "Badminton"}  # fmt: skip
    proba = preds.filter(like="proba_").to_numpy()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    from_nc = pd.read_csv(files / "p_motions.nc.csv")
    np.testing.assert_allclose(from_nc.filter(like="proba_").to_numpy(), proba, atol=1e-6)
    rc, out, _ = run("info", "clf", cwd=files)
    assert rc == 0 and "model: SDEClassifier" in out and "train_accuracy" in out
    assert "trained on: motions.csv (80 series" in out


def test_progress_bars_go_to_stderr_unless_quiet(files):
    rc, out, err = run("classify", "fit", "motions.csv", "--label", "label", "--out", "clf_bar",
                       "--epochs", "1", cwd=files)  # fmt: skip
    assert rc == 0 and "%|" in err and "%|" not in out


def test_forecast_keeps_dates_in_csv_netcdf_and_the_fan_chart(files):
    from neuralsde.data.files import read_batch

    parquet, csv = read_batch(files / "co2.parquet"), read_batch(files / "co2.csv")
    np.testing.assert_array_equal(parquet.values.numpy(), csv.values.numpy())
    np.testing.assert_array_equal(parquet.datetimes(), csv.datetimes())
    rc, _, err = run("forecast", "fit", "co2.csv", "--out", "fc", "--epochs", "2", "--quiet",
                     cwd=files)  # fmt: skip
    assert rc == 0, err
    rc, _, err = run("forecast", "predict", "fc", "co2.parquet", "--horizon", "4", "--quantiles",
                     "0.1,0.5,0.9", "--samples", "20", "--out", "fc.csv", "--plot", "fan.png",
                     cwd=files)  # fmt: skip
    assert rc == 0, err
    table = pd.read_csv(files / "fc.csv", parse_dates=["time"])
    assert list(table.columns) == ["id", "time", "channel", "mean", "q0.1", "q0.5", "q0.9"]
    last = pd.read_csv(files / "co2.csv", parse_dates=["time"])["time"].max()
    expected = pd.date_range(last, periods=5, freq="W-SAT")[1:]
    assert list(table["time"]) == list(expected)  # weekly stamps after the last one
    assert (table["q0.1"] <= table["q0.9"]).all() and (files / "fan.png").stat().st_size > 0
    rc, _, err = run("forecast", "predict", "fc", "co2.csv", "--horizon", "4", "--samples",
                     "20", "--out", "fc.nc", cwd=files)  # fmt: skip
    assert rc == 0, err
    with xr.open_dataset(files / "fc.nc") as ds:
        assert ds["time"].dtype.kind == "M" and list(ds["time"].values) == list(expected)


def test_detect_writes_breakpoints_as_dates_the_score_and_a_plot(files):
    rc, out, err = run("detect", "nile.csv", "--column", "volume", "--n-bkps", "1", "--out",
                       "bkps.json", "--quiet", cwd=files)  # fmt: skip
    assert rc == 0, err
    result = json.loads((files / "bkps.json").read_text())
    assert result["bkps"][-1] == 100 and len(result["times"]) == 1
    year = int(result["times"][0][:4])
    assert 1893 <= year <= 1903  # the Aswan dam: 1898
    score = pd.read_csv(files / "bkps_score.csv", parse_dates=["time"])
    assert len(score) == 100 and score["time"].dtype.kind == "M"
    assert (files / "bkps.png").stat().st_size > 0


def test_generate_draws_samples_from_a_checkpoint(files):
    import torch

    from neuralsde.diffusion import VPSDE, ScoreMLP, ScoreModel, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(files / "toy.pt", ScoreModel(ScoreMLP(2, hidden=8), VPSDE()))
    rc, _, err = run("generate", "toy.pt", "--n", "5", "--method", "dpmpp_2m", "--steps", "5",
                     "--out", "samples.nc", cwd=files)  # fmt: skip
    assert rc == 0, err
    with xr.open_dataset(files / "samples.nc") as ds:
        assert ds["samples"].shape == (5, 2) and np.isfinite(ds["samples"].values).all()


@pytest.mark.parametrize(
    "args, named",
    [
        (("classify", "fit", "motions.csv", "--label", "lable", "--out", "x"), "'lable'"),
        (
            (
                "classify",
                "fit",
                "motions.csv",
                "--label",
                "label",
                "--values",
                "dim_0,dim_9",
                "--out",
                "x",
            ),
            "'dim_9'",
        ),  # fmt: skip
        (("detect", "nile.csv", "--column", "flow", "--out", "b.json"), "'flow'"),
        (("detect", "missing.csv", "--out", "b.json"), "missing.csv"),
        (("info", "no_model_here"), "no_model_here"),
        (
            ("forecast", "predict", "clf_given", "co2.csv", "--horizon", "2", "--out", "f.csv"),
            "holds a SDEClassifier",
        ),  # fmt: skip
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_culprit(files, args, named):
    rc, out, err = run(*args, cwd=files)
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], err


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "neuralsde"
    assert script.exists(), "pip install -e . installs the neuralsde console script"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=ENV,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "classify" in proc.stdout and "forecast" in proc.stdout


def test_cli_lists_the_samplers_and_schedules_of_the_library():
    import neuralsde.cli as cli_mod
    from neuralsde.diffusion.sampling import METHODS
    from neuralsde.diffusion.schedules import NAMES

    assert sorted(cli_mod.SAMPLERS) == sorted(METHODS)
    assert cli_mod.SCHEDULES == list(NAMES)
