"""Signatures: the two backends agree, and both match hand-computed iterated integrals."""

import importlib.util

import numpy as np
import pytest
import torch

from neuralsde.data import IrregularBatch, logsignature, signature, windowed_logsignature
from neuralsde.data import signatures as sigmod

HAS_SIGNATORY = importlib.util.find_spec("signatory") is not None
needs_signatory = pytest.mark.skipif(
    not HAS_SIGNATORY,
    reason="signatory is not installed (optional extra neuralsde[signatures]); the pysiglib "
    "backend is still checked against hand-computed signatures below",
)
BACKENDS = ["pysiglib"] + (["signatory"] if HAS_SIGNATORY else [])


def _random_paths(seed, batch=5, length=17, channels=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, channels, generator=g, dtype=torch.float64).cumsum(1)


def _chen_depth2(path: torch.Tensor) -> torch.Tensor:
    """Level 2 of a piecewise-linear path by Chen's relation: for increments d_k,
    S2 = sum_{k<l} d_k (x) d_l + sum_k d_k (x) d_k / 2."""
    d = path[:, 1:] - path[:, :-1]
    before = torch.cumsum(d, dim=1) - d  # sum of increments strictly before k
    s2 = torch.einsum("bki,bkj->bij", before, d) + 0.5 * torch.einsum("bki,bkj->bij", d, d)
    return s2.reshape(path.shape[0], -1)


@needs_signatory
@pytest.mark.parametrize("depth", [3, 4])
def test_signatory_and_pysiglib_agree_to_1e_10(depth):
    x = _random_paths(depth)
    a = signature(x, depth, backend="signatory")
    b = signature(x, depth, backend="pysiglib")
    assert a.shape == b.shape == (5, sum(3**k for k in range(1, depth + 1)))
    assert (a - b).abs().max().item() < 1e-10
    la = logsignature(x, depth, backend="signatory")
    lb = logsignature(x, depth, backend="pysiglib")
    assert (la - lb).abs().max().item() < 1e-10


@pytest.mark.parametrize("backend", BACKENDS)
def test_level_one_is_increment_and_level_two_matches_chen(backend):
    x = _random_paths(11)
    sig = signature(x, 3, backend=backend)
    torch.testing.assert_close(sig[:, :3], x[:, -1] - x[:, 0], rtol=0, atol=1e-12)
    level2 = sig[:, 3:12]
    torch.testing.assert_close(level2, _chen_depth2(x), rtol=0, atol=1e-10)
    inc = x[:, -1] - x[:, 0]
    sym = 0.5 * (level2.view(-1, 3, 3) + level2.view(-1, 3, 3).transpose(1, 2))
    torch.testing.assert_close(sym, 0.5 * inc[:, :, None] * inc[:, None, :], rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_logsignature_level_two_is_levy_area(backend):
    x = _random_paths(5, channels=2)
    ls = logsignature(x, 2, backend=backend)
    s2 = _chen_depth2(x).view(-1, 2, 2)
    area = 0.5 * (s2[:, 0, 1] - s2[:, 1, 0])
    torch.testing.assert_close(ls[:, 2], area, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signature_gradients_flow(backend):
    x = _random_paths(2).requires_grad_(True)
    signature(x, 2, backend=backend).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_batch_signature_level_one_is_total_increment_of_the_control_path():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(4, 20, 2))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[:, 0] = 0.0
    values[:, -1] = 1.0
    b = IrregularBatch.from_arrays(np.tile(np.linspace(0, 1, 20), (4, 1)), values)
    sig = b.signature(2)
    grid, points = b.path_points()
    assert sig.shape == (4, 5 + 25)
    torch.testing.assert_close(sig[:, :5], points[:, -1] - points[:, 0], rtol=0, atol=1e-12)
    # time moves by 1, values by 1 - 0, counts by the number of observations
    assert sig[:, 0].tolist() == [1.0] * 4
    counts = b.mask.sum(1).to(torch.float64)
    torch.testing.assert_close(sig[:, 3:5], counts - 1.0)


def test_windowed_logsignatures_add_up_to_the_total_increment():
    b = IrregularBatch.from_arrays(np.linspace(0, 1, 41), np.sin(np.linspace(0, 6, 41)))
    windows = b.logsignature(3, windows=4)
    assert windows.shape == (1, 4, sigmod.logsignature_channels(3, 3))
    _, points = b.path_points()
    torch.testing.assert_close(windows[0, :, :3].sum(0), points[0, -1] - points[0, 0])
    edges = sigmod.window_edges(41, 4)
    assert edges == [0, 10, 20, 30, 40]
    torch.testing.assert_close(
        windows[0, 1], windowed_logsignature(points[:, 10:21], 3, 1)[0, 0], rtol=0, atol=0
    )


def test_fallback_to_pysiglib_warns_once(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        sigmod.importlib.util, "find_spec", lambda n: None if n == "signatory" else real(n)
    )
    sigmod.default_backend.cache_clear()
    try:
        with pytest.warns(UserWarning, match="signatory is not installed; computing signatures"):
            assert sigmod.default_backend() == "pysiglib"
        assert sigmod.default_backend() == "pysiglib"  # cached: no second warning
    finally:
        sigmod.default_backend.cache_clear()


def test_bad_paths_are_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match=r"path must have shape \(batch, length, channels\)"):
        signature(torch.zeros(3, 2), 2)
    with pytest.raises(ValueError, match=r"path contains NaN"):
        signature(torch.full((1, 3, 2), float("nan")), 2)
    with pytest.raises(ValueError, match=r"depth must be a positive integer, got 0"):
        signature(torch.zeros(1, 3, 2), 0)
    with pytest.raises(ValueError, match=r"backend must be one of"):
        signature(torch.zeros(1, 3, 2), 2, backend="iisignature")
