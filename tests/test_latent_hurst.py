"""Hurst recovery (slow): a latent SDE with MarkovFBM(learn_hurst=True) fitted to exact fOU data
at irregular times should recover H within 0.1 (benchmarks/hurst_recovery.py reports the error).

Configuration of the benchmark: guided posterior, exact observation times, ``refine=4`` solver
points before each observation. Measured (benchmarks/results/hurst_recovery.md): H = 0.3 is
recovered (0.389), H = 0.7 falls just short (0.599, error 0.101): the refined guided posterior
pins observations through the instantaneous part of the noise, which is cheaper for small H.
Without refinement H = 0.7 is recovered (0.695) but H = 0.3 is not (0.463). The exact Kalman
likelihood of the same model puts both far from 0.5 (peaks at 0.20 and 0.75,
benchmarks/hurst_exact_likelihood.py), so what remains is mostly variational bias. H = 0.7 is
an expected failure until this is solved.
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
        0.3,
        pytest.param(
            0.7, marks=pytest.mark.xfail(reason="H=0.7 estimate ~0.60 with refine=4", strict=False)
        ),
    ],
)
def test_learnable_hurst_is_recovered_within_0_1_from_exact_fou_data(hurst):
    args = argparse.Namespace(series=64, times=20, epochs=200, batch=16, lr=1e-2, dt=0.01,
                              gamma_max=20.0, hurst_lr=0.05, hurst_warmup=0.2, refine=4,
                              verbose=False)  # fmt: skip
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = recover(hurst, args)
    finally:
        torch.set_num_threads(n)
    assert run["abs_error"] <= 0.1, run["estimated_hurst"]
