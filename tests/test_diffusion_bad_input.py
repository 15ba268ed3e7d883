"""Bad input gets a clear error naming what was seen and what was expected."""

import pytest
import torch

from neuralsde.diffusion import VPSDE, GaussianMixture, ScoreMLP, ScoreModel
from neuralsde.diffusion.checkpoint import load_checkpoint, save_checkpoint
from neuralsde.diffusion.guidance import Inpaint, ObservationGuidance
from neuralsde.diffusion.sampling import sample

SDE_ = VPSDE()
SCORE = GaussianMixture.default_2d().score_fn(SDE_)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match=r"unknown method 'rk45'.*euler"):
        sample(SCORE, SDE_, (4, 2), method="rk45")


@pytest.mark.parametrize("steps", [0, -3])
def test_steps_below_one(steps):
    with pytest.raises(ValueError, match=rf"steps must be >= 1; got {steps}"):
        sample(SCORE, SDE_, (4, 2), method="euler", steps=steps)


def test_steps_not_an_integer():
    with pytest.raises(TypeError, match="steps must be a positive integer; got float"):
        sample(SCORE, SDE_, (4, 2), method="dpmpp_2m", steps=2.5)


@pytest.mark.parametrize("cls", [Inpaint, ObservationGuidance])
def test_observation_mask_of_wrong_shape(cls):
    g = cls(torch.ones(3, dtype=torch.bool), torch.zeros(3))
    with pytest.raises(ValueError, match=r"mask of shape \(3,\) does not match the sample shape"):
        sample(SCORE, SDE_, (4, 2), method="dpmpp_2m", steps=5, guidance=g)


def test_mask_and_values_must_agree():
    with pytest.raises(ValueError, match=r"mask and values must have the same shape"):
        Inpaint(torch.ones(2, dtype=torch.bool), torch.zeros(3))


def test_score_model_must_be_callable():
    with pytest.raises(TypeError, match="score_model must be a callable"):
        sample(3.0, SDE_, (4, 2))


def test_checkpoint_with_mismatched_config(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, ScoreModel(ScoreMLP(2, hidden=8), SDE_), {"resolution": 32})
    with pytest.raises(ValueError, match=r"meta\.resolution: the file has 32, expected 64"):
        load_checkpoint(path, expected={"meta": {"resolution": 64}})
    with pytest.raises(ValueError, match=r"sde\.beta_max: the file has 20\.0, expected 10\.0"):
        load_checkpoint(path, expected={"sde": {"beta_max": 10.0}})
    with pytest.raises(ValueError, match=r"net\.hidden: the file has 8, expected 16"):
        load_checkpoint(path, expected={"net": {"hidden": 16}})


def test_checkpoint_round_trip_gives_the_same_scores(tmp_path):
    path = tmp_path / "m.pt"
    model = ScoreModel(ScoreMLP(2, hidden=8), SDE_)
    save_checkpoint(path, model)
    loaded, _ = load_checkpoint(path, expected={"net": {"kind": "mlp", "hidden": 8}})
    x, t = torch.randn(5, 2), torch.rand(5)
    torch.testing.assert_close(loaded(x, t), model(x, t))


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": 1}, path)
    with pytest.raises(ValueError, match="is not a neuralsde diffusion checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"beta_min": 5.0, "beta_max": 1.0}, "need 0 < beta_min < beta_max"),
        ({"eps": 2.0}, r"eps must lie in \[0, T=1.0\)"),
    ],
)
def test_bad_sde_parameters(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        VPSDE(**kwargs)
