"""Shared input validators for irregular time series.

Every public entry point of neuralsde (batches, estimators, loaders) checks its inputs with
these functions, so the same mistake always gives the same message. Each raises ``TypeError``
(wrong type or dtype) or ``ValueError`` (wrong shape or value) whose message names the
argument, the offending series / index, what was seen and what was expected. NaN is allowed
in values and means "missing"; it is never allowed in times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "as_float_tensor",
    "as_numeric_array",
    "check_finite_times",
    "check_has_observation",
    "check_lengths_match",
    "check_no_inf",
    "check_numeric",
    "check_rank",
    "check_strictly_increasing",
    "label",
    "narrow",
    "validate_padded",
    "validate_series",
]


def label(name: str, series: int | str | None = None) -> str:
    """How an argument (and optionally one of its series) is named in messages: ``values[3]``."""
    return name if series is None else f"{name}[{series}]"


def check_numeric(x, name: str, series: int | str | None = None) -> None:
    """Raise ``TypeError`` unless ``x`` has a real numeric (integer, float or bool) dtype.

    Example:
        >>> check_numeric(np.array([1.0, 2.0]), "values")
        >>> check_numeric(np.array(["a"]), "values")
        Traceback (most recent call last):
        ...
        TypeError: values must have a numeric dtype (int, float or bool), got dtype <U1
    """
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(
                f"{label(name, series)} must have a real numeric dtype, got dtype {x.dtype}"
            )
        return
    dtype = np.asarray(x).dtype
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or np.issubdtype(
        dtype, np.complexfloating
    ):
        raise TypeError(
            f"{label(name, series)} must have a numeric dtype (int, float or bool), "
            f"got dtype {dtype}"
        )


def as_numeric_array(x, name: str, series: int | str | None = None) -> np.ndarray:
    """Convert ``x`` (array-like or tensor) to a float64 numpy array after :func:`check_numeric`.

    Object arrays of numbers (for example a pandas column holding ``None``) are converted when
    every element is a number or None; anything else raises ``TypeError`` naming ``name``.
    """
    if isinstance(x, torch.Tensor):
        check_numeric(x, name, series)
        x = x.detach().cpu()
        if not x.is_floating_point() and x.dtype != torch.bool:
            _check_exact_integers(x.numpy(), name, series)
        return x.to(torch.float64).numpy()
    try:
        arr = np.asarray(x)
    except ValueError as err:  # ragged nested lists
        raise ValueError(
            f"{label(name, series)} could not be read as a rectangular array: {err}"
        ) from None
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{label(name, series)} must have a numeric dtype (int, float or bool), "
                "got dtype object holding non-numeric entries"
            ) from None
    check_numeric(arr, name, series)
    _check_exact_integers(arr, name, series)
    return arr.astype(np.float64)


_EXACT_INT = 2**53  # float64 holds every integer up to this exactly


def _check_exact_integers(arr: np.ndarray, name: str, series) -> None:
    """Integers beyond 2**53 would be rounded by the cast to float64: refuse them."""
    if arr.dtype.kind in "iu" and arr.size:
        big = arr > _EXACT_INT
        if arr.dtype.kind == "i":
            big |= arr < -_EXACT_INT
        if np.any(big):
            idx = tuple(int(i) for i in np.argwhere(big)[0])
            raise ValueError(
                f"{label(name, series)} holds the integer {arr[idx]} at index {idx}, beyond "
                f"2**53, where float64 cannot hold every integer (it would be rounded); "
                f"subtract an offset or rescale before passing it"
            )


def narrow(x: torch.Tensor, dtype: torch.dtype, name: str, series=None) -> torch.Tensor:
    """``x`` cast to ``dtype``, refusing a cast that turns a finite value into inf (``1e300``
    as float32) and so would lose it.

    Example:
        >>> try:
        ...     narrow(torch.tensor([1e300], dtype=torch.float64), torch.float32, "values")
        ... except ValueError as err:
        ...     print(str(err)[:54])
        values holds 1e+300 at index (0,), beyond the range of
    """
    out = x.to(dtype)
    if out.is_floating_point() and x.is_floating_point() and out.dtype != x.dtype:
        lost = torch.isinf(out) & torch.isfinite(x)
        if bool(lost.any()):
            idx = tuple(int(i) for i in torch.nonzero(lost)[0])
            raise ValueError(
                f"{label(name, series)} holds {float(x[idx]):g} at index {idx}, beyond the "
                f"range of {dtype} (largest {torch.finfo(dtype).max}); pass "
                f"dtype=torch.float64 or rescale the values"
            )
    return out


def as_float_tensor(x, name: str, dtype: torch.dtype | None, min_dim: int = 1) -> torch.Tensor:
    """A numeric array-like or tensor ``x`` as a finite tensor of ``dtype`` with at least
    ``min_dim`` dimensions (the conversion every tensor-valued entry point shares); with
    ``min_dim >= 2`` (samples ``(n, *shape)``) it must hold at least one sample. ``dtype=None``
    keeps a floating tensor's dtype (anything else becomes the default dtype).

    Example:
        >>> as_float_tensor(np.ones((3, 2)), "data", torch.float32, 2).dtype
        torch.float32
    """
    if dtype is None:  # a floating tensor keeps its dtype; anything else takes the default
        float_tensor = isinstance(x, torch.Tensor) and x.is_floating_point()
        dtype = x.dtype if float_tensor else torch.get_default_dtype()
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(as_numeric_array(x, name))
    check_numeric(x, name)
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimensions (n, *shape); got shape "
            f"{tuple(x.shape)}"
        )
    if min_dim >= 2 and (x.shape[0] == 0 or x.numel() == 0):
        raise ValueError(f"{name} holds no samples: shape {tuple(x.shape)}")
    x = narrow(x, dtype, name)
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"{name} must be finite; got {float(x[idx])} at index {idx}")
    return x


def check_rank(x, name: str, ranks: int | Sequence[int], series: int | str | None = None) -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is one of ``ranks``.

    Example:
        >>> check_rank(np.zeros((3, 2)), "values", (1, 2))
    """
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    ndim = len(x.shape)
    if ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(
            f"{label(name, series)} must have rank {want}, got rank {ndim} with shape "
            f"{tuple(x.shape)}"
        )


def check_no_inf(x, name: str, series: int | str | None = None) -> None:
    """Raise ``ValueError`` if ``x`` contains +-inf, naming the first offending index.

    NaN is allowed (it means missing); infinities are not.

    Example:
        >>> check_no_inf(np.array([1.0, np.nan]), "values")
        >>> check_no_inf(np.array([1.0, np.inf]), "values", series=2)
        Traceback (most recent call last):
        ...
        ValueError: values[2] contains inf at index (1,) (value inf); use NaN for missing values
    """
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    bad = np.isinf(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{label(name, series)} contains inf at index {idx} (value {arr[idx]}); "
            "use NaN for missing values"
        )


def check_finite_times(t, name: str, series: int | str | None = None) -> None:
    """Raise ``ValueError`` if the times ``t`` contain NaN or inf, naming the first index."""
    arr = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise ValueError(
            f"{label(name, series)} must be finite, got {arr[i]} at index {i}; "
            "times cannot be missing (mark missing values with NaN in values instead)"
        )


def check_strictly_increasing(t, name: str, series: int | str | None = None) -> None:
    """Raise ``ValueError`` unless the 1-D times ``t`` strictly increase.

    Example:
        >>> check_strictly_increasing([0.0, 1.0, 2.5], "times")
        >>> check_strictly_increasing([0.0, 1.0, 1.0], "times", series=4)
        Traceback (most recent call last):
        ...
        ValueError: times[4] must be strictly increasing, but times[4][2] = 1.0 is not greater \
than times[4][1] = 1.0
    """
    arr = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    check_finite_times(arr, name, series)
    if arr.size < 2:
        return
    bad = np.diff(arr) <= 0
    if bad.any():
        i = int(np.argmax(bad)) + 1
        where = label(name, series)
        raise ValueError(
            f"{where} must be strictly increasing, but {where}[{i}] = {arr[i]} is not greater "
            f"than {where}[{i - 1}] = {arr[i - 1]}"
        )


def check_lengths_match(
    times, values, times_name: str, values_name: str, series: int | str | None = None
) -> None:
    """Raise ``ValueError`` unless ``len(times) == len(values)`` (one value row per time)."""
    if len(times) != len(values):
        raise ValueError(
            f"{label(values_name, series)} has {len(values)} time points but "
            f"{label(times_name, series)} has {len(times)}; they must match"
        )


def check_has_observation(values, name: str, series: int | str | None = None) -> None:
    """Raise ``ValueError`` if ``values`` (one series) holds no observed (non-NaN) value."""
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if arr.size == 0 or np.isnan(arr).all():
        raise ValueError(
            f"{label(name, series)} has no observed value (every entry is NaN or the series is "
            "empty); each series needs at least one observation"
        )


def validate_series(
    times,
    values,
    *,
    times_name: str = "times",
    values_name: str = "values",
    series_names: Sequence | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validate ragged series and return them as float64 numpy arrays.

    Args:
        times: a sequence of ``B`` 1-D arrays ``(L_i,)``, or one array ``(B, L)`` / ``(L,)``.
        values: a sequence of ``B`` arrays ``(L_i, C)`` or ``(L_i,)``, or one array
            ``(B, L, C)`` / ``(B, L)`` / ``(L,)`` (a 1-D array is one univariate series).
        times_name / values_name: how the arguments are named in error messages.
        series_names: how series are named in messages (default: their position 0..B-1).

    Returns:
        ``(times, values)``: lists of ``(L_i,)`` and ``(L_i, C)`` float64 arrays.

    Checks, in order, for every series ``i``: numeric dtype (``TypeError``), ranks, matching
    lengths, finite strictly increasing times, no inf in values, at least one observation,
    the same number of channels ``C`` in every series.

    Example:
        >>> ts, xs = validate_series([[0.0, 1.0], [0.0, 0.5, 2.0]],
        ...                          [[1.0, 2.0], [3.0, np.nan, 1.0]])
        >>> [x.shape for x in xs]
        [(2, 1), (3, 1)]
    """
    single = _is_single_series(times)
    t_list = [times] if single else _split_series(times, times_name, stacked_ranks=(2,))
    v_list = [values] if single else _split_series(values, values_name, stacked_ranks=(2, 3))
    if len(t_list) != len(v_list):
        raise ValueError(
            f"{values_name} holds {len(v_list)} series but {times_name} holds {len(t_list)}; "
            "they must match"
        )
    if not t_list:
        raise ValueError(f"{values_name} must hold at least one series, got none")
    out_t, out_v = [], []
    n_channels = None
    for pos, (t, v) in enumerate(zip(t_list, v_list, strict=True)):
        i = pos if series_names is None else _series_name(series_names[pos])
        t = as_numeric_array(t, times_name, i)
        v = as_numeric_array(v, values_name, i)
        check_rank(t, times_name, 1, i)
        check_rank(v, values_name, (1, 2), i)
        if v.ndim == 1:
            v = v[:, None]
        check_lengths_match(t, v, times_name, values_name, i)
        check_strictly_increasing(t, times_name, i)
        check_no_inf(v, values_name, i)
        check_has_observation(v, values_name, i)
        if n_channels is None:
            n_channels = v.shape[1]
        elif v.shape[1] != n_channels:
            raise ValueError(
                f"{label(values_name, i)} has {v.shape[1]} channels but the first series "
                f"has {n_channels}; every series must have the same channels"
            )
        out_t.append(t)
        out_v.append(v)
    return out_t, out_v


def validate_padded(
    times: torch.Tensor,
    values: torch.Tensor,
    lengths: torch.Tensor | None = None,
    *,
    times_name: str = "times",
    values_name: str = "values",
) -> None:
    """Validate a padded batch ``times: (B, L)``, ``values: (B, L, C)``, ``lengths: (B,)``.

    Entries past ``lengths[i]`` are padding and are not checked. This is the check estimators
    run on tensors handed to them directly.

    Example:
        >>> validate_padded(torch.tensor([[0.0, 1.0]]), torch.tensor([[[1.0], [float("nan")]]]))
    """
    for x, nm in ((times, times_name), (values, values_name)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{nm} must be a torch.Tensor, got {type(x).__name__}")
        check_numeric(x, nm)
    check_rank(times, times_name, 2)
    check_rank(values, values_name, 3)
    if values.shape[:2] != times.shape:
        raise ValueError(
            f"{values_name} has shape {tuple(values.shape)} but {times_name} has shape "
            f"{tuple(times.shape)}; expected {values_name} of shape (B, L, C) = "
            f"({times.shape[0]}, {times.shape[1]}, C)"
        )
    if lengths is None:
        lengths = torch.full((times.shape[0],), times.shape[1], dtype=torch.long)
    if lengths.shape != (times.shape[0],):
        raise ValueError(f"lengths must have shape ({times.shape[0]},), got {tuple(lengths.shape)}")
    for i in range(times.shape[0]):
        n = int(lengths[i])
        check_strictly_increasing(times[i, :n], times_name, i)
        check_no_inf(values[i, :n], values_name, i)
        check_has_observation(values[i, :n], values_name, i)


def _series_name(sid) -> str:
    sid = sid.item() if isinstance(sid, np.generic) else sid
    return repr(sid) if isinstance(sid, str) else str(sid)


def _is_single_series(times) -> bool:
    """True when ``times`` is one flat series ``(L,)`` rather than ``B`` series."""
    if isinstance(times, (np.ndarray, torch.Tensor)):
        return times.ndim <= 1
    if isinstance(times, Sequence) and not isinstance(times, (str, bytes)):
        return all(np.isscalar(e) or e is None for e in times)
    return False


def _split_series(x, name: str, stacked_ranks: tuple[int, ...]) -> list:
    """Split ``x`` (a stacked array or a sequence of per-series arrays) into a list of series."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        if x.ndim not in stacked_ranks:
            want = " or ".join(str(r) for r in stacked_ranks)
            raise ValueError(
                f"{name} must have rank {want} when stacking several series, or be a list of "
                f"series; got rank {x.ndim} with shape {tuple(x.shape)}"
            )
        return list(x)
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"{name} must be an array or a sequence of arrays, got {type(x).__name__}")
    return list(x)
