"""Score-based diffusion on the shared solver core: forward SDEs, score networks, training,
samplers (all through ``neuralsde.solve``), likelihoods, guidance, trajectories and fields."""

# registers the samplers that are core methods (ddim, dpmpp_*, heun_edm, restart, er_sde, sa_solver)
from . import edm, er_sde, exponential, sa_solver  # noqa: F401
from .checkpoint import load_checkpoint, net_from_config, save_checkpoint
from .density import superpose
from .editing import edit
from .fields import DarcyFields
from .flows import FlowModel, Interpolant, InterpolantSDE, sample_flow, train_velocity
from .guidance import Inpaint, ObservationGuidance, ResidualGuidance, guided_score
from .inversion import Inversion, invert
from .likelihood import log_likelihood
from .losses import dsm_loss, edm_loss
from .metrics import mmd2, noise_floor, sliced_wasserstein
from .nets import ScoreMLP, TimeEmbedding
from .restoration import RestorationModel, restore, train_restorer
from .reverse import PredictorCorrectorSDE, ReverseSDE, tweedie
from .sampling import sample
from .schedules import karras, logsnr, sigmas, uniform
from .score import ScoreModel
from .sdes import VESDE, VPSDE, ForwardSDE, MeanRevertingSDE, SubVPSDE, sde_from_config
from .toy import GaussianMixture, checkerboard, two_moons
from .training import EMA, train_score
from .trajectories import forecast, impute
from .unet import UNet

__all__ = [
    "EMA",
    "Inversion",
    "MeanRevertingSDE",
    "RestorationModel",
    "edit",
    "invert",
    "restore",
    "train_restorer",
    "FlowModel",
    "Interpolant",
    "InterpolantSDE",
    "sample_flow",
    "superpose",
    "train_velocity",
    "DarcyFields",
    "Inpaint",
    "ObservationGuidance",
    "ResidualGuidance",
    "forecast",
    "guided_score",
    "karras",
    "logsnr",
    "sigmas",
    "uniform",
    "impute",
    "log_likelihood",
    "sample",
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
    "edm_loss",
    "load_checkpoint",
    "mmd2",
    "net_from_config",
    "noise_floor",
    "save_checkpoint",
    "sde_from_config",
    "sliced_wasserstein",
    "train_score",
    "tweedie",
    "two_moons",
]
