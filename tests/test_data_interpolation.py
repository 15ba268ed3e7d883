"""Control paths: interpolate observations, differentiate correctly, equal torchcde's own."""

import warnings

import numpy as np
import pytest
import torch
import torchcde

from neuralsde.data import IrregularBatch, fill_missing


def _ragged_batch(seed=0):
    rng = np.random.default_rng(seed)
    times, values = [], []
    for n in (12, 7, 15):
        t = np.sort(rng.uniform(0, 5, n))
        x = rng.normal(size=(n, 2))
        x[rng.random(x.shape) < 0.3] = np.nan
        x[0, 0] = x[-1, 1] = 0.5
        times.append(t)
        values.append(x)
    return IrregularBatch.from_arrays(times, values)


@pytest.mark.parametrize("kind", ["hermite", "linear"])
def test_path_passes_through_every_observed_point(kind):
    b = _ragged_batch()
    X = b.path(kind)
    for i in range(b.batch_size):
        for j in range(int(b.lengths[i])):
            t = b.times[i, j]
            point = X.evaluate(t)[i]
            assert point[0].item() == pytest.approx(t.item(), abs=1e-12)
            for c in range(b.n_channels):
                if b.mask[i, j, c]:
                    assert point[1 + c].item() == pytest.approx(b.values[i, j, c].item(), abs=1e-12)
            counts = b.mask[i, : j + 1].sum(0).to(torch.float64)
            torch.testing.assert_close(point[1 + b.n_channels :], counts)


def test_rectilinear_path_passes_through_observations_at_knots():
    b = _ragged_batch()
    X = b.path("rectilinear")
    grid, on = b.union_grid()
    for k in range(len(grid)):  # knot k of the union grid is parameter 2k
        point = X.evaluate(torch.tensor(2.0 * k, dtype=torch.float64))
        assert torch.allclose(point[:, 0], grid[k].expand(b.batch_size))
        observed = ~torch.isnan(on[:, k])
        torch.testing.assert_close(point[:, 1:3][observed], on[:, k][observed], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["hermite", "linear"])
def test_path_derivative_agrees_with_central_differences(kind):
    b = _ragged_batch(1)
    X = b.path(kind)
    grid, _ = b.union_grid()
    h = 1e-6
    # midpoints between knots, where the path is smooth
    for t in (0.5 * (grid[:-1] + grid[1:]))[::3]:
        fd = (X.evaluate(t + h) - X.evaluate(t - h)) / (2 * h)
        torch.testing.assert_close(X.derivative(t), fd, rtol=1e-5, atol=1e-5)


def test_hermite_path_equals_torchcde_called_directly():
    b = _ragged_batch(2)
    grid, on = b.union_grid()
    counts = (~torch.isnan(on)).to(on.dtype).cumsum(1)
    raw = torch.cat([grid.view(1, -1, 1).expand(b.batch_size, -1, 1), on, counts], dim=-1)
    coeffs = torchcde.hermite_cubic_coefficients_with_backward_differences(raw, grid)
    direct = torchcde.CubicSpline(coeffs, grid)
    ours = b.path("hermite")
    assert type(ours) is torchcde.CubicSpline
    ts = torch.linspace(float(grid[0]), float(grid[-1]), 97, dtype=torch.float64)
    for t in ts:
        torch.testing.assert_close(ours.evaluate(t), direct.evaluate(t), rtol=0, atol=1e-12)
        torch.testing.assert_close(ours.derivative(t), direct.derivative(t), rtol=0, atol=1e-9)


def test_linear_and_rectilinear_equal_torchcde_called_directly():
    b = _ragged_batch(3)
    grid, on = b.union_grid()
    counts = (~torch.isnan(on)).to(on.dtype).cumsum(1)
    raw = torch.cat([grid.view(1, -1, 1).expand(b.batch_size, -1, 1), on, counts], dim=-1)
    linear = torchcde.LinearInterpolation(torchcde.linear_interpolation_coeffs(raw, grid), grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchcde warns about back-filling the first value
        rect = torchcde.LinearInterpolation(
            torchcde.linear_interpolation_coeffs(raw, rectilinear=0)
        )
    ours_lin, ours_rect = b.path("linear"), b.path("rectilinear")
    for t in torch.linspace(float(grid[0]), float(grid[-1]), 41, dtype=torch.float64):
        torch.testing.assert_close(ours_lin.evaluate(t), linear.evaluate(t), rtol=0, atol=1e-12)
    for s in torch.linspace(0, 2 * (len(grid) - 1), 41, dtype=torch.float64):
        torch.testing.assert_close(ours_rect.evaluate(s), rect.evaluate(s), rtol=0, atol=1e-12)


def test_fill_missing_matches_linear_interpolation_and_is_differentiable():
    grid = torch.tensor([0.0, 1.0, 3.0, 4.0], dtype=torch.float64)
    x = torch.tensor([[[np.nan], [2.0], [np.nan], [6.0]]], dtype=torch.float64, requires_grad=True)
    filled = fill_missing(grid, x)
    # before the first observation: constant; between 1 and 4: linear in time
    assert filled[0, :, 0].tolist() == [2.0, 2.0, 2.0 + 4.0 * 2 / 3, 6.0]
    filled.sum().backward()
    assert x.grad[0, :, 0].tolist() == [0.0, 1.0 + 1.0 + 1 / 3, 0.0, 1.0 + 2 / 3]


def test_path_without_intensity_has_time_and_values_only():
    b = _ragged_batch()
    assert b.path(intensity=False).evaluate(b.times[0, 0]).shape == (3, 3)
    with pytest.raises(ValueError, match=r"kind must be one of"):
        b.path("spline")
