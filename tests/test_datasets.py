"""Datasets: generators match their closed forms; real loaders load known facts offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import integrate

from neuralsde.data import IrregularBatch
from neuralsde.datasets import (
    fbm_covariance,
    load_arrow_head,
    load_basic_motions,
    load_elnino,
    load_gunpoint_segmentation,
    load_mauna_loa_co2,
    load_nile,
    load_uk_driver_deaths,
    read_ts,
    simulate_double_well,
    simulate_fbm,
    simulate_fou,
    simulate_gbm,
    simulate_lorenz,
    simulate_ou,
    simulate_regime_switching,
)

ROOT = Path(__file__).resolve().parents[1]
Z = 4.5  # z-score bound for Monte Carlo checks with fixed seeds


def _second_moment_z(x_t, x_s, exact):
    """z-score of the sample mean of x_t * x_s against its exact expectation."""
    prod = x_t * x_s
    return (prod.mean() - exact) / (prod.std(ddof=1) / np.sqrt(len(prod)))


# ----------------------------------------------------------------------------- fBM / fOU
PAIRS = [(0.25, 0.25), (0.5, 0.25), (1.0, 0.5), (1.0, 1.0), (0.75, 0.125)]


@pytest.mark.parametrize("hurst", [0.3, 0.5, 0.7])
def test_fbm_davies_harte_has_exact_covariance(hurst):
    ds = simulate_fbm(20000, 9, hurst, t_end=1.0, seed=int(hurst * 10))
    x = ds["values"].values[:, :, 0]
    t = ds["time"].values
    assert np.all(x[:, 0] == 0.0)
    for a, b in PAIRS:
        i, j = np.searchsorted(t, a), np.searchsorted(t, b)
        z = _second_moment_z(x[:, i], x[:, j], fbm_covariance(a, b, hurst))
        assert abs(z) < Z, (hurst, a, b, z)


@pytest.mark.parametrize("hurst", [0.3, 0.5, 0.7])
def test_fbm_cholesky_on_irregular_times_has_exact_covariance(hurst):
    times = np.array([0.0, 0.05, 0.3, 0.31, 0.7, 1.3])
    x = simulate_fbm(20000, times=times, hurst=hurst, seed=1)["values"].values[:, :, 0]
    for i, j in [(1, 1), (2, 3), (4, 1), (5, 5), (5, 2)]:
        z = _second_moment_z(x[:, i], x[:, j], fbm_covariance(times[i], times[j], hurst))
        assert abs(z) < Z, (hurst, i, j, z)


def _fou_covariance(t, s, hurst, theta):
    """Cov of Y_t = int_0^t e^{-theta (t-u)} dB^H_u, by integrating by parts
    (Y_t = B_t - theta int_0^t e^{-theta (t-u)} B_u du) and quadrature of the fBM covariance."""

    def r(u, v):
        return float(fbm_covariance(u, v, hurst))

    b = integrate.quad(lambda v: np.exp(-theta * (s - v)) * r(t, v), 0, s, epsabs=1e-8)[0]
    c = integrate.quad(lambda u: np.exp(-theta * (t - u)) * r(u, s), 0, t, epsabs=1e-8)[0]
    d = integrate.dblquad(
        lambda v, u: np.exp(-theta * (t - u) - theta * (s - v)) * r(u, v), 0, t, 0, s, epsabs=1e-6
    )[0]
    return r(t, s) - theta * b - theta * c + theta**2 * d


def test_fou_covariance_quadrature_reduces_to_ou_at_half():
    t, s, th = 1.0, 0.5, 1.3
    ou = (np.exp(-th * abs(t - s)) - np.exp(-th * (t + s))) / (2 * th)
    assert _fou_covariance(t, s, 0.5, th) == pytest.approx(ou, rel=1e-7)


@pytest.mark.parametrize("hurst", [0.3, 0.5, 0.7])
def test_fou_has_the_fractional_ou_covariance(hurst):
    theta, sigma = 1.0, 1.0
    ds = simulate_fou(20000, 5, hurst, theta=theta, sigma=sigma, t_end=1.0, fine_step=2e-3, seed=3)
    x = ds["values"].values[:, :, 0]
    t = ds["time"].values  # 0, 0.25, 0.5, 0.75, 1
    for i, j in [(2, 2), (4, 4), (4, 2)]:
        if hurst == 0.5:
            exact = (np.exp(-theta * abs(t[i] - t[j])) - np.exp(-theta * (t[i] + t[j]))) / (
                2 * theta
            )
        else:
            exact = _fou_covariance(t[i], t[j], hurst, theta)
        z = _second_moment_z(x[:, i], x[:, j], sigma**2 * exact)
        assert abs(z) < Z, (hurst, i, j, z)


def test_fou_on_irregular_times_keeps_the_requested_stamps():
    times = np.array([0.0, 0.1, 0.37, 0.9])
    ds = simulate_fou(3, times=times, hurst=0.6, seed=0)
    np.testing.assert_array_equal(ds["time"].values, times)
    assert np.isfinite(ds["values"].values).all()


# ----------------------------------------------------------------------------- OU, GBM, others
def test_ou_exact_transitions_match_mean_and_variance():
    theta, mu, sigma, x0 = 1.5, 2.0, 0.8, -1.0
    ds = simulate_ou(20000, times=[0.0, 0.3, 1.7], theta=theta, mu=mu, sigma=sigma, x0=x0, seed=4)
    x = ds["values"].values[:, -1, 0]
    t = 1.7
    mean = mu + (x0 - mu) * np.exp(-theta * t)
    var = sigma**2 * (1 - np.exp(-2 * theta * t)) / (2 * theta)
    assert abs(x.mean() - mean) < Z * np.sqrt(var / len(x))
    assert abs(x.var() - var) < Z * var * np.sqrt(2 / len(x))


def test_ou_irregular_times_are_sorted_and_seeded():
    a = simulate_ou(2, 30, irregular=True, seed=5)
    b = simulate_ou(2, 30, irregular=True, seed=5)
    assert np.all(np.diff(a["time"].values) > 0)
    xr.testing.assert_identical(a, b)


def test_gbm_mean_is_exponential():
    mu, sigma = 0.3, 0.4
    x = simulate_gbm(20000, 5, mu=mu, sigma=sigma, t_end=1.0, seed=6)["values"].values[:, -1, 0]
    var = np.exp(2 * mu) * (np.exp(sigma**2) - 1)
    assert abs(x.mean() - np.exp(mu)) < Z * np.sqrt(var / len(x))


def test_double_well_visits_both_wells_with_its_stationary_second_moment():
    noise = 0.7
    ds = simulate_double_well(400, 3, noise=noise, t_end=30.0, dt=5e-3, seed=7)
    x = ds["values"].values[:, -1, 0]
    grid = np.linspace(-3, 3, 6001)
    dens = np.exp(-2 * (grid**2 - 1) ** 2 / 4 / noise**2)
    m2 = np.trapezoid(grid**2 * dens, grid) / np.trapezoid(dens, grid)
    assert (x > 0).mean() == pytest.approx(0.5, abs=Z * 0.5 / np.sqrt(len(x)))
    assert abs((x**2).mean() - m2) < Z * (x**2).std() / np.sqrt(len(x)) + 0.02  # + EM bias


def test_stochastic_lorenz_is_seeded_and_labelled():
    a = simulate_lorenz(3, 20, seed=1)
    xr.testing.assert_identical(a, simulate_lorenz(3, 20, seed=1))
    assert list(a["channel"].values) == ["x", "y", "z"]
    assert np.isfinite(a["values"].values).all() and "source" in a.attrs


# ----------------------------------------------------------------------------- regime switching
def test_regime_switching_reports_change_points_in_coords_and_attrs():
    ds = simulate_regime_switching(4, 300, "mean", change_points=[100, 200], seed=0)
    assert ds["change_index"].values.tolist() == [100, 200] == ds.attrs["change_points"]
    np.testing.assert_array_equal(ds["change_time"].values, ds["time"].values[[100, 200]])
    assert ds["regime"].values[[99, 100, 199, 200]].tolist() == [0, 1, 1, 2]
    assert len(json.loads(ds.attrs["segments"])) == 3
    frac = simulate_regime_switching(1, 300, "volatility", change_points=(0.25,), seed=0)
    assert frac.attrs["change_points"] == [75]


def _segments(ds):
    x = ds["values"].values[:, :, 0]
    c = ds.attrs["change_points"][0]
    burn = 60  # let the state relax into the new regime
    return x[:, burn : c - 10], x[:, c + burn :]


def test_regime_mean_change_shifts_the_mean_by_the_set_amount():
    a, b = _segments(simulate_regime_switching(200, 400, "mean", seed=1))
    assert a.mean() == pytest.approx(0.0, abs=0.02) and b.mean() == pytest.approx(1.5, abs=0.02)


def test_regime_volatility_change_scales_the_stationary_variance():
    a, b = _segments(simulate_regime_switching(200, 400, "volatility", seed=2))
    # stationary variance sigma^2 / (2 theta): 0.3^2 / 4 and 1.2^2 / 4
    assert a.var() == pytest.approx(0.0225, rel=0.05) and b.var() == pytest.approx(0.36, rel=0.05)


def test_regime_mean_reversion_change_keeps_the_variance_and_changes_the_memory():
    ds = simulate_regime_switching(2000, 400, "mean_reversion", seed=3)
    a, b = _segments(ds)
    # sigma^2 / (2 theta) = 0.25 in both; about 6000 and 100000 effective samples
    assert np.mean(a**2) == pytest.approx(0.25, rel=0.08)
    assert np.mean(b**2) == pytest.approx(0.25, rel=0.03)
    dt = float(np.diff(ds["time"].values)[0])

    def lag1(x):
        return np.mean(x[:, 1:] * x[:, :-1]) / np.mean(x * x)

    assert lag1(a) == pytest.approx(np.exp(-0.5 * dt), abs=0.01)
    assert lag1(b) == pytest.approx(np.exp(-8.0 * dt), abs=0.02)


def test_regime_hurst_change_keeps_the_variance_and_changes_the_roughness():
    ds = simulate_regime_switching(200, 400, "hurst", seed=4)
    a, b = _segments(ds)
    assert a.var() == pytest.approx(0.25, rel=0.1) and b.var() == pytest.approx(0.25, rel=0.1)
    # rougher noise (H = 0.3) gives much larger one-step increments than H = 0.8
    assert np.mean(np.diff(a, axis=1) ** 2) > 3 * np.mean(np.diff(b, axis=1) ** 2)


# ----------------------------------------------------------------------------- real data
ALL_LOADERS = [
    load_basic_motions,
    load_arrow_head,
    load_nile,
    load_gunpoint_segmentation,
    load_mauna_loa_co2,
    load_elnino,
    load_uk_driver_deaths,
]


@pytest.mark.parametrize("loader", ALL_LOADERS)
def test_every_loader_returns_a_labelled_dataset_that_becomes_a_batch(loader):
    ds = loader()
    assert ds["values"].dims == ("series", "time", "channel")
    assert ds.attrs["source"] and ds.attrs["licence"]
    b = IrregularBatch.from_xarray(ds)
    assert b.values.shape == ds["values"].shape


def test_loaders_work_offline_without_aeon_or_statsmodels():
    code = (
        "import sys\n"
        "for m in ('aeon', 'statsmodels', 'requests'):\n"
        "    sys.modules[m] = None\n"
        "import socket\n"
        "def deny(*a, **k): raise OSError('network access attempted')\n"
        "socket.socket.connect = deny\n"
        "from neuralsde import datasets as d\n"
        "for f in (d.load_basic_motions, d.load_arrow_head, d.load_nile,\n"
        "          d.load_gunpoint_segmentation, d.load_mauna_loa_co2, d.load_elnino,\n"
        "          d.load_uk_driver_deaths):\n"
        "    f()\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_basic_motions_has_80_series_and_4_balanced_classes():
    ds = load_basic_motions()
    assert ds["values"].shape == (80, 100, 6)
    labels, counts = np.unique(ds["label"].values, return_counts=True)
    assert labels.tolist() == ["Badminton", "Running", "Standing", "Walking"]
    assert counts.tolist() == [20, 20, 20, 20]
    assert (ds["split"] == "train").sum() == 40
    assert ds["time"].values[1] == pytest.approx(0.1)  # 10 Hz
    assert load_basic_motions("test")["values"].shape[0] == 40


def test_arrow_head_has_211_series_of_251_points_in_3_classes():
    ds = load_arrow_head()
    assert ds["values"].shape == (211, 251, 1)
    assert sorted(set(ds["label"].values.tolist())) == ["0", "1", "2"]
    assert load_arrow_head("train")["values"].shape[0] == 36


def test_nile_mean_drops_after_1898():
    ds = load_nile()
    flow = ds["values"].isel(series=0, channel=0)
    assert flow.sizes["time"] == 100
    assert str(ds["time"].values[0])[:4] == "1871" and str(ds["time"].values[-1])[:4] == "1970"
    before = float(flow.sel(time=slice(None, "1898")).mean())
    after = float(flow.sel(time=slice("1899", None)).mean())
    assert before == pytest.approx(1098, abs=1.0) and after == pytest.approx(850, abs=1.0)


def test_gunpoint_segmentation_change_point_is_at_900():
    ds = load_gunpoint_segmentation()
    x = ds["values"].values[0, :, 0]
    assert x.shape == (1875,)
    assert ds.attrs["change_points"] == [900] and ds["change_index"].values.tolist() == [900]
    assert ds["segment"].values[899] == 0 and ds["segment"].values[900] == 1
    # the series concatenates z-normalised instances of 75 points; 900 is a boundary of that
    # concatenation (both sides have zero mean there), its neighbours are not
    for c in (900,):
        assert abs(x[:c].mean()) < 1e-6 and abs(x[c:].mean()) < 1e-6
    for c in (899, 901):
        assert abs(x[:c].mean()) > 1e-4 and abs(x[c:].mean()) > 1e-4


def test_mauna_loa_co2_is_weekly_with_real_gaps():
    ds = load_mauna_loa_co2()
    co2 = ds["values"].values[0, :, 0]
    assert co2.shape == (2284,) and int(np.isnan(co2).sum()) == 59
    steps = np.diff(ds["time"].values).astype("timedelta64[D]").astype(int)
    assert set(steps.tolist()) == {7}
    assert 310 < np.nanmin(co2) and np.nanmax(co2) < 380
    b = IrregularBatch.from_xarray(ds)
    assert b.time_encoding.unit == "D" and int(b.mask.sum()) == 2284 - 59
    xr.testing.assert_identical(b.to_xarray(), ds["values"])


def test_elnino_is_monthly_with_an_annual_cycle():
    ds = load_elnino()
    sst = ds["values"].values[0, :, 0]
    assert sst.shape == (732,) and np.isfinite(sst).all()
    months = ds["time"].values.astype("datetime64[M]").astype(int)
    assert set(np.diff(months).tolist()) == {1}
    by_month = sst.reshape(61, 12).mean(0)
    assert by_month.argmax() in (1, 2, 3) and by_month.max() - by_month.min() > 4  # Feb-Apr warm
    assert sst[(1997 - 1950) * 12 + 11] > 27  # December 1997, El Nino


def test_uk_driver_deaths_has_the_seat_belt_drop_23_months_from_the_end():
    ds = load_uk_driver_deaths()
    x = ds["values"].values[0, :, 0]
    assert x.shape == (192,) and np.isfinite(x).all()
    assert str(ds["time"].values[169])[:7] == "1983-02"
    # the same calendar months a year before and after the law: about 20% lower after
    drop = x[169:181].mean() / x[157:169].mean()
    assert 0.7 < drop < 0.9


def test_ts_reader_handles_missing_values_and_labels(tmp_path):
    f = tmp_path / "toy.ts"
    f.write_text(
        "# comment\n@problemName toy\n@timeStamps false\n@classLabel true a b\n@data\n"
        "1,2,?:4,5,6:a\n7,8,9:1,1,1:b\n"
    )
    x, y, header = read_ts(f)
    assert x.shape == (2, 3, 2) and np.isnan(x[0, 2, 0]) and x[0, 1, 1] == 5.0
    assert y.tolist() == ["a", "b"] and header["problemname"] == "toy"


def test_every_shipped_dataset_folder_has_a_readme_with_source_and_licence():
    root = ROOT / "datasets"
    folders = [p for p in root.iterdir() if p.is_dir()]
    assert len(folders) >= 5
    for folder in folders:
        text = (folder / "README.md").read_text().lower()
        assert "source" in text and "licen" in text, folder


@pytest.mark.slow
def test_non_editable_install_carries_the_data_files(tmp_path):
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", str(ROOT), "--no-deps", "--no-build-isolation"]
    out = subprocess.run([*pip, "--target", str(target), "-q"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    files = target / "neuralsde" / "datasets" / "files"
    assert (files / "nile" / "nile.csv").is_file() and not files.is_symlink()
    code = "import neuralsde.datasets as d; print(d.load_basic_motions()['values'].shape)"
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(80, 100, 6)"
