"""Exact inversion of the probability-flow ODE (issue 16, item 3): ``sample(invert(x0))``
returns ``x0`` to rounding with reversible Heun, on trajectory windows and on a Darcy field
of the shipped checkpoint; the naive DDIM inversion does not; bad input is named."""

from pathlib import Path

import pytest
import torch

from neuralsde.diffusion import VPSDE, GaussianMixture, ScoreMLP, ScoreModel, sample
from neuralsde.diffusion.inversion import invert

ROOT = Path(__file__).resolve().parents[1]
SDE = VPSDE()


def _round_trip(model, x0, steps, method="reversible_heun"):
    inv = invert(model, SDE, x0, method=method, steps=steps)
    with torch.no_grad():
        back = sample(model, SDE, tuple(x0.shape), x_T=inv)
    return float((back - x0).norm() / x0.norm()), inv


@pytest.mark.parametrize("steps", [20, 100])
def test_reversible_heun_inverts_trajectory_windows_exactly(steps):
    torch.manual_seed(0)
    net = ScoreMLP((32, 1), hidden=64)
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
        model = ScoreModel(net.to(dtype), SDE).eval()
        x0 = torch.randn(16, 32, 1, generator=torch.Generator().manual_seed(1), dtype=dtype)
        x0 = torch.cumsum(x0, 1) / 4  # rough random-walk windows
        for method in ("reversible_heun", "reversible_heun_sde"):
            with torch.no_grad():
                err, inv = _round_trip(model, x0, steps, method)
            assert err < tol, (dtype, method, err)
            assert inv.aux is not None and bool(torch.isfinite(inv.noise).all())
        with torch.no_grad():
            naive, _ = _round_trip(model, x0, steps, method="ddim")
        assert naive > 100 * tol  # the baseline does not come back


def test_the_exact_mixture_round_trip_and_the_ddim_baseline():
    gm = GaussianMixture.default_2d()
    x0 = gm.sample(64, torch.Generator().manual_seed(0))
    err, inv = _round_trip(gm.score_fn(SDE), x0, 20)
    assert err < 1e-10
    sde_err, sde_inv = _round_trip(gm.score_fn(SDE), x0, 20, "reversible_heun_sde")
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
            for method in ("reversible_heun", "reversible_heun_sde"):
                inv = invert(model, sde, field, method=method, steps=steps)
                back = sample(model, sde, tuple(field.shape), x_T=inv)
                assert float((back - field).norm() / field.norm()) < 1e-5, (steps, method)


def test_bad_input_is_named():
    gm = GaussianMixture.default_2d()
    x0 = gm.sample(4, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="method: 'dpmpp_2m' is not algebraically reversible"):
        invert(gm.score_fn(SDE), SDE, x0, method="dpmpp_2m")
    inv = invert(gm.score_fn(SDE), SDE, x0, steps=4)
    with pytest.raises(ValueError, match="x_T: the inversion has shape"):
        sample(gm.score_fn(SDE), SDE, (5, 2), x_T=inv)
    with pytest.raises(ValueError, match="x0"):
        invert(gm.score_fn(SDE), SDE, torch.tensor([[float("nan"), 0.0]]))
