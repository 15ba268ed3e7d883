"""Score-based diffusion on the shared solver core: forward SDEs, score networks, training,
samplers (all through ``neuralsde.solve``), likelihoods, guidance, trajectories and fields."""

from .checkpoint import load_checkpoint, net_from_config, save_checkpoint
from .losses import dsm_loss
from .metrics import mmd2, noise_floor, sliced_wasserstein
from .nets import ScoreMLP, TimeEmbedding
from .reverse import PredictorCorrectorSDE, ReverseSDE
from .score import ScoreModel
from .sdes import VESDE, VPSDE, ForwardSDE, SubVPSDE, sde_from_config
from .toy import GaussianMixture, checkerboard, two_moons
from .training import EMA, train_score
from .unet import UNet

__all__ = [
    "EMA",
    "VESDE",
    "VPSDE",
    "ForwardSDE",
    "GaussianMixture",
    "PredictorCorrectorSDE",
    "ReverseSDE",
    "ScoreMLP",
    "ScoreModel",
    "SubVPSDE",
    "TimeEmbedding",
    "UNet",
    "checkerboard",
    "dsm_loss",
    "load_checkpoint",
    "mmd2",
    "net_from_config",
    "noise_floor",
    "save_checkpoint",
    "sde_from_config",
    "sliced_wasserstein",
    "train_score",
    "two_moons",
]
