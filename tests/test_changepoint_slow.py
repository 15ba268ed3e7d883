"""Statistical calibration of the change detector's default penalty (slow)."""

import math

import numpy as np
import pytest

from neuralsde.estimators import LatentSDEChangeDetector


@pytest.mark.slow
@pytest.mark.parametrize(
    "config", [{}, {"features": 2, "window": "auto"}], ids=["default", "neural"]
)
def test_no_change_on_stationary_ou_in_nine_of_ten_seeds(config):
    # the default (linear window SDEs, window 50) and the neural configuration the benchmark
    # reports (learned features, window "auto"); one stationary OU path per seed
    found = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        a = math.exp(-0.1)
        x = np.empty(1000)
        x[0] = rng.normal()
        for i in range(1, 1000):
            x[i] = a * x[i - 1] + math.sqrt(1 - a * a) * rng.normal()
        found.append(len(LatentSDEChangeDetector(random_state=seed, **config).fit(x).predict()) - 1)
    assert sum(k == 0 for k in found) >= 9, found
