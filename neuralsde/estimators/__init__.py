"""scikit-learn estimators over neuralsde models, on one contract (:mod:`.base`).

``SDEClassifier`` / ``SDERegressor`` (stable neural SDEs and the Neural CDE baseline),
``LatentSDEForecaster`` (generative latent SDE: interpolation, forecasts, samples) and
``LatentSDEChangeDetector`` (change points from latent SDE likelihood ratios). All read user
input through :meth:`neuralsde.data.IrregularBatch.coerce`, scale it with one
:class:`~neuralsde.data.scaling.Scaler`, and save as safetensors weights + a JSON config.
"""

from neuralsde.estimators.base import NeuralSDEEstimator
from neuralsde.estimators.changepoint import LatentSDEChangeDetector
from neuralsde.estimators.latent import LatentSDEForecaster
from neuralsde.estimators.stable import SCHEDULES, SDEClassifier, SDERegressor

__all__ = [
    "SCHEDULES",
    "LatentSDEChangeDetector",
    "LatentSDEForecaster",
    "NeuralSDEEstimator",
    "SDEClassifier",
    "SDERegressor",
]
