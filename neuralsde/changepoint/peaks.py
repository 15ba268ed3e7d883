"""Peak picking on a change score: by a penalty (threshold) or a known number of breakpoints."""

from __future__ import annotations

import numpy as np


def pick_peaks(
    score: np.ndarray,
    min_distance: int,
    pen: float | None = None,
    n_bkps: int | None = None,
) -> list[int]:
    """Greedy non-maximum suppression on ``score: (n,)`` (NaN = not a candidate).

    Take the highest remaining candidate, drop every candidate closer than ``min_distance``,
    repeat; stop when the best remaining score is ``<= pen`` or after ``n_bkps`` peaks.
    Returns the sorted peak indices. Exactly one of ``pen`` and ``n_bkps`` must be given.

    Example:
        >>> import numpy as np
        >>> pick_peaks(np.array([0, 1, 5, 1, 0, 0, 3, 0.0]), min_distance=2, pen=2.0)
        [2, 6]
        >>> pick_peaks(np.array([0, 1, 5, 1, 0, 0, 3, 0.0]), min_distance=2, n_bkps=1)
        [2]
    """
    if (pen is None) == (n_bkps is None):
        raise ValueError(f"give exactly one of pen and n_bkps; got pen={pen!r}, n_bkps={n_bkps!r}")
    if (
        isinstance(min_distance, bool)
        or not isinstance(min_distance, (int, np.integer))
        or min_distance < 1
    ):
        # 0 or less suppresses nothing (the loop would pick the same peak forever)
        raise ValueError(f"min_distance must be an integer >= 1; got {min_distance!r}")
    if pen is not None and not np.isfinite(pen):
        raise ValueError(f"pen must be a finite number; got {pen!r}")
    if n_bkps is not None and (
        isinstance(n_bkps, bool) or not isinstance(n_bkps, (int, np.integer)) or n_bkps < 0
    ):
        raise ValueError(f"n_bkps must be an integer >= 0; got {n_bkps!r}")
    s = np.asarray(score, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"score must be 1-D (n,); got shape {s.shape}")
    s = np.where(np.isnan(s), -np.inf, s)
    peaks: list[int] = []
    while True:
        if n_bkps is not None and len(peaks) == n_bkps:
            break
        i = int(np.argmax(s)) if s.size else 0
        if not s.size or not np.isfinite(s[i]):
            if n_bkps is not None:
                raise ValueError(
                    f"n_bkps={n_bkps} is more than the {len(peaks)} breakpoints that fit at a "
                    f"minimal distance of {min_distance} samples; expected n_bkps <= "
                    f"{len(peaks)}"
                )
            break
        if pen is not None and s[i] <= pen:
            break
        peaks.append(i)
        s[max(0, i - min_distance + 1) : i + min_distance] = -np.inf
    return sorted(peaks)
