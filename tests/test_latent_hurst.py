"""Hurst recovery (slow): ``LatentSDEForecaster(latent_dim=1, noise=MarkovFBM(learn_hurst=True))``
with its default (backward-filter) posterior, fitted to exact fOU data at irregular times from
H = 0.5, recovers H = 0.3 and H = 0.7 within 0.1 on the benchmark data and on the fOU cases
with other theta, sigma, numbers of series and observations that nothing was chosen on
(benchmarks/hurst_recovery.py; measured 0.223 / 0.732, 0.244 / 0.646 and 0.333 / 0.689)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from hurst_recovery import CASES, recover  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_learnable_hurst_is_recovered_within_0_1_from_exact_fou_data(hurst, case):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = recover(hurst, case)
    finally:
        torch.set_num_threads(n)
    assert run["abs_error"] <= 0.1, run["estimated_hurst"]
