"""Regression tests for issue 19's reported cases that this stop fixed (the rest of the issue
is open): each reproduces the original case, which used to hang or fail obscurely."""

import multiprocessing as mp

import numpy as np
import pytest
import torch

from neuralsde import SDE, solve
from neuralsde.changepoint.peaks import pick_peaks


class _Decay(SDE):
    noise_type, sde_type = "diagonal", "ito"

    def f(self, t, y):
        return -y

    def g(self, t, y):
        return torch.ones_like(y)


def _empty_batch_adaptive(queue):
    try:
        solve(_Decay(), torch.ones(0, 1), torch.tensor([0.0, 1.0]), rtol=1e-3)
        queue.put("returned")
    except ValueError as e:
        queue.put(str(e))


def test_an_empty_batch_is_refused_instead_of_hanging():
    """solve with rtol/atol on an empty batch used to hang: run it in a child process with a
    time limit, so a regression fails the test instead of the suite."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_empty_batch_adaptive, args=(queue,))
    proc.start()
    proc.join(120)
    if proc.is_alive():
        proc.kill()
        pytest.fail("solve on an empty batch with rtol/atol still hangs")
    assert "y0 must hold at least one series" in queue.get(timeout=5)


@pytest.mark.parametrize("dt", [1e-9, 1e-7])
def test_max_steps_is_checked_before_a_fixed_grid_is_allocated(dt):
    with pytest.raises(ValueError, match="more than max_steps=1000000"):
        solve(_Decay(), torch.ones(2, 1), torch.tensor([0.0, 1.0]), dt=dt)


def test_solve_names_a_generator_of_the_wrong_type():
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None; got int"):
        solve(_Decay(), torch.ones(2, 1), torch.tensor([0.0, 1.0]), generator=5)


@pytest.mark.parametrize("min_distance", [0, -2, 2.5, True])
def test_pick_peaks_refuses_a_min_distance_that_would_loop_or_be_truncated(min_distance):
    score = np.array([0.0, 1.0, 5.0, 1.0, 0.0, 3.0, 0.0])
    with pytest.raises(ValueError, match="min_distance must be an integer >= 1"):
        pick_peaks(score, min_distance, pen=0.5)


def test_pick_peaks_refuses_a_nan_penalty():
    with pytest.raises(ValueError, match="pen must be a finite number; got nan"):
        pick_peaks(np.array([0.0, 2.0, 0.0]), 1, pen=float("nan"))


@pytest.mark.parametrize("kw,match", [
    ({"min_distance": 0}, "min_distance must be an integer >= 1 or None; got 0"),
    ({"min_distance": 2.5}, "min_distance must be an integer >= 1 or None; got 2.5"),
    ({"ridge": float("nan")}, "ridge must be a finite number >= 0; got nan"),
])  # fmt: skip
def test_the_detector_checks_min_distance_and_ridge_at_fit(kw, match):
    from neuralsde.estimators import LatentSDEChangeDetector

    signal = np.random.default_rng(0).normal(size=(60, 1))
    with pytest.raises(ValueError, match=match):
        LatentSDEChangeDetector(window=10, epochs=0, **kw).fit(signal)
