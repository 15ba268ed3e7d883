"""Every validation error names the argument, the offending series / index and the problem."""

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from neuralsde.data import IrregularBatch
from neuralsde.data.validation import (
    check_has_observation,
    check_no_inf,
    check_numeric,
    check_rank,
    check_strictly_increasing,
    validate_padded,
    validate_series,
)


def test_non_increasing_times_name_argument_series_and_index():
    with pytest.raises(
        ValueError, match=r"times\[1\] must be strictly increasing.*times\[1\]\[2\]"
    ):
        IrregularBatch.from_arrays([[0.0, 1.0], [0.0, 2.0, 2.0]], [[1.0, 2.0], [1.0, 2.0, 3.0]])


def test_decreasing_times_report_the_values_seen():
    with pytest.raises(ValueError, match=r"times\[0\]\[1\] = 0.5 is not greater than .* = 1.0"):
        validate_series([[1.0, 0.5]], [[1.0, 2.0]])


def test_nan_time_is_rejected_with_its_index():
    with pytest.raises(ValueError, match=r"times\[0\] must be finite, got nan at index 1"):
        validate_series([[0.0, np.nan, 2.0]], [[1.0, 2.0, 3.0]])


def test_values_of_wrong_rank_name_series():
    values = [np.zeros((3, 1)), np.zeros((3, 2, 2))]
    with pytest.raises(ValueError, match=r"values\[1\] must have rank 1 or 2, got rank 3"):
        IrregularBatch.from_arrays([[0.0, 1.0, 2.0]] * 2, values)


def test_stacked_values_of_wrong_rank_are_rejected():
    with pytest.raises(ValueError, match=r"values must have rank 2 or 3 .* got rank 4"):
        validate_series(np.zeros((2, 3)), np.zeros((2, 3, 1, 1)))


def test_mismatched_lengths_name_both_arguments_and_series():
    with pytest.raises(ValueError, match=r"values\[1\] has 2 time points but times\[1\] has 3"):
        IrregularBatch.from_arrays([[0.0, 1.0], [0.0, 1.0, 2.0]], [[1.0, 2.0], [1.0, 2.0]])


def test_mismatched_number_of_series_is_named():
    with pytest.raises(ValueError, match=r"values holds 1 series but times holds 2"):
        validate_series([[0.0, 1.0], [0.0, 1.0]], [[1.0, 2.0]])


def test_mismatched_channel_counts_are_named():
    with pytest.raises(ValueError, match=r"values\[1\] has 3 channels but the first series has 2"):
        validate_series([[0.0, 1.0]] * 2, [np.zeros((2, 2)), np.zeros((2, 3))])


def test_inf_values_are_rejected_with_series_and_position():
    values = [np.array([1.0, 2.0]), np.array([1.0, -np.inf, np.nan])]
    with pytest.raises(ValueError, match=r"values\[1\] contains inf at index \(1, 0\)"):
        IrregularBatch.from_arrays([[0.0, 1.0], [0.0, 1.0, 2.0]], values)


def test_series_without_any_observation_is_rejected():
    values = [np.array([1.0, np.nan]), np.array([np.nan, np.nan])]
    with pytest.raises(ValueError, match=r"values\[1\] has no observed value"):
        IrregularBatch.from_arrays([[0.0, 1.0], [0.0, 1.0]], values)


def test_nan_is_allowed_and_means_missing():
    b = IrregularBatch.from_arrays([[0.0, 1.0, 2.0]], [[1.0, np.nan, 3.0]])
    assert b.mask[0, :, 0].tolist() == [True, False, True]


def test_non_numeric_values_raise_type_error_naming_series():
    values = [np.array([1.0, 2.0]), np.array(["a", "b"])]
    with pytest.raises(TypeError, match=r"values\[1\] must have a numeric dtype.*<U1"):
        IrregularBatch.from_arrays([[0.0, 1.0], [0.0, 1.0]], values)


def test_non_numeric_times_raise_type_error():
    with pytest.raises(TypeError, match=r"times\[0\] must have a numeric dtype"):
        validate_series([np.array(["x", "y"])], [[1.0, 2.0]])


def test_object_column_with_strings_raises_type_error():
    with pytest.raises(TypeError, match=r"values\[0\] must have a numeric dtype.*object"):
        validate_series([[0.0, 1.0]], [np.array([1.0, "z"], dtype=object)])


def test_dataframe_errors_name_the_column_and_series_id():
    df = pd.DataFrame({"id": ["a", "a", "b", "b"], "time": [0.0, 1.0, 3.0, 3.0], "x": [1.0] * 4})
    with pytest.raises(ValueError, match=r"df\['time'\]\['b'\] must be strictly increasing"):
        IrregularBatch.from_dataframe(df)
    df = pd.DataFrame({"id": [1, 1], "time": [0.0, 1.0], "x": [np.nan, np.nan]})
    with pytest.raises(ValueError, match=r"df\[\['x'\]\]\[1\] has no observed value"):
        IrregularBatch.from_dataframe(df)
    df = pd.DataFrame({"id": [1, 1], "time": ["a", "b"], "x": [1.0, 2.0]})
    with pytest.raises(TypeError, match=r"df\['time'\] must hold numbers or datetime64"):
        IrregularBatch.from_dataframe(df)
    with pytest.raises(ValueError, match=r"time_col 'when' is not a column of df"):
        IrregularBatch.from_dataframe(df, time_col="when")


def test_xarray_errors_name_the_argument():
    da = xr.DataArray(np.zeros((2, 3)), dims=("series", "t"))
    with pytest.raises(ValueError, match=r"time_dim 'time' is not one of them"):
        IrregularBatch.from_xarray(da)
    da = xr.DataArray(np.zeros((2, 3)), dims=("station", "time"))
    with pytest.raises(ValueError, match=r"dims \['station'\] are neither"):
        IrregularBatch.from_xarray(da)
    da = xr.DataArray([[1.0, np.inf]], dims=("series", "time"), coords={"time": [0.0, 1.0]})
    with pytest.raises(ValueError, match=r"obj\[0\] contains inf"):
        IrregularBatch.from_xarray(da)
    with pytest.raises(TypeError, match=r"obj must be an xarray DataArray or Dataset"):
        IrregularBatch.from_xarray(np.zeros(3))


def test_padded_validator_checks_tensors_for_estimators():
    times = torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.5, float("nan")]])
    values = torch.ones(2, 3, 1)
    validate_padded(times, values, torch.tensor([3, 2]))
    with pytest.raises(ValueError, match=r"times\[1\] must be finite"):
        validate_padded(times, values)
    with pytest.raises(ValueError, match=r"expected values of shape \(B, L, C\) = \(2, 3, C\)"):
        validate_padded(times, torch.ones(2, 4, 1))
    with pytest.raises(TypeError, match=r"values must be a torch.Tensor, got ndarray"):
        validate_padded(times, np.ones((2, 3, 1)))


def test_single_checks_are_usable_on_their_own():
    check_numeric(torch.zeros(2), "y0")
    with pytest.raises(TypeError, match=r"y0 must have a real numeric dtype"):
        check_numeric(torch.zeros(2, dtype=torch.complex64), "y0")
    with pytest.raises(ValueError, match=r"y0 must have rank 2, got rank 1 with shape \(3,\)"):
        check_rank(np.zeros(3), "y0", 2)
    with pytest.raises(ValueError, match=r"ts must be strictly increasing"):
        check_strictly_increasing(torch.tensor([0.0, 0.0]), "ts")
    with pytest.raises(ValueError, match=r"x contains inf at index \(0,\)"):
        check_no_inf(torch.tensor([float("inf")]), "x")
    with pytest.raises(ValueError, match=r"x\[7\] has no observed value"):
        check_has_observation(np.array([np.nan]), "x", series=7)
