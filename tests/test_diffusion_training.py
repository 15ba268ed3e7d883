"""Training: the denoising score matching loss is minimised by the exact score, networks
have the documented shapes, and train_score with EMA learns a usable score."""

import pytest
import torch

from neuralsde.diffusion import (
    EMA,
    VPSDE,
    GaussianMixture,
    ScoreMLP,
    ScoreModel,
    UNet,
    dsm_loss,
    mmd2,
    train_score,
)
from neuralsde.diffusion.sampling import sample

GM = GaussianMixture.default_2d()


@pytest.mark.parametrize("weighting", [False, True])
def test_dsm_loss_is_smaller_for_the_exact_score_than_for_perturbed_scores(weighting):
    sde = VPSDE()
    x0 = GM.sample(4000, torch.Generator().manual_seed(0))
    exact = GM.score_fn(sde)

    def loss(fn):
        return float(
            dsm_loss(
                fn,
                sde,
                x0,
                likelihood_weighting=weighting,
                generator=torch.Generator().manual_seed(1),
            )
        )

    base = loss(exact)
    for scale in (0.8, 1.2):
        assert loss(lambda x, t, s=scale: s * exact(x, t)) > base


def test_unet_and_mlp_shapes():
    assert UNet(2, base=8, mults=(1, 2))(torch.zeros(2, 2, 16, 16), torch.rand(2)).shape == (
        2,
        2,
        16,
        16,
    )
    assert ScoreMLP((8, 2), hidden=16)(torch.zeros(3, 8, 2), torch.rand(3)).shape == (3, 8, 2)
    with pytest.raises(ValueError, match="divisible by 2"):
        UNet(2, base=8, mults=(1, 2))(torch.zeros(1, 2, 15, 16), torch.rand(1))


def test_ema_tracks_the_average_of_the_weights():
    net = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(net, decay=0.5)
    with torch.no_grad():
        net.weight.fill_(1.0)
        ema.shadow.weight.fill_(0.0)
    ema.update(net)
    assert float(ema.shadow.weight) == pytest.approx(0.5)


@pytest.mark.slow
def test_train_score_on_a_gaussian_mixture_samples_close_to_the_target():
    torch.manual_seed(0)
    sde = VPSDE()
    data = GM.sample(8000, torch.Generator().manual_seed(0)).float()
    model, hist = train_score(
        data,
        sde,
        ScoreMLP(2, hidden=128, depth=3),
        epochs=30,
        batch_size=256,
        lr=2e-3,
        verbose=False,
        generator=torch.Generator().manual_seed(0),
    )
    assert isinstance(model, ScoreModel)
    assert hist.train_loss[-1] < hist.train_loss[0]
    with torch.no_grad():
        x = sample(
            model,
            sde,
            (1000, 2),
            method="dpmpp_2m",
            steps=20,
            generator=torch.Generator().manual_seed(1),
        )
    target = GM.sample(1000, torch.Generator().manual_seed(2))
    far = GM.sample(1000, torch.Generator().manual_seed(3)) * 1.5
    assert float(mmd2(x, target)) < 0.25 * float(mmd2(far, target))
