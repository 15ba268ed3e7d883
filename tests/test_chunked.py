"""Chunked inference with dask (issue 18): keyed noise is a chunk's rows of the whole batch's
noise with the right law, and every estimator's predictions over a dask-backed object, on a
2-process dask.distributed cluster, are the in-memory predictions."""

import math
import os

import numpy as np
import pytest
import torch
import xarray as xr

from neuralsde.core import solve
from neuralsde.core.keyed import KeyedGenerator, label_keys
from neuralsde.estimators import (
    LatentSDEChangeDetector,
    LatentSDEForecaster,
    SDEClassifier,
    SDERegressor,
)

distributed = pytest.importorskip("distributed")


# ---------------------------------------------------------------------------- keyed noise
def test_keyed_draws_are_standard_normal_and_independent():
    gen = KeyedGenerator(3, torch.arange(20_000))
    z = gen.randn((20_000, 4), dtype=torch.float64)
    w = gen.randn((20_000, 4), dtype=torch.float64)  # the next draw
    n = z.numel()
    assert abs(float(z.mean())) < 4 / math.sqrt(n)
    assert abs(float(z.var()) - 1) < 4 * math.sqrt(2 / n)
    kurt = float((z**4).mean())
    assert abs(kurt - 3) < 4 * math.sqrt(96 / n)  # var of z^4 is 105 - 9
    for a, b in ((z[:, 0], z[:, 1]), (z[:, 0], w[:, 0]), (z[:-1, 2], z[1:, 2])):
        assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 4 / math.sqrt(a.numel())


def test_a_chunk_draws_its_rows_of_the_whole_batch():
    keys = label_keys([f"sensor-{i}" for i in range(30)])
    whole, part = KeyedGenerator(7, keys), KeyedGenerator(7, keys[10:17])
    for _ in range(3):  # every draw in the sequence, along any batch axis
        assert torch.equal(whole.randn((5, 30, 2), dim=1)[:, 10:17], part.randn((5, 7, 2), dim=1))
    rep = whole.repeat(4).randn((120, 3)).view(4, 30, 3)
    assert torch.equal(rep[:, 10:17], part.repeat(4).randn((28, 3)).view(4, 7, 3))
    with pytest.raises(ValueError, match="keyed for 30 series"):
        whole.randn((29, 3))


class _OU(torch.nn.Module):
    noise_type, sde_type = "diagonal", "ito"

    def f(self, t, y):
        return -y

    def g(self, t, y):
        return torch.ones_like(y)


@pytest.mark.parametrize("method", ["euler", "srk"])
def test_keyed_brownian_gives_the_ou_law_and_chunks_the_path(method):
    """OU dX = -X dt + dW from 0: Var X(1) = (1 - e^-2) / 2; a chunk of series solves to its
    rows of the whole batch's solution."""
    keys = torch.arange(8000)
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    y0 = torch.zeros(8000, 1, dtype=torch.float64)
    kw = dict(dt=0.01, method=method)
    ys = solve(_OU(), y0, ts, generator=KeyedGenerator(1, keys), **kw)
    part = solve(_OU(), y0[100:300], ts, generator=KeyedGenerator(1, keys[100:300]), **kw)
    assert torch.equal(ys[:, 100:300], part)
    exact = (1 - math.exp(-2)) / 2
    n = ys.shape[1]
    assert abs(float(ys[-1].var()) - exact) < 4 * exact * math.sqrt(2 / n)
    lag = math.exp(-0.5) * (1 - math.exp(-1)) / 2  # Cov(X(0.5), X(1))
    assert abs(float((ys[1] * ys[2]).mean()) - lag) < 4 * math.sqrt(exact * exact / n)


# ---------------------------------------------------------------------------- estimators
@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)  # fmt: skip
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(36, 14, 2))
    y = np.repeat(["calm", "busy"], 18)
    x[y == "busy"] += 1.0
    x[rng.random(x.shape) < 0.3] = np.nan
    times = np.sort(rng.uniform(0, 5, 14))
    series = [f"unit-{i:02d}" for i in range(36)]
    da = xr.DataArray(x, dims=("series", "time", "channel"),
                      coords={"series": series, "time": times, "channel": ["a", "b"]})  # fmt: skip
    return da, y


def _chunked(da):
    out = da.chunk({"series": 8})  # 5 chunks: 8, 8, 8, 8, 4
    assert len(out.chunksizes["series"]) >= 4
    return out


def _float32_close(a, b):
    """Equal up to float32 rounding of batched matrix products (a product over a batch of 8
    rows and over one of 36 may round its last bit differently)."""
    np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6)


def test_classifier_on_chunks_is_the_in_memory_classifier(client, data):
    da, y = data
    clf = SDEClassifier(hidden=8, epochs=2, verbose=False, batch_size=16).fit(da, y)
    proba = clf.predict_proba(_chunked(da))
    assert proba.chunks is not None and proba.dims == ("series", "class")
    assert list(proba.series.values) == list(da.series.values)
    _float32_close(proba.values, clf.predict_proba(da))
    labels = clf.predict(_chunked(da)).values
    assert (labels == clf.predict(da)).mean() == 1.0
    assert clf.score(_chunked(da), y) == clf.score(da, y)
    # each worker ran torch on one thread per task thread (threads_per_worker=1)
    assert set(client.run(torch.get_num_threads).values()) == {1}


def test_regressor_on_chunks_is_the_in_memory_regressor(client, data):
    da, _ = data
    reg = SDERegressor(hidden=8, epochs=2, verbose=False).fit(da)
    lazy = reg.predict(_chunked(da))
    eager = reg.predict(da)
    assert lazy.chunks is not None and lazy.dims == eager.dims
    for dim in eager.dims:
        assert np.array_equal(lazy[dim].values, eager[dim].values)
    _float32_close(lazy.values, eager.values)
    future = np.array([5.5, 6.0])
    _float32_close(reg.predict(_chunked(da), times=future).values,
                   reg.predict(da, times=future).values)  # fmt: skip
    assert reg.score(_chunked(da)) == pytest.approx(reg.score(da), abs=1e-6)


def test_forecaster_on_chunks_is_the_in_memory_forecaster(client, data):
    da, _ = data
    f = LatentSDEForecaster(epochs=2, verbose=False, random_state=3).fit(da)
    times = np.linspace(float(da.time[0]), 6, 7)  # gaps and the future
    lazy = f.predict(_chunked(da), times=times, n_samples=6)
    eager = f.predict(da, times=times, n_samples=6)
    assert lazy["samples"].chunks is not None
    for name in eager.data_vars:
        assert lazy[name].dims == eager[name].dims
        _float32_close(lazy[name].values, eager[name].values)
    for name in eager.coords:
        assert np.array_equal(lazy[name].values, eager[name].values)
    # a series' samples do not depend on its neighbours: fixed seeds per series
    lone = f.predict(_chunked(da).isel(series=[5]), times=times, n_samples=6)
    _float32_close(lone["samples"].values, eager["samples"].values[:, 5:6])
    # the ELBO from per-series parts is the model's batch ELBO, and chunks sum to it
    batch = f._batch(da)
    tt, vv = f._tensors(batch)
    with torch.no_grad():
        whole = f.model_.elbo(tt, vv, n_samples=4, generator=f._noise(batch, None))
    log_jac = float((batch.mask * torch.tensor(f.scaler_.std).log()).sum() / batch.mask.sum())
    assert f.elbo(da, n_samples=4) == pytest.approx(float(whole["elbo"]) - log_jac, rel=1e-5)
    assert f.score(_chunked(da)) == pytest.approx(f.score(da), rel=1e-5)


def test_detector_fleet_on_chunks_is_the_in_memory_fleet(client):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (8, 120)), rng.normal(0, 3, (8, 120))], 1)
    fleet = xr.DataArray(x, dims=("series", "time"), coords={"time": np.arange(240) * 0.5})
    det = LatentSDEChangeDetector(window=30, random_state=0)
    eager = det.fit_predict(fleet, n_bkps=1)
    lazy = det.fit_predict(fleet.chunk({"series": 2}), n_bkps=1)
    assert lazy.chunks is not None and lazy.dims == ("series", "time")
    assert np.array_equal(lazy.values, eager.values)
    starts = np.array([fleet.time.values[row][0] for row in eager.values])
    assert np.all(np.abs(starts - 60.0) <= 10)  # the change at t = 60


def test_chunks_along_time_are_refused_naming_the_dimension(data):
    da, y = data
    clf = SDEClassifier(hidden=4, epochs=1, verbose=False).fit(da, y)
    with pytest.raises(ValueError, match="chunked along 'time'"):
        clf.predict(da.chunk({"series": 8, "time": 7}))
    with pytest.raises(ValueError, match="lacks"):
        clf.predict(da.rename(series="unit").chunk({"unit": 8}))
    with pytest.raises(ValueError, match="y: a dask-backed X"):
        SDERegressor(hidden=4, epochs=1, verbose=False).fit(da).score(_chunked(da), y=da)
    union = LatentSDEForecaster(epochs=1, verbose=False, series_grids=False).fit(da)
    with pytest.raises(ValueError, match="union of all series' times"):
        union.predict(_chunked(da), n_samples=2)


def test_a_worker_dying_mid_predict_is_retried_and_the_result_exact(client, data, tmp_path):
    """One worker kills its own process at the first prediction block it starts; dask
    reruns the block elsewhere and the result is still the in-memory one."""
    from distributed.diagnostics.plugin import WorkerPlugin

    da, y = data
    clf = SDEClassifier(hidden=8, epochs=2, verbose=False).fit(da, y)
    eager = clf.predict_proba(da)
    marker = str(tmp_path / "killed")

    class KillOnce(WorkerPlugin):
        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and "run_block" in str(key):
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    return
                os._exit(1)

    client.register_plugin(KillOnce(), name="kill-once")
    try:
        lazy = clf.predict_proba(_chunked(da))
        _float32_close(lazy.values, eager)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert os.path.exists(marker)  # a worker did die
    client.wait_for_workers(2, timeout=60)


# ---------------------------------------------------------------------------- diffusion
def test_imputation_on_chunks_is_the_in_memory_imputation(client):
    from neuralsde.diffusion import VPSDE, ScoreMLP, ScoreModel
    from neuralsde.diffusion.trajectories import impute

    torch.manual_seed(0)
    sde = VPSDE()
    model = ScoreModel(ScoreMLP((16, 1), hidden=32), sde).eval()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 16, 1))
    x[rng.random(x.shape) < 0.5] = np.nan
    da = xr.DataArray(x, dims=("series", "time", "channel"),
                      coords={"series": [f"w{i}" for i in range(20)]})  # fmt: skip
    kw = dict(n_samples=3, steps=20, random_state=4)
    for method in ("euler", "dpmpp_2m_sde"):
        eager = impute(model, sde, da, method=method, **kw)
        lazy = impute(model, sde, da.chunk({"series": 5}), method=method, **kw)
        assert lazy["samples"].chunks is not None
        for name in eager.data_vars:
            np.testing.assert_array_equal(lazy[name].values, eager[name].values)
        # and a series alone draws what it draws in the batch (to float32 rounding: a batch
        # of 3 rows and one of 60 may round a product's last bit differently)
        alone = impute(model, sde, da.isel(series=[7]), method=method, **kw)
        np.testing.assert_allclose(alone["samples"].values, eager["samples"].values[:, 7:8],
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="method: 'pc'"):
        impute(model, sde, da.chunk({"series": 5}), method="pc", **kw)
    with pytest.raises(ValueError, match="generator: a dask-backed"):
        impute(model, sde, da.chunk({"series": 5}), generator=torch.Generator(), n_samples=2)
