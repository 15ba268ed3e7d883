"""Change-point detection by likelihood ratios of latent neural SDEs fitted on windows."""

from neuralsde.changepoint.dynamics import WindowSDE
from neuralsde.changepoint.likelihood import euler_log_density, girsanov_log_ratio
from neuralsde.changepoint.metrics import covering, f1_score
from neuralsde.changepoint.peaks import pick_peaks

__all__ = [
    "WindowSDE",
    "covering",
    "euler_log_density",
    "f1_score",
    "girsanov_log_ratio",
    "pick_peaks",
]
