"""The window SDEs' segment likelihood as a ruptures cost (neuralsde.changepoint.cost) and the
detector's searches with it: the prefix-sum cost equals the direct Euler likelihood of the
segment's fitted SDE, changes near either end are found, a seasonal series without change gives
none and with a level change gives it, bad arguments are named."""

import numpy as np
import pytest
import ruptures as rpt
import torch

from neuralsde.changepoint.cost import SDECost
from neuralsde.changepoint.dynamics import fit_heads, profile_sigma
from neuralsde.changepoint.latent_map import LinearLatentMap
from neuralsde.changepoint.likelihood import euler_log_density
from neuralsde.datasets import simulate_regime_switching
from neuralsde.estimators import LatentSDEChangeDetector


def test_cost_is_the_negative_euler_log_likelihood_of_the_segment_sde():
    """Irregular times, two channels: the prefix-sum cost of [40, 170) equals the Euler
    log-likelihood of the least-squares SDE on the segment's inner transitions, summed
    directly (fit_heads, profile_sigma, euler_log_density)."""
    rng = np.random.default_rng(0)
    n = 220
    t = np.cumsum(rng.uniform(0.5, 1.5, n))
    x = np.cumsum(rng.normal(size=(n, 2)), 0) * 0.1 + rng.normal(size=(n, 2))
    cost = SDECost(latent_dim=2, ridge=1e-3, times=t).fit(x)
    z = torch.as_tensor(LinearLatentMap(2).fit_transform(t, x))
    dt = torch.as_tensor(np.diff(t) / np.median(np.diff(t)))
    dz = z[1:] - z[:-1]
    rate = dz / dt.sqrt().unsqueeze(-1)
    h = torch.cat([torch.zeros(1, 2, dtype=z.dtype), rate[:-1] / rate.std(0)], 0)
    phi = torch.cat([torch.ones_like(z[:-1, :1]), z[:-1], h], -1)
    a, b = 40, 169  # transitions 40..168 lie inside [40, 170)
    sl = slice(a, b)
    w = torch.ones(1, b - a, dtype=z.dtype)
    coef = fit_heads(phi[None, sl], dz[None, sl], dt[None, sl], w, 1e-3)
    resid = dz[None, sl] - (phi[None, sl] @ coef) * dt[None, sl].unsqueeze(-1)
    sig = profile_sigma(resid, dt[None, sl], w)
    loglik = euler_log_density(dz[None, sl], phi[None, sl] @ coef, sig.unsqueeze(1),
                               dt[None, sl]).sum()  # fmt: skip
    assert cost.error(40, 170) == pytest.approx(-float(loglik), rel=1e-9)
    assert cost.dof == 2 * (5 + 1) and cost.min_size == 12


@pytest.mark.parametrize("kind", ["volatility", "mean_reversion"])
@pytest.mark.parametrize("where", [0.1, 0.9])
def test_a_change_at_a_tenth_from_either_end_is_found(kind, where):
    """n = 400, one change at 40 or 360: the detector's default peak picking cannot score
    there (its windows of 50 need 50 points on each side); its Binseg search with the SDE
    cost finds it within 10 samples, at the default penalty."""
    n = 400
    cp = int(where * n)
    ds = simulate_regime_switching(1, n, kind, change_points=[cp], seed=3)
    x = ds["values"].values[0, :, 0]
    det = LatentSDEChangeDetector(window=50, random_state=0).fit(x)
    bkps = det.predict(search="binseg")
    assert len(bkps) == 2 and abs(bkps[0] - cp) <= 10, bkps
    assert det.predict(search="pelt") == bkps
    assert abs(det.predict(n_bkps=1, search="bottomup")[0] - cp) <= 10


def test_no_change_gives_no_breakpoint_with_the_search():
    ds = simulate_regime_switching(1, 400, "volatility", change_points=[200], seed=0,
                                   segments=[{"sigma": 0.5}, {"sigma": 0.5}])  # fmt: skip
    det = LatentSDEChangeDetector(window=50, random_state=0).fit(ds["values"].values[0, :, 0])
    assert det.predict(search="binseg") == [400]


def test_bad_search_arguments_are_named():
    x = np.random.default_rng(0).normal(size=200)
    det = LatentSDEChangeDetector(window=30, random_state=0).fit(x)
    with pytest.raises(ValueError, match="search must be one of"):
        det.predict(search="dynp")
    with pytest.raises(ValueError, match="search='pelt' takes pen"):
        det.predict(n_bkps=2, search="pelt")
    with pytest.raises(ValueError, match="n_bkps=40 segments"):
        det.predict(n_bkps=40, search="binseg")
    with pytest.raises(ValueError, match="signal must be"):
        SDECost().fit(np.zeros(2))
    with pytest.raises(ValueError, match="shorter than min_size"):
        SDECost(latent_dim=1).fit(x).error(0, 5)
    assert isinstance(det.cost(), rpt.base.BaseCost)


def _seasonal(seed, n=400, shift=0.0):
    """A periodic mean (period 50 samples, amplitude 1) plus OU noise; ``shift`` added to the
    level from sample 250 on."""
    from neuralsde.datasets import simulate_ou

    ou = simulate_ou(1, n, theta=2.0, sigma=0.5, t_end=40.0, seed=seed)["values"].values[0, :, 0]
    x = np.sin(2 * np.pi * np.arange(n) / 50) + ou
    x[250:] += shift
    return x


def test_a_seasonal_series_without_change_gives_no_breakpoint():
    """10 seeds, default penalty: no breakpoint from peak picking nor from the Binseg search
    in at least 9 (the window SDEs' memory input follows the periodic mean)."""
    quiet = [LatentSDEChangeDetector(random_state=0).fit(_seasonal(s)) for s in range(10)]
    assert sum(d.predict() == [400] for d in quiet) >= 9
    assert sum(d.predict(search="binseg") == [400] for d in quiet) >= 9


def test_a_level_change_on_a_seasonal_series_is_found():
    for seed in (0, 1):
        det = LatentSDEChangeDetector(random_state=0).fit(_seasonal(seed, shift=1.0))
        bkps = det.predict(search="binseg")
        assert any(abs(b - 250) <= 8 for b in bkps[:-1]), bkps
        assert det.predict(n_bkps=1, search="binseg")[0] in range(242, 259)


def test_seasonal_period_finds_the_seat_belt_law_on_uk_driver_deaths():
    """192 monthly points, the law 23 points from the end (index 169): with the seasonal mean
    removed, Pelt and BottomUp with the SDE cost find it at the default penalty (without,
    nothing is found); the loaded detector keeps the seasonal mean."""
    from neuralsde.datasets import load_uk_driver_deaths

    ds = load_uk_driver_deaths()
    det = LatentSDEChangeDetector(seasonal_period="365.25D", random_state=0).fit(ds["values"][0])
    for search in ("pelt", "bottomup"):
        assert any(abs(b - 169) <= 3 for b in det.predict(search=search)[:-1])
    assert det.seasonal_.shape == (192, 1)
    # the removed mean is periodic: a year apart it repeats to within a tenth of its range
    s = det.seasonal_[:, 0]
    assert np.abs(s[12:] - s[:-12]).max() < 0.1 * np.ptp(s)
    plain = LatentSDEChangeDetector(random_state=0).fit(ds["values"].values[0, :, 0])
    assert plain.predict(search="pelt") == [192]


def test_seasonal_period_errors_name_the_argument():
    x = np.random.default_rng(0).normal(size=100)
    with pytest.raises(ValueError, match="harmonics"):
        LatentSDEChangeDetector(seasonal_period=12, harmonics=0).fit(x)
    with pytest.raises((ValueError, TypeError), match="seasonal_period"):
        LatentSDEChangeDetector(seasonal_period=-3).fit(x)
