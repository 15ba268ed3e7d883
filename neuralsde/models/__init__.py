"""Models: stable neural SDEs (LSDE / LNSDE / GSDE / naive), the Neural CDE baseline, heads.

The latent SDE model is here too; the estimators over these models are in ``neuralsde.estimators``.
"""

from neuralsde.models.heads import ClassificationHead, PathClassifier, PathRegressor, RegressionHead
from neuralsde.models.ncde import CDEFunc, NeuralCDE
from neuralsde.models.stable import (
    KINDS,
    MLP,
    GeometricDrift,
    LangevinDrift,
    LinearDiffusion,
    NaiveDiffusion,
    NaiveDrift,
    StableSDE,
    TimeDiffusion,
    TimeDrift,
    default_dt,
)

from .latent import LatentSDE

__all__ = [
    "CDEFunc",
    "ClassificationHead",
    "GeometricDrift",
    "KINDS",
    "LangevinDrift",
    "LinearDiffusion",
    "MLP",
    "NaiveDiffusion",
    "NaiveDrift",
    "NeuralCDE",
    "PathClassifier",
    "PathRegressor",
    "RegressionHead",
    "StableSDE",
    "TimeDiffusion",
    "TimeDrift",
    "default_dt",
    "LatentSDE",
]
