"""EDM preconditioning (Karras et al. 2022) and DiffusionPDE's guidance schedule.

Closed forms for Gaussian data.
For data ``N(0, sd^2 I)`` the optimal denoiser in EDM's variables is ``c_skip x_hat``, so a
network that outputs zero is exact: its score must equal the Gaussian marginal's score, its
EDM loss has expectation exactly 1 at every noise level, and EDM's Heun sampler on the Karras
schedule must reproduce the data variance.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuralsde.diffusion import (
    VESDE,
    VPSDE,
    ObservationGuidance,
    ResidualGuidance,
    ScoreMLP,
    ScoreModel,
    edm_loss,
    load_checkpoint,
    sample,
    save_checkpoint,
    train_score,
)


class Zero(nn.Module):
    def forward(self, x, t):
        return torch.zeros_like(x)


class Scaled(nn.Module):
    def forward(self, x, t):
        return 0.3 * x


def edm_ve():
    # sigma from 0.002 (at eps) to 80, as EDM
    return VESDE(0.002, 80.0, eps=math.log(2) / (2 * math.log(40000)))


@pytest.mark.parametrize("sde", [VPSDE(), edm_ve()], ids=["vp", "ve"])
def test_zero_network_is_the_exact_score_of_gaussian_data(sde):
    sd = 0.7
    model = ScoreModel(Zero(), sde, "edm", sigma_data=sd)
    x = torch.randn(6, 3, dtype=torch.float64)
    for t in (0.05, 0.3, 0.9):
        tt = torch.full((6,), t, dtype=torch.float64)
        a, s = sde.alpha(tt)[:, None], sde.sigma(tt)[:, None]
        exact = -x / (a**2 * sd**2 + s**2)
        torch.testing.assert_close(model(x, tt), exact, rtol=1e-10, atol=0)
        # noise prediction and denoiser agree with the score (Tweedie)
        torch.testing.assert_close(model.noise_prediction(x, tt), -s * exact)
        torch.testing.assert_close(model.denoise(x, tt), (x + s**2 * exact) / a)


@pytest.mark.parametrize("sde", [VPSDE(), edm_ve()], ids=["vp", "ve"])
def test_edm_loss_of_the_optimal_denoiser_has_expectation_one(sde):
    # weight * |D - x0|^2 is a chi-square(1) per dimension for the optimal denoiser
    sd, b, d = 0.5, 4096, 8
    g = torch.Generator().manual_seed(0)
    x0 = sd * torch.randn(b, d, generator=g, dtype=torch.float64)
    model = ScoreModel(Zero(), sde, "edm", sigma_data=sd)
    loss = float(edm_loss(model, sde, x0, generator=g))
    se = math.sqrt(2 / (b * d))
    assert abs(loss - 1) < 4 * se, (loss, se)
    # a network output F = 0.3 c_in x_hat adds 0.3^2 c_in^2 (s^2 + sd^2) = 0.09 exactly
    # (the weight is 1 / c_out^2 and the optimal residual is orthogonal to x_hat)
    off = ScoreModel(Scaled(), sde, "edm", sigma_data=sd)
    loss = float(edm_loss(off, sde, x0, generator=g))
    assert abs(loss - 1.09) < 6 * se, (loss, se)


def test_heun_edm_on_karras_with_the_exact_denoiser_reproduces_the_data_law():
    sd, n = 0.5, 4000
    sde = edm_ve()
    model = ScoreModel(Zero(), sde, "edm", sigma_data=sd)
    g = torch.Generator().manual_seed(1)
    x = sample(model, sde, (n, 2), method="heun_edm", steps=40, generator=g,
               dtype=torch.float64)  # fmt: skip
    var = x.var(0)
    se = sd**2 * math.sqrt(2 / (n - 1))
    assert torch.all((var - sd**2).abs() < 4 * se), (var, se)
    assert torch.all(x.mean(0).abs() < 4 * sd / math.sqrt(n))


def test_training_with_edm_learns_the_gaussian_denoiser():
    torch.manual_seed(0)
    s0 = 1.5  # data std; sigma_data left at 1, so the network must learn the difference
    data = s0 * torch.randn(4000, 1)
    sde = edm_ve()
    model, hist = train_score(data, sde, ScoreMLP(1, hidden=32), epochs=60, batch_size=256,
                              lr=3e-3, preconditioning="edm", sigma_data=1.0, verbose=False,
                              generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert model.preconditioning == "edm" and hist.train_loss[-1] < hist.train_loss[0]
    x = torch.linspace(-2, 2, 9)[:, None]
    for s in (0.3, 1.0, 3.0):
        t = sde.t_from_log_snr(torch.tensor(-math.log(s), dtype=torch.float64)).float()
        with torch.no_grad():
            got = model.denoise(x * s0, t.expand(9))
        want = s0**2 / (s**2 + s0**2) * x * s0
        assert float((got - want).abs().max()) < 0.1 * s0, (s, got.ravel(), want.ravel())


def test_checkpoint_keeps_the_parametrisation_and_old_files_load_as_noise(tmp_path):
    sde = edm_ve()
    model = ScoreModel(ScoreMLP(2, hidden=8), sde, "edm", sigma_data=0.8)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    back, _ = load_checkpoint(path, expected={"precond": {"kind": "edm"}})
    assert (back.preconditioning, back.sigma_data) == ("edm", 0.8)
    x, t = torch.randn(4, 2), torch.full((4,), 0.4)
    torch.testing.assert_close(back(x, t), model(x, t))
    # a file without "precond" (written before it existed) is a noise predictor
    raw = torch.load(path, weights_only=True)
    del raw["precond"]
    torch.save(raw, path)
    old, _ = load_checkpoint(path)
    assert old.preconditioning == "noise"
    with pytest.raises(ValueError, match=r"precond.kind: the file has 'noise', expected 'edm'"):
        load_checkpoint(path, expected={"precond": {"kind": "edm"}})


def test_bad_parametrisation_arguments_name_themselves():
    with pytest.raises(ValueError, match="preconditioning must be one of"):
        ScoreModel(Zero(), VPSDE(), "eps")
    with pytest.raises(ValueError, match="sigma_data must be positive"):
        ScoreModel(Zero(), VPSDE(), "edm", sigma_data=0.0)
    with pytest.raises(ValueError, match="edm_loss trains the EDM-preconditioned"):
        edm_loss(ScoreModel(Zero(), VPSDE()), VPSDE(), torch.randn(4, 2))
    with pytest.raises(ValueError, match="likelihood_weighting"):
        train_score(torch.randn(8, 2), VPSDE(), ScoreMLP(2, hidden=4), epochs=1,
                    preconditioning="edm", likelihood_weighting=True, verbose=False)  # fmt: skip


def test_observation_weight_drops_by_the_late_factor_after_the_switch():
    mask = torch.tensor([True, False, True])
    vals = torch.tensor([1.0, 0.0, -1.0])
    plain = ObservationGuidance(mask, vals, weight=5.0)
    late = ObservationGuidance(mask, vals, weight=5.0, t_switch=0.3, late_factor=0.1)
    x0 = torch.randn(4, 3)
    t = torch.tensor([0.1, 0.2, 0.5, 0.9])
    a, s = torch.ones(4, 1), 0.2 * torch.ones(4, 1)
    per = [float(plain.loss(x0[i : i + 1], t[i : i + 1], a[:1], s[:1])) for i in range(4)]
    want = 0.1 * (per[0] + per[1]) + per[2] + per[3]
    assert float(late.loss(x0, t, a, s)) == pytest.approx(want, rel=1e-6)


def test_residual_guidance_with_sigma_r_is_a_pseudo_observation_of_zero():
    def resid(x0):
        return x0[:, :2] - 1.0

    x0 = torch.randn(3, 4, dtype=torch.float64)
    t = torch.tensor([0.05, 0.1, 0.5], dtype=torch.float64)
    a = torch.tensor([[1.0], [0.9], [0.5]], dtype=torch.float64)
    s = torch.tensor([[0.1], [0.3], [0.8]], dtype=torch.float64)
    g = ResidualGuidance(resid, weight=2.0, t_start=0.2, sigma_r=0.5)
    sq = (resid(x0) ** 2).sum(-1)
    want = sum(float(sq[i]) / (0.25 + float(s[i] / a[i]) ** 2) for i in (0, 1))  # t < t_start
    assert float(g.loss(x0, t, a, s)) == pytest.approx(want, rel=1e-12)
    plain = ResidualGuidance(resid, weight=2.0, t_start=0.2)
    assert float(plain.loss(x0, t, a, s)) == pytest.approx(float(sq[0] + sq[1]), rel=1e-12)
    with pytest.raises(ValueError, match="sigma_r must be positive"):
        ResidualGuidance(resid, sigma_r=0.0)
