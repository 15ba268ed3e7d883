"""IrregularBatch: round trips through xarray and pandas, padding, normalisation, splits."""

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralsde.data import IrregularBatch, decode_times, encode_times


def _gappy_dataarray(seed=0):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(4, 9, 3))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[:, 0, 0] = 1.0  # every series observed somewhere
    return xr.DataArray(
        values,
        dims=("series", "time", "channel"),
        coords={
            "series": ["a", "b", "c", "d"],
            "time": pd.date_range("2021-03-01 06:00", periods=9, freq="6h"),
            "channel": ["u", "v", "w"],
            "site": ("series", [10, 11, 12, 13]),
        },
        name="obs",
        attrs={"units": "m/s"},
    )


def test_xarray_round_trip_is_identity_with_datetimes_and_nans():
    da = _gappy_dataarray()
    b = IrregularBatch.from_xarray(da)
    assert b.time_encoding.unit == "h"
    assert torch.equal(torch.isnan(b.values), torch.from_numpy(np.isnan(da.values)))
    xr.testing.assert_identical(b.to_xarray(), da)


def test_xarray_round_trip_keeps_dim_order_and_absent_dims():
    da = _gappy_dataarray().isel(series=1).transpose("channel", "time")
    b = IrregularBatch.from_xarray(da)
    assert b.values.shape == (1, 9, 3)
    xr.testing.assert_identical(b.to_xarray(), da)
    univariate = xr.DataArray([1.0, np.nan, 3.0], dims="time", coords={"time": [0, 5, 7]})
    xr.testing.assert_identical(IrregularBatch.from_xarray(univariate).to_xarray(), univariate)


def test_dataset_with_values_and_label_gives_labels():
    ds = xr.Dataset(
        {
            "values": (("series", "time", "channel"), np.ones((3, 4, 1))),
            "label": ("series", list("xyx")),
        },
        coords={"time": np.arange(4.0)},
    )
    b = IrregularBatch.from_xarray(ds)
    assert b.labels.tolist() == ["x", "y", "x"]
    out = b.to_dataset()
    assert out["label"].values.tolist() == ["x", "y", "x"]
    np.testing.assert_array_equal(out["values"].values, ds["values"].values)


def test_datetime_encoding_is_exact_for_weekly_stamps_over_decades():
    stamps = pd.date_range("1958-03-29", periods=2284, freq="7D").to_numpy()
    x, enc = encode_times(stamps)
    assert enc.unit == "D" and x[1] == 7.0
    np.testing.assert_array_equal(decode_times(x, enc), stamps)


def test_from_arrays_pads_ragged_series_with_nan():
    b = IrregularBatch.from_arrays(
        [np.array([0.0, 1.0, 3.0]), np.array([0.5])], [np.ones((3, 2)), np.full((1, 2), 2.0)]
    )
    assert b.lengths.tolist() == [3, 1]
    assert torch.isnan(b.times[1, 1:]).all() and torch.isnan(b.values[1, 1:]).all()
    assert b.mask.shape == (2, 3, 2)
    assert b.values.dtype == torch.float64


def test_datetime_arrays_share_one_origin():
    t1 = np.array(["2020-01-01", "2020-01-03"], dtype="datetime64[D]")
    t2 = np.array(["2020-01-02"], dtype="datetime64[D]")
    b = IrregularBatch.from_arrays([t1, t2], [[1.0, 2.0], [3.0]])
    assert b.times[0, :2].tolist() == [0.0, 2.0] and b.times[1, 0].item() == 1.0
    assert b.datetimes()[1, 0] == np.datetime64("2020-01-02")


long_frames = st.lists(
    st.tuples(
        st.lists(
            st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=6, unique=True
        ),
        st.integers(0, 2**31 - 1),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=30, deadline=None)
@given(long_frames)
def test_pandas_long_format_round_trip_preserves_every_observed_value(series):
    rows = []
    for sid, (times, seed) in enumerate(series):
        rng = np.random.default_rng(seed)
        for t in times:
            x, y = rng.normal(size=2)
            rows.append(
                {
                    "id": f"s{sid}",
                    "time": float(t),
                    "x": x,
                    "y": y if rng.random() > 0.4 else np.nan,
                }
            )
        rows[-1]["x"] = rng.normal()  # at least one observation per series
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # long frames come unsorted
    b = IrregularBatch.from_dataframe(df, value_cols=["x", "y"])
    da = b.to_xarray()
    for row in df.itertuples():
        for col in ("x", "y"):
            got = da.sel(series=row.id, time=row.time, channel=col).item()
            want = getattr(row, col)
            assert (np.isnan(got) and np.isnan(want)) or got == want
    n_observed = int(df[["x", "y"]].notna().sum().sum())
    assert int(da.notnull().sum()) == n_observed
    back = b.to_dataframe().set_index(["id", "time"]).sort_index()
    pd.testing.assert_frame_equal(
        back, df.set_index(["id", "time"]).sort_index(), check_names=False
    )


def test_dataframe_with_datetimes_and_labels():
    df = pd.DataFrame(
        {
            "patient": [7, 7, 9, 9, 9],
            "when": pd.to_datetime(
                [
                    "2024-01-01 10:00",
                    "2024-01-01 09:00",
                    "2024-01-02 00:00",
                    "2024-01-03 00:00",
                    "2024-01-05 00:00",
                ]
            ),
            "hr": [70.0, 72.0, np.nan, 60.0, 61.0],
            "outcome": [1, 1, 0, 0, 0],
        }
    )
    b = IrregularBatch.from_dataframe(df, id_col="patient", time_col="when", label_col="outcome")
    assert b.series.tolist() == [7, 9] and b.labels.tolist() == [1, 0]
    assert b.values[0, :2, 0].tolist() == [72.0, 70.0]  # sorted by time within the series
    da = b.to_xarray()
    assert np.issubdtype(da["time"].dtype, np.datetime64)
    assert da.sel(series=7, time="2024-01-01 10:00").item() == 70.0


def test_normalise_uses_training_statistics_and_inverts():
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, size=(20, 30, 2))
    values[rng.random(values.shape) < 0.2] = np.nan
    b = IrregularBatch.from_arrays(np.tile(np.arange(30.0), (20, 1)), values)
    train, _, test = b.split(stratify=False, seed=1)
    normed, stats = train.normalise()
    obs = normed.values[normed.mask.all(-1)]
    torch.testing.assert_close(obs.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.02, rtol=0)
    flat = train.values.reshape(-1, 2).numpy()
    np.testing.assert_allclose(stats["mean"].numpy(), np.nanmean(flat, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["std"].numpy(), np.nanstd(flat, axis=0), rtol=1e-12)
    test_normed, same = test.normalise(stats)
    assert same is stats
    torch.testing.assert_close(test_normed.denormalise(stats).values, test.values, equal_nan=True)
    with pytest.raises(ValueError, match=r"stats\['mean'\] must have shape \(2,\)"):
        test.normalise({"mean": torch.zeros(3), "std": torch.ones(2)})


def test_split_is_stratified_70_15_15_and_partitions_series():
    labels = np.repeat(["a", "b", "c", "d"], 25)
    b = IrregularBatch.from_arrays(
        np.tile(np.arange(5.0), (100, 1)), np.ones((100, 5)), labels=labels
    )
    train, val, test = b.split(seed=3)
    assert (len(train), len(val), len(test)) == (70, 15, 15)
    ids = np.concatenate([train.series, val.series, test.series])
    assert sorted(ids.tolist()) == list(range(100))
    counts = pd.Series(train.labels).value_counts()
    assert counts.min() >= 17 and counts.max() <= 18


def test_union_grid_places_each_series_at_its_own_stamps():
    b = IrregularBatch.from_arrays([[0.0, 2.0], [1.0, 2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0, 5.0]])
    grid, on = b.union_grid()
    assert grid.tolist() == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_array_equal(on[0, :, 0].numpy(), [1.0, np.nan, 2.0, np.nan])
    np.testing.assert_array_equal(on[1, :, 0].numpy(), [np.nan, 3.0, 4.0, 5.0])


def test_indexing_trims_padding_and_float32_is_kept():
    b = IrregularBatch.from_arrays(
        [np.arange(3, dtype=np.float32), np.arange(1, dtype=np.float32)],
        [np.ones(3, dtype=np.float32), np.ones(1, dtype=np.float32)],
    )
    assert b.values.dtype == torch.float32
    assert b[1].times.shape == (1, 1) and b[[0]].lengths.tolist() == [3]
    assert b.to(torch.float64).values.dtype == torch.float64
