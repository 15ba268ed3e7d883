"""The data layer: validate irregular, gappy series and turn them into batches and paths.

``IrregularBatch`` is the container every model reads; ``validation`` holds the shared input
checks; ``interpolation`` builds torchcde control paths; ``signatures`` computes
(log-)signatures; ``protocol`` implements the missing-rate robustness protocol.
"""

from .batch import IrregularBatch
from .interpolation import control_path, fill_missing, union_grid
from .protocol import drop_points, stratified_split
from .scaling import Scaler
from .signatures import logsignature, signature, windowed_logsignature
from .timeaxis import TimeEncoding, decode_times, encode_times

__all__ = [
    "IrregularBatch",
    "Scaler",
    "TimeEncoding",
    "control_path",
    "decode_times",
    "drop_points",
    "encode_times",
    "fill_missing",
    "logsignature",
    "signature",
    "stratified_split",
    "union_grid",
    "windowed_logsignature",
]
