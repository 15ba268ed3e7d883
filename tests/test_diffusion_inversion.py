"""Exact inversion (issue 16, item 3): ``sample(invert(x0))`` returns ``x0`` to rounding with
reversible Heun and Rex on the probability-flow ODE and with Rex on the reverse SDE, on
trajectory windows and on a Darcy field of the shipped checkpoint; the naive DDIM inversion
does not; Rex samples the right law from the prior; bad input is named."""

import math
from pathlib import Path

import pytest
import torch

from neuralsde.diffusion import VPSDE, GaussianMixture, ScoreMLP, ScoreModel, sample
from neuralsde.diffusion.inversion import Inversion, invert, replay
from neuralsde.diffusion.schedules import schedule_times

ROOT = Path(__file__).resolve().parents[1]
SDE = VPSDE()


def _round_trip(model, x0, steps, method="reversible_heun"):
    inv = invert(model, SDE, x0, method=method, steps=steps)
    with torch.no_grad():
        back = sample(model, SDE, tuple(x0.shape), x_T=inv)
    return float((back - x0).norm() / x0.norm()), inv


def _ou_windows():
    """Gaussian data of OU windows (32 points, theta 1, dt 1/16) and its exact score on
    ``(B, 32, 1)``."""
    t = torch.arange(32, dtype=torch.float64) / 16
    gm = GaussianMixture([1.0], [[0.0] * 32], [torch.exp(-(t[:, None] - t).abs()).tolist()])
    base = gm.score_fn(SDE)
    return gm, lambda x, tt: base(x.reshape(x.shape[0], -1), tt).reshape(x.shape)


@pytest.mark.parametrize("steps", [20, 100])
def test_reversible_schemes_invert_trajectory_windows_exactly(steps):
    """The exact score of OU windows and (for the ODE) an untrained network, in float32 and
    float64. Tolerances: 1e-5 in float32, 1e-10 in float64, except Rex on the reverse SDE in
    float64: its noise is ~1e8 (the coupling's parasitic mode grows by the flow's gain, module
    docstring), so rounding of the pair costs a factor ~100 (1e-8). A random network's
    ill-posed flow makes that gain ~1e12: no exact SDE round trip there."""
    torch.manual_seed(0)
    net = ScoreMLP((32, 1), hidden=64)
    gm, ou = _ou_windows()
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
        model = ScoreModel(net.to(dtype), SDE).eval()
        x0 = torch.randn(16, 32, 1, generator=torch.Generator().manual_seed(1), dtype=dtype)
        x0 = torch.cumsum(x0, 1) / 4  # rough random-walk windows
        windows = gm.sample(16, torch.Generator().manual_seed(2)).to(dtype).reshape(16, 32, 1)
        for method in ("reversible_heun", "reversible_heun_sde", "rex", "rex_sde"):
            cases = [(ou, windows)] + ([(model, x0)] if method != "rex_sde" else [])
            for score, x in cases:
                with torch.no_grad():
                    err, inv = _round_trip(score, x, steps, method)
                bound = 1e-8 if (method, dtype) == ("rex_sde", torch.float64) else tol
                assert err < bound, (dtype, method, err)
                assert inv.aux is not None and bool(torch.isfinite(inv.noise).all())
        with torch.no_grad():
            naive, _ = _round_trip(model, x0, steps, method="ddim")
        assert naive > 100 * tol  # the baseline does not come back


@pytest.mark.parametrize("method", ["rex", "rex_sde"])
def test_rex_from_the_prior_samples_the_data_law(method):
    """Rex started at ``y = z = x_T ~ N(0, I)`` is a sampler: on OU windows (exact score,
    200 logsnr steps) its samples have the data's variance 1 and lag-1 correlation e^{-1/16}
    within 4 standard errors plus a discretisation allowance of 0.03."""
    gm, ou = _ou_windows()
    n = 2000
    x_T = torch.randn(n, 32, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    knots = schedule_times("logsnr", SDE, 200)
    out = replay(ou, SDE, Inversion(x_T, x_T, method, knots, torch.float64, 7))[..., 0]
    var = out.var(0).mean()
    corr = (out[:, 1:] * out[:, :-1]).mean(0).mean() / var
    assert abs(float(var) - 1.0) < 4 * math.sqrt(2 / n) + 0.03
    assert abs(float(corr) - math.exp(-1 / 16)) < 4 / math.sqrt(n) + 0.03


def test_the_exact_mixture_round_trip_and_the_ddim_baseline():
    gm = GaussianMixture.default_2d()
    x0 = gm.sample(64, torch.Generator().manual_seed(0))
    err, inv = _round_trip(gm.score_fn(SDE), x0, 20)
    assert err < 1e-10
    for method in ("reversible_heun_sde", "rex_sde"):
        sde_err, sde_inv = _round_trip(gm.score_fn(SDE), x0, 20, method)
        assert sde_err < 1e-10 and sde_inv.seed == 0  # the path is regenerated from its seed
    assert abs(float(inv.noise.std()) - 1.0) < 0.2  # noise of the prior's scale
    naive, _ = _round_trip(gm.score_fn(SDE), x0, 20, method="ddim")
    assert naive > 1e-2


@pytest.mark.skipif(not (ROOT / "models" / "darcy_score_64.pt").exists(),
                    reason="the shipped Darcy checkpoint is absent")  # fmt: skip
def test_a_darcy_field_of_the_shipped_checkpoint_inverts_exactly():
    from neuralsde.diffusion import load_checkpoint

    model, _ = load_checkpoint(ROOT / "models" / "darcy_score_64.pt")
    sde = model.sde
    with torch.no_grad():
        field = sample(model, sde, (1, 2, 64, 64), method="dpmpp_2m",
                       steps=10, generator=torch.Generator().manual_seed(0))  # fmt: skip
        for steps in (20, 100):
            for method in ("reversible_heun", "reversible_heun_sde", "rex", "rex_sde"):
                inv = invert(model, sde, field, method=method, steps=steps)
                back = sample(model, sde, tuple(field.shape), x_T=inv)
                # Rex on the SDE: the field's flow gain (~1e11) costs digits (module docstring)
                tol = 1e-4 if method == "rex_sde" else 1e-5
                assert float((back - field).norm() / field.norm()) < tol, (steps, method)


def test_bad_input_is_named():
    gm = GaussianMixture.default_2d()
    x0 = gm.sample(4, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="method: 'dpmpp_2m' is not algebraically reversible"):
        invert(gm.score_fn(SDE), SDE, x0, method="dpmpp_2m")
    with pytest.raises(ValueError, match="method: 'reversible_midpoint' is not"):
        invert(gm.score_fn(SDE), SDE, x0, method="reversible_midpoint")
    inv = invert(gm.score_fn(SDE), SDE, x0, steps=4)
    with pytest.raises(ValueError, match="x_T: the inversion has shape"):
        sample(gm.score_fn(SDE), SDE, (5, 2), x_T=inv)
    with pytest.raises(ValueError, match="x0"):
        invert(gm.score_fn(SDE), SDE, torch.tensor([[float("nan"), 0.0]]))
