"""Fuzzing the data layer: every observed value and time stamp comes back exactly from
``to_xarray()``, or the input is refused with a message naming it."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralsde.data import IrregularBatch

from .harness import case, examples

NAN = float("nan")


@st.composite
def numeric_series(draw):
    n_series = draw(st.integers(1, 3))
    base = draw(st.sampled_from([0.0, 1.6e9, -5.0, 1e12, 3.5]))
    value_dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.int32]))
    big = draw(st.sampled_from([1.0, 1.0, 1e30, 2.0**60]))
    times, values = [], []
    for _ in range(n_series):
        n = draw(st.integers(1, 5))
        gaps = draw(st.lists(st.sampled_from([1e-3, 0.5, 1.0, 10.0, 3600.0, 1e4]),
                             min_size=n, max_size=n))  # fmt: skip
        times.append(base + np.cumsum(gaps))
        v = np.asarray(draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n))) * big
        if value_dtype in (np.int64, np.int32):
            v = np.clip(v, np.iinfo(value_dtype).min // 2, np.iinfo(value_dtype).max // 2)
        v = v.astype(value_dtype)
        if n > 1 and np.issubdtype(value_dtype, np.floating) and draw(st.booleans()):
            v[draw(st.integers(0, n - 1))] = NAN
        values.append(v)
    return times, values


def _observed(times, values):
    """{(series, time): value} of every observed value, in float64."""
    return {(i, float(t)): float(x) for i, (ts, xs) in enumerate(zip(times, values, strict=True))
            for t, x in zip(ts, np.asarray(xs, dtype=np.float64), strict=True)
            if not np.isnan(x)}  # fmt: skip


def _round_trip(da):
    out = {}
    t = da["time"].values
    arr = da.transpose("series", "time", ...).values.reshape(da.sizes["series"], len(t), -1)
    for i in range(arr.shape[0]):
        for j, tj in enumerate(t):
            if not np.isnan(arr[i, j, 0]):
                out[(i, tj.item() if hasattr(tj, "item") else tj)] = float(arr[i, j, 0])
    return out


@settings(max_examples=examples(60))
@given(data=numeric_series(), dtype=st.sampled_from([None, None, torch.float32, torch.float64]))
def test_numeric_round_trip(data, dtype):
    times, values = data

    def call():
        return IrregularBatch.from_arrays(times, values, dtype=dtype).to_xarray()

    def check(da):
        got, want = _round_trip(da), _observed(times, values)
        if dtype is torch.float32 or (dtype is None and values[0].dtype == np.float32):
            want = {k: float(np.float32(v)) for k, v in want.items()}
        assert got == want, (
            f"round trip lost values: {sorted(set(want.items()) ^ set(got.items()))[:3]}"
        )

    case("data.from_arrays", call, ("times", "values", "dtype"), check)


@settings(max_examples=examples(40))
@given(
    unit=st.sampled_from(["ns", "us", "s", "h", "D"]),
    span=st.sampled_from([10, 10**6, 10**12, 10**15, 10**17]),
    n=st.integers(1, 6),
    time_unit=st.sampled_from([None, None, "s", "ns", "bogus"]),
    seed=st.integers(0, 2**16),
)
def test_datetime_round_trip(unit, span, n, time_unit, seed):
    rng = np.random.default_rng(seed)
    offsets = np.unique(rng.integers(0, span, size=n))
    origin = np.datetime64("2001-02-03T04:05:06", unit)
    stamps = origin + offsets.astype(f"timedelta64[{unit}]")
    values = rng.normal(size=len(stamps))

    def call():
        return IrregularBatch.from_arrays([stamps], [values], time_unit=time_unit).to_xarray()

    def check(da):
        back = da["time"].values.astype(stamps.dtype)
        if time_unit is None or np.all(stamps == stamps.astype(f"datetime64[{time_unit}]")):
            assert np.array_equal(back, stamps), f"stamps changed: {stamps[:3]} -> {back[:3]}"
        assert np.array_equal(da.values.reshape(-1), values), "values changed"

    case("data.datetimes", call, ("times", "time_unit", "t "), check)


garbage = st.recursive(
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5),
              st.text(max_size=2), st.booleans(), st.complex_numbers(max_magnitude=2)),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@st.composite
def array_input(draw):
    kind = draw(st.sampled_from(["nested", "array", "tensor", "empty", "pair", "pandas"]))
    if kind == "nested":
        return draw(garbage)
    shape = draw(st.sampled_from([(2, 3, 1), (2, 3), (3,), (0, 3, 1), (2, 0, 2), (1, 1, 1),
                                  (2, 2, 2, 2)]))  # fmt: skip
    dtype = draw(st.sampled_from(["float64", "float32", "int64", "bool", "complex128",
                                  "U1", "object", "datetime64[s]", "float16"]))  # fmt: skip
    arr = np.zeros(shape, dtype=dtype) if dtype != "U1" else np.full(shape, "a")
    if arr.dtype.kind == "f" and arr.size and draw(st.booleans()):
        arr.flat[0] = draw(st.sampled_from([np.nan, np.inf, 1e300]))
    if kind == "array":
        return arr
    if kind == "tensor":
        return torch.as_tensor(arr) if arr.dtype.kind in "fib" else arr
    if kind == "empty":
        return draw(st.sampled_from([[], (), np.array([]), torch.zeros(0)]))
    if kind == "pair":
        return (np.arange(3.0)[:: draw(st.sampled_from([1, -1]))], arr.reshape(-1)[:3])
    import pandas as pd

    frame = pd.DataFrame({"time": [0.0, 1.0, draw(st.sampled_from([2.0, 1.0, np.nan]))],
                          "value": draw(st.sampled_from([[1.0, 2, 3], ["a", "b", "c"],
                                                         [None, 1.0, 2.0]]))})  # fmt: skip
    return frame


@settings(max_examples=examples(60))
@given(X=array_input(), single=st.booleans())
def test_coerce_garbage(X, single):
    def call():
        return IrregularBatch.coerce(X, single=single)

    def check(batch):
        n = batch.lengths
        for i in range(batch.batch_size):
            t = batch.times[i, : int(n[i])]
            assert bool(torch.isfinite(t).all()) and bool((t.diff() > 0).all()), "bad times"
            v = batch.values[i, : int(n[i])]
            assert not bool(torch.isinf(v).any()), "inf values accepted"
            assert bool((~torch.isnan(v)).any()), "a series with no observation accepted"
        assert batch.times.dtype == torch.float64, f"times held as {batch.times.dtype}"

    case("data.coerce", call, ("X", "times", "single"), check)
