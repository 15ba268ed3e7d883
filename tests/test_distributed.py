"""Data-parallel training (issue 18, item 2): ``train.fit`` under two gloo processes, started
as torchrun starts them (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), matches
the single-process run at the same global batch and seed: loss curves to 1e-6 relative over
the epochs, the same final weights, and early stopping at the same epoch on every rank."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from neuralsde import train


def _problem(n):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    y = torch.sin(x @ torch.tensor([[1.0], [-2.0], [0.5]])) + 0.1 * torch.randn(n, 1, generator=g)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    return model, (x[: n - 8], y[: n - 8]), (x[n - 8 :], y[n - 8 :])


def _mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def _fit(n, epochs, patience):
    model, tr, va = _problem(n)
    history = train.fit(model, _mse, tr, va, epochs=epochs, lr=0.05, batch_size=8,
                        patience=patience, lr_schedule="plateau", verbose=False,
                        generator=torch.Generator().manual_seed(3))  # fmt: skip
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"train": history.train_loss, "val": history.val_loss, "stopped": history.stopped,
            "best": history.best_epoch, "weights": weights.tolist()}  # fmt: skip


def _rank(rank, world, port, out, n, epochs, patience):
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    try:
        result = _fit(n, epochs, patience)
    except ValueError as err:
        result = {"error": str(err)}
    with open(f"{out}.{rank}", "w") as f:
        json.dump(result, f)
    torch.distributed.destroy_process_group() if torch.distributed.is_initialized() else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _distributed(tmp_path, n, epochs, patience, world=2):
    out = str(tmp_path / "rank")
    mp.spawn(_rank, args=(world, _free_port(), out, n, epochs, patience), nprocs=world,
             join=True)  # fmt: skip
    return [json.loads(open(f"{out}.{r}").read()) for r in range(world)]


@pytest.mark.parametrize("n", [40, pytest.param(45, marks=pytest.mark.slow)])  # 45: unequal shares
def test_two_gloo_ranks_match_one_process(tmp_path, n):
    one = _fit(n, epochs=3, patience=None)
    ranks = _distributed(tmp_path, n, epochs=3, patience=None)
    for r in ranks:
        np.testing.assert_allclose(r["train"], one["train"], rtol=1e-6)
        np.testing.assert_allclose(r["val"], one["val"], rtol=1e-6)
        np.testing.assert_allclose(r["weights"], one["weights"], rtol=1e-5, atol=1e-6)
    assert ranks[0]["weights"] == ranks[1]["weights"], "the ranks ended with other weights"


@pytest.mark.slow
def test_early_stopping_stops_every_rank_at_the_same_epoch(tmp_path):
    one = _fit(40, epochs=60, patience=2)
    ranks = _distributed(tmp_path, 40, epochs=60, patience=2)
    assert one["stopped"] == "early_stopping"
    for r in ranks:
        assert (r["stopped"], r["best"], len(r["train"])) == (
            one["stopped"], one["best"], len(one["train"]))  # fmt: skip


def test_a_rank_with_no_data_is_refused_before_training(tmp_path):
    ranks = _distributed(tmp_path, 9, epochs=2, patience=None, world=2)  # 1 training row
    for r in ranks:
        assert "train holds 1 rows for 2 ranks: rank(s) 1..1 would have no data" in r["error"]


def _classifier_rank(rank, world, port, out):
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    from neuralsde.estimators import SDEClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 8, 1))
    y = (X[:, :, 0].mean(1) > 0).astype(int)
    clf = SDEClassifier(epochs=2, hidden=8, batch_size=8, verbose=False).fit(X, y)
    clf.save(f"{out}/model-rank{rank}")
    with open(f"{out}/proba.{rank}", "w") as f:
        json.dump(clf.predict_proba(X).tolist(), f)
    torch.distributed.destroy_process_group()


def test_an_estimator_fits_unchanged_under_two_ranks_and_only_rank_0_saves(tmp_path):
    """The same estimator script under torchrun: every rank ends with the same model, and
    only rank 0 writes its files."""
    mp.spawn(_classifier_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    p0, p1 = (json.loads((tmp_path / f"proba.{r}").read_text()) for r in range(2))
    assert p0 == p1
    assert (tmp_path / "model-rank0" / "weights.safetensors").is_file()
    assert not (tmp_path / "model-rank1").exists()


def _score_rank(rank, world, port, out):
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    from neuralsde.diffusion import VPSDE, ScoreMLP, train_score

    torch.manual_seed(0)
    windows = torch.randn(64, 8).cumsum(-1)
    model, history = train_score(windows, VPSDE(), ScoreMLP(8, hidden=16), epochs=2,
                                 batch_size=16, verbose=False,
                                 generator=torch.Generator().manual_seed(0))  # fmt: skip
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    with open(f"{out}/score.{rank}", "w") as f:
        json.dump({"loss": history.train_loss, "weights": weights.tolist()}, f)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_the_trajectory_score_model_trains_under_two_ranks(tmp_path):
    mp.spawn(_score_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"score.{r}").read_text()) for r in range(2))
    assert r0 == r1 and all(np.isfinite(r0["loss"]))
