"""Datasets: seeded synthetic SDE generators and the real datasets shipped with neuralsde.

Every function returns an ``xarray.Dataset`` with ``values`` over
``("series", "time", "channel")``, real coordinates, labels where they exist and ``attrs``
naming the source and licence. Turn one into a batch with
``neuralsde.data.IrregularBatch.from_xarray(ds)``.
"""

from .diffusions import simulate_gbm, simulate_ou
from .fractional import davies_harte_fgn, fbm_covariance, sample_fbm, simulate_fbm, simulate_fou
from .nonlinear import simulate_double_well, simulate_lorenz
from .real import (
    UEA_DATASETS,
    load_arrow_head,
    load_basic_motions,
    load_elnino,
    load_gunpoint_segmentation,
    load_mauna_loa_co2,
    load_nile,
    load_uea,
    load_uk_driver_deaths,
)
from .regimes import simulate_regime_switching
from .tsfile import read_ts

__all__ = [
    "davies_harte_fgn",
    "fbm_covariance",
    "load_arrow_head",
    "load_basic_motions",
    "load_gunpoint_segmentation",
    "load_elnino",
    "load_mauna_loa_co2",
    "load_nile",
    "load_uea",
    "load_uk_driver_deaths",
    "read_ts",
    "UEA_DATASETS",
    "sample_fbm",
    "simulate_double_well",
    "simulate_fbm",
    "simulate_fou",
    "simulate_gbm",
    "simulate_lorenz",
    "simulate_ou",
    "simulate_regime_switching",
]
