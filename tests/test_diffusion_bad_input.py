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
    with pytest.raises(ValueError, match=rf"steps must be a positive integer; got {steps}"):
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


# --- issue 19, item 5: the diffusion input checks, each reproducing the reported case -----
def _bad_shape_score(x, t):
    return -x[:, :1]  # (B, 1) for (B, 2) data: used to broadcast silently


@pytest.mark.parametrize("method", ["euler", "dpmpp_2m", "adaptive"])
def test_score_of_the_wrong_shape_is_named_in_sample(method):
    with pytest.raises(ValueError, match=r"score_model returned shape \(4, 1\) for x of shape"):
        sample(
            _bad_shape_score, SDE_, (4, 2), method=method, steps=None if method == "adaptive" else 5
        )


def test_score_of_the_wrong_shape_is_named_in_log_likelihood():
    from neuralsde.diffusion.likelihood import log_likelihood

    with pytest.raises(ValueError, match=r"score_model returned shape \(4, 1\)"):
        log_likelihood(_bad_shape_score, SDE_, torch.zeros(4, 2), steps=5)


def test_a_score_without_a_gradient_path_is_refused_by_log_likelihood():
    """It used to return a value about 5 nats per dimension off on the 2-D mixture."""
    from neuralsde.diffusion.likelihood import log_likelihood

    def detached(x, t):
        return SCORE(x, t).detach()

    with pytest.raises(ValueError, match="score_model must be differentiable in x"):
        log_likelihood(detached, SDE_, torch.zeros(4, 2), steps=5)


@pytest.mark.parametrize("steps,exc,match", [
    (0, ValueError, "steps must be a positive integer; got 0"),
    (2.5, TypeError, "steps must be a positive integer; got float"),
    (True, TypeError, "steps must be a positive integer; got bool"),
])  # fmt: skip
def test_log_likelihood_validates_steps_as_sample_does(steps, exc, match):
    from neuralsde.diffusion.likelihood import log_likelihood

    with pytest.raises(exc, match=match):
        log_likelihood(SCORE, SDE_, torch.zeros(4, 2), steps=steps)
    with pytest.raises(exc, match=match):
        sample(SCORE, SDE_, (4, 2), method="euler", steps=steps)


def test_log_likelihood_names_x_and_eps():
    from neuralsde.diffusion.likelihood import log_likelihood

    with pytest.raises(ValueError, match="x must be finite"):
        log_likelihood(SCORE, SDE_, torch.tensor([[0.0, float("nan")]]), steps=5)
    with pytest.raises(ValueError, match=r"eps must lie in \[0, T=1\)"):
        log_likelihood(SCORE, SDE_, torch.zeros(2, 2), steps=5, eps=1.5)
    with pytest.raises(ValueError, match=r"eps must lie in \[0, T=1\)"):
        sample(SCORE, SDE_, (2, 2), eps=-0.1)


@pytest.mark.parametrize("cls", [Inpaint, ObservationGuidance])
def test_nan_observations_and_fractional_masks_are_refused(cls):
    with pytest.raises(ValueError, match=r"values must be finite where mask is True; got nan"):
        cls(torch.tensor([True, False]), torch.tensor([float("nan"), 0.0]))
    with pytest.raises(ValueError, match=r"mask must be boolean \(or 0/1\); got the value 0.3"):
        cls(torch.tensor([0.3, 1.0]), torch.tensor([1.0, 0.0]))
    cls(torch.tensor([1.0, 0.0]), torch.tensor([1.0, float("nan")]))  # NaN off the mask: fine


def test_negative_snr_and_generator_of_the_wrong_type_are_refused():
    with pytest.raises(ValueError, match="snr must be positive and finite; got -0.1"):
        sample(SCORE, SDE_, (4, 2), method="pc", steps=5, snr=-0.1)
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None; got int"):
        sample(SCORE, SDE_, (4, 2), method="euler", steps=5, generator=5)


def test_a_huge_score_raises_a_divergence_error():
    """Inside solve the loop's check catches it; at the final denoising step (outside solve)
    a non-finite score used to come back as non-finite samples."""
    from neuralsde.core.loop import DivergenceError

    def huge(x, t):
        return (x + 1.0) * 1e300  # inf in float32

    def huge_at_the_end(x, t):
        return torch.where(t[:, None] <= SDE_.eps, torch.full_like(x, float("inf")), -x)

    with pytest.raises(DivergenceError):
        sample(huge, SDE_, (4, 2), method="dpmpp_2m", steps=5)
    with pytest.raises(DivergenceError, match="t=0.001"):
        sample(huge_at_the_end, SDE_, (4, 2), method="dpmpp_2m", steps=5)
