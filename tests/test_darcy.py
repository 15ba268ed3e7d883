"""Darcy solver: second-order convergence to a manufactured solution, a consistent residual,
the thresholded-GRF coefficient, and the shipped joint score model."""

from pathlib import Path

import numpy as np
import pytest
import torch

from neuralsde.pde import (
    darcy_dataset,
    darcy_residual,
    gaussian_random_field,
    solve_darcy,
    threshold_coefficient,
)

CKPT = Path(__file__).resolve().parent.parent / "models" / "darcy_score_64.pt"


def _manufactured(n):
    # u = sin(pi x) sin(pi y), a = 2 + x y, f = -div(a grad u)
    x = np.linspace(0, 1, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    a = 2 + X * Y
    u = np.sin(np.pi * X) * np.sin(np.pi * Y)
    f = -(
        Y * np.pi * np.cos(np.pi * X) * np.sin(np.pi * Y)
        + X * np.pi * np.sin(np.pi * X) * np.cos(np.pi * Y)
        - 2 * np.pi**2 * a * u
    )
    return a, u, f


def test_solver_converges_at_second_order_to_a_manufactured_solution():
    errs = []
    for n in (17, 33, 65):
        a, u, f = _manufactured(n)
        errs.append(np.abs(solve_darcy(a, f) - u).max())
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(rates - 2.0) < 0.1), rates


def test_constant_coefficient_matches_the_poisson_maximum():
    # -Laplace u = 1 on the unit square: max u = 0.07367 (series solution)
    u = solve_darcy(np.ones((65, 65)))
    assert abs(u.max() - 0.073671) < 2e-4


def test_residual_vanishes_on_the_discrete_solution_and_not_elsewhere():
    a = threshold_coefficient(gaussian_random_field(32, 1, rng=0)[0])
    u = solve_darcy(a)
    r = darcy_residual(torch.tensor(a)[None], torch.tensor(u)[None])
    assert float(r.abs().max()) < 1e-8
    r_bad = darcy_residual(torch.tensor(a)[None], 1.1 * torch.tensor(u)[None])
    assert float(r_bad.abs().mean()) > 0.05


def test_coefficient_is_thresholded_to_3_and_12_with_balanced_phases():
    a, u = darcy_dataset(8, n=32, seed=3)
    assert set(np.unique(a).tolist()) == {3.0, 12.0}
    frac = (a == 12.0).mean()
    assert 0.3 < frac < 0.7
    assert a.shape == u.shape == (8, 32, 32)
    a2, _ = darcy_dataset(8, n=32, seed=3)
    np.testing.assert_array_equal(a, a2)


def test_solver_rejects_a_non_positive_coefficient():
    with pytest.raises(ValueError, match="a must be positive everywhere"):
        solve_darcy(np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"square \(n, n\) array"):
        solve_darcy(np.ones((8, 9)))


@pytest.mark.skipif(not CKPT.exists(), reason="shipped checkpoint missing")
def test_shipped_checkpoint_loads_with_its_config_and_samples():
    from neuralsde.diffusion.fields import DarcyFields, random_mask

    fields = DarcyFields.from_checkpoint(CKPT, resolution=64)
    assert fields.meta["channels"] == ["a", "u"]
    a, u = darcy_dataset(1, n=64, seed=5)
    mask = random_mask(64, 0.03, torch.Generator().manual_seed(0))
    A, U = fields.sample(
        2,
        a_obs=a,
        a_mask=mask,
        method="dpmpp_2m",
        steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert A.shape == U.shape == (1, 2, 64, 64)
    # observed coefficient values are reproduced exactly (inpainting)
    np.testing.assert_allclose(A[0, 0][mask[0]].numpy(), a[0][mask[0].numpy()], atol=1e-3)
    with pytest.raises(ValueError, match="resolution: the file has 64, expected 32"):
        DarcyFields.from_checkpoint(CKPT, resolution=32)
    with pytest.raises(ValueError, match="observation mask of shape"):
        fields.sample(1, a_obs=a, a_mask=mask[:, :32])


CKPT32 = CKPT.with_name("darcy_score_32.pt")


@pytest.mark.skipif(not CKPT32.exists(), reason="shipped checkpoint missing")
def test_edm_checkpoint_samples_with_diffusionpdes_protocol():
    from neuralsde.diffusion.fields import DarcyFields, random_mask

    fields = DarcyFields.from_checkpoint(CKPT32, resolution=32)
    assert fields.model.preconditioning == "edm"
    a, u = darcy_dataset(2, n=32, seed=5)
    mask = random_mask(32, 0.03, torch.Generator().manual_seed(0), fields=2)
    A, U = fields.sample(1, a_obs=a, a_mask=mask, method="heun_edm", steps=4,
                         residual_weight=0.1, late_obs_factor=0.1,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert A.shape == U.shape == (2, 1, 32, 32)
    assert torch.isfinite(U).all()
    np.testing.assert_allclose(A[:, 0][mask].numpy(), a[mask.numpy()], atol=1e-2)
    with pytest.raises(ValueError, match="switch must be a fraction"):
        fields.sample(1, a_obs=a, a_mask=mask, switch=1.5)


@pytest.mark.skipif(not CKPT32.exists(), reason="shipped checkpoint missing")
def test_sampler_settings_come_from_the_call_then_the_checkpoint_then_the_library():
    from neuralsde.diffusion.fields import SAMPLER, DarcyFields, random_mask

    fields = DarcyFields.from_checkpoint(CKPT32, resolution=32)
    stored = fields.meta["sampler"]  # the shipped model carries its benchmarked protocol
    assert stored["method"] == "heun_edm" and stored["late_obs_factor"] == 0.1
    assert fields.sampler_settings() == {**SAMPLER, **stored}
    assert fields.sampler_settings(steps=7, obs_weight=None)["steps"] == 7
    assert fields.sampler_settings(steps=7)["obs_weight"] == stored["obs_weight"]
    a, _ = darcy_dataset(1, n=32, seed=9)
    mask = random_mask(32, 0.03, torch.Generator().manual_seed(1), fields=1)
    explicit = {**stored, "steps": 3}
    A0, U0 = fields.sample(1, a_obs=a, a_mask=mask, steps=3,
                           generator=torch.Generator().manual_seed(4))  # fmt: skip
    A1, U1 = fields.sample(1, a_obs=a, a_mask=mask, generator=torch.Generator().manual_seed(4),
                           **explicit)  # fmt: skip
    assert torch.equal(A0, A1) and torch.equal(U0, U1)
    A2, _ = fields.sample(1, a_obs=a, a_mask=mask, generator=torch.Generator().manual_seed(4),
                          **{**explicit, "obs_weight": 1.0})  # fmt: skip
    assert not torch.equal(A0, A2)
    bare = DarcyFields(fields.model, {k: v for k, v in fields.meta.items() if k != "sampler"})
    assert bare.sampler_settings() == SAMPLER
    with pytest.raises(TypeError, match="unknown sampler settings \\['stepz'\\]"):
        fields.sampler_settings(stepz=3)


@pytest.mark.skipif(not CKPT32.exists(), reason="shipped checkpoint missing")
def test_estimate_is_the_sample_mean_thresholded_and_keeps_observed_values():
    from neuralsde.diffusion.fields import DarcyFields, random_mask, threshold_a

    fields = DarcyFields.from_checkpoint(CKPT32, resolution=32)
    a, u = darcy_dataset(2, n=32, seed=6)
    mask = random_mask(32, 0.03, torch.Generator().manual_seed(2), fields=2)
    kw = {"a_obs": a, "a_mask": mask, "steps": 3}
    A, U = fields.sample(3, generator=torch.Generator().manual_seed(5), **kw)
    est = fields.estimate(n_samples=3, generator=torch.Generator().manual_seed(5), **kw)
    assert est.a.shape == est.u.shape == est.a_std.shape == (2, 32, 32)
    assert torch.equal(est.a, threshold_a(A.mean(1)))
    torch.testing.assert_close(est.u, U.mean(1))
    torch.testing.assert_close(est.u_std, U.std(1))
    assert set(est.a.unique().tolist()) <= {3.0, 12.0}
    np.testing.assert_array_equal(est.a[mask].numpy(), a[mask.numpy()])  # inpainted exactly
    one = fields.estimate(n_samples=1, generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(one.a_std, torch.zeros_like(one.a_std))
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="n_samples must be a positive int"):
            fields.estimate(n_samples=bad, **kw)
