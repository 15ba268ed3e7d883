"""CRPS against its definition and closed forms (neuralsde.metrics)."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from neuralsde.metrics import coverage, crps_gaussian, crps_samples


def _crps_by_definition(cdf, y, lo, hi):
    """int (F(x) - 1{x >= y})^2 dx by quadrature, split at y."""
    left = integrate.quad(lambda x: cdf(x) ** 2, lo, y, limit=200)[0]
    right = integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, hi, limit=200)[0]
    return left + right


@pytest.mark.parametrize("mu,s,y", [(0.0, 1.0, 0.0), (1.5, 0.3, 0.2), (-2.0, 4.0, 3.0)])
def test_gaussian_crps_is_the_integral_of_the_squared_cdf_gap(mu, s, y):
    ref = _crps_by_definition(stats.norm(mu, s).cdf, y, mu - 12 * s, mu + 12 * s)
    assert crps_gaussian(mu, s, y) == pytest.approx(ref, rel=1e-7)


def test_sample_crps_is_exact_for_the_empirical_law():
    """The sorted-sample formula equals the definition for the empirical CDF (a step
    function, integrated exactly between its jumps) and the pairwise form."""
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=37)
    for y in (-1.0, 0.7, 2.5, 9.0):
        pts = np.sort(np.concatenate([x, [y]]))
        cdf = np.searchsorted(np.sort(x), pts[:-1], side="right") / len(x)
        step = (cdf - (pts[:-1] >= y)) ** 2
        ref = float((step * np.diff(pts)).sum())
        pairwise = np.abs(x - y).mean() - 0.5 * np.abs(x[:, None] - x[None]).mean()
        got = float(crps_samples(x[:, None], np.array([y]))[0])
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-12)
        assert got == pytest.approx(pairwise, rel=1e-12)


def test_sample_crps_converges_to_the_gaussian_one():
    """m = 20,000 normal samples at 5 outcomes: the estimate's standard error is below
    sqrt(Var|X - y| / m) + the spread term's; 4 of them bound the gap."""
    rng = np.random.default_rng(1)
    m, y = 20_000, np.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    samples = rng.normal(0.3, 1.2, size=(m, 5))
    got = crps_samples(samples, y)
    ref = crps_gaussian(0.3, 1.2, y)
    se = (np.abs(samples - y).std(0) + 1.2) / math.sqrt(m)
    assert (np.abs(got - ref) < 4 * se).all(), (got, ref, se)


def test_point_forecast_crps_is_the_absolute_error_and_coverage_counts():
    assert crps_samples(np.array([[2.0, -1.0]]), np.array([0.5, 1.0])).tolist() == [1.5, 2.0]
    assert coverage([0, 0, 0, 0], [1, 1, 1, 1], [0.5, 1.0, 1.5, -0.1]) == 0.5


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="samples of shape"):
        crps_samples(np.zeros((4, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="y holds NaN"):
        crps_samples(np.zeros((4, 1)), np.array([np.nan]))
    with pytest.raises(ValueError, match="std must be > 0"):
        crps_gaussian(0.0, 0.0, 1.0)
