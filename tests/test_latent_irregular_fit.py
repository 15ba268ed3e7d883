"""Issue #5, item 4 (slow): on OU data with 50% of the points missing, the latent SDE's 90%
predictive interval covers 80-97% of the held-out points and its held-out log predictive density
beats the last-value baseline (``benchmarks/latent_irregular_fit.py``, the same run)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.latent_irregular_fit import main  # noqa: E402


@pytest.mark.slow
def test_latent_sde_intervals_cover_held_out_ou_points_and_beat_the_naive_density(tmp_path):
    record = main(["--out", str(tmp_path)])
    cov = record["latent_sde"]["coverage90"]
    assert 0.80 <= cov <= 0.97, cov
    assert record["latent_sde"]["log_density"] > record["naive_last_value"]["log_density"]
