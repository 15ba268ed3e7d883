"""Hurst recovery (slow): a latent SDE with MarkovFBM(learn_hurst=True) fitted to exact fOU data
at irregular times should recover H within 0.1 (benchmarks/hurst_recovery.py reports the error).

Measured (benchmarks/results/hurst_recovery.md): H = 0.7 is recovered (0.63, error 0.07), but the
estimate for H = 0.3 stays at 0.45-0.5. The exact Kalman likelihood of the same MarkovFBM model
on the same data does identify H (benchmarks/hurst_exact_likelihood.py), so the shortfall is the
variational posterior, which does not follow paths this rough (it learns a large observation
noise instead). That case is an expected failure until this is solved.
"""

import argparse
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.hurst_recovery import recover  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize(
    "hurst",
    [
        pytest.param(
            0.3, marks=pytest.mark.xfail(reason="H=0.3 estimate stays at 0.45-0.5", strict=False)
        ),
        0.7,
    ],
)
def test_learnable_hurst_is_recovered_within_0_1_from_exact_fou_data(hurst):
    args = argparse.Namespace(series=64, times=20, epochs=200, batch=16, lr=1e-2, dt=0.01,
                              gamma_max=20.0, hurst_lr=0.05, hurst_warmup=0.2,
                              verbose=False)  # fmt: skip
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = recover(hurst, args)
    finally:
        torch.set_num_threads(n)
    assert run["abs_error"] <= 0.1, run["estimated_hurst"]
