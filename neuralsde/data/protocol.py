"""The missing-rate robustness protocol of Oh, Lim & Kim (ICLR 2024).

Drop ``int(L * rate)`` points per channel of every series at random (seeded), then split the
series 70/15/15 into train/validation/test, stratified by label. Rates used in the paper:
0, 0.3, 0.5, 0.7; accuracy is reported over 5 seeds.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["drop_points", "stratified_split"]


def drop_points(
    values: torch.Tensor,
    rate: float,
    *,
    lengths: torch.Tensor | None = None,
    per_channel: bool = True,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """Set ``int(L_i * rate)`` randomly chosen time points of each series (and channel) to NaN.

    Args:
        values: ``(B, L, C)``; series ``i`` occupies its first ``lengths[i]`` points.
        rate: fraction in ``[0, 1)``.
        lengths: ``(B,)`` valid lengths (default: all ``L``).
        per_channel: draw the dropped positions independently for each channel (default), or
            drop the same time points in every channel (the reference implementation's choice).
        generator / seed: randomness; the same seed drops the same points.

    Returns:
        A copy of ``values`` with the dropped entries set to NaN. Positions are drawn among all
        ``L_i`` points, so on data that already has gaps some drops may hit existing NaNs.

    Example:
        >>> x = torch.zeros(2, 10, 3)
        >>> torch.isnan(drop_points(x, 0.3, seed=0)).sum(dim=1).tolist()
        [[3, 3, 3], [3, 3, 3]]
    """
    if not isinstance(values, torch.Tensor) or values.ndim != 3:
        shape = tuple(values.shape) if hasattr(values, "shape") else type(values).__name__
        raise ValueError(f"values must be a tensor of shape (B, L, C), got {shape}")
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"rate must lie in [0, 1), got {rate}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    batch, length, channels = values.shape
    lengths = torch.full((batch,), length) if lengths is None else lengths
    out = values.clone()
    for i in range(batch):
        n = int(lengths[i])
        k = int(n * rate)
        if k == 0:
            continue
        if per_channel:
            for c in range(channels):
                idx = torch.randperm(n, generator=generator)[:k]
                out[i, idx, c] = float("nan")
        else:
            idx = torch.randperm(n, generator=generator)[:k]
            out[i, idx, :] = float("nan")
    return out


def stratified_split(
    labels,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a train/validation/test split, stratified by ``labels`` when given.

    Args:
        labels: ``(B,)`` class labels, or an int ``B`` for an unstratified split of B items.
        fractions: train, validation, test fractions summing to 1.
        seed: random state (sklearn ``train_test_split``).

    Returns:
        Three sorted integer index arrays that partition ``range(B)``.

    Example:
        >>> tr, va, te = stratified_split(np.repeat([0, 1], 50), seed=1)
        >>> len(tr), len(va), len(te)
        (70, 15, 15)
    """
    from sklearn.model_selection import train_test_split

    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    if isinstance(labels, (int, np.integer)):
        n, strat = int(labels), None
    else:
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must have shape (B,), got {labels.shape}")
        n, strat = labels.shape[0], labels
    idx = np.arange(n)
    f_train, f_val, f_test = fractions
    train, rest = train_test_split(
        idx, train_size=f_train, random_state=seed, shuffle=True, stratify=strat
    )
    if f_val == 0 or f_test == 0:
        val, test = (rest[:0], rest) if f_val == 0 else (rest, rest[:0])
    else:
        val, test = train_test_split(
            rest,
            train_size=f_val / (f_val + f_test),
            random_state=seed,
            shuffle=True,
            stratify=None if strat is None else strat[rest],
        )
    return np.sort(train), np.sort(val), np.sort(test)
