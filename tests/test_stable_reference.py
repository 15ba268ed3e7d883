"""The reference architecture of Oh, Lim & Kim's code, checked against its formulas by hand."""

import math

import numpy as np
import pytest
import torch

from neuralsde.core import solve
from neuralsde.core.grid import step_grid
from neuralsde.models import PathClassifier, StableSDE
from neuralsde.models.heads import ReferenceClassificationHead
from neuralsde.models.stable import (
    REFERENCE_KINDS,
    ReferenceAdditiveDiffusion,
    ReferenceDiffusion,
    ReferenceDrift,
    ReferenceGeometricDrift,
    ReferenceLangevinDrift,
)

T = 0.7
Z = [[0.5, -1.2], [-0.3, 0.8]]
X = [[3.0], [-1.0]]


def _weights(module, seed):
    """Fill every parameter with a seeded uniform draw; return them as nested Python lists."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.as_tensor(rng.uniform(-1, 1, size=tuple(p.shape))))
    return {n: p.detach().tolist() for n, p in module.named_parameters()}


def _lin(w, b, v):
    rows = zip(w, b, strict=True)
    return [sum(wi * vi for wi, vi in zip(row, v, strict=True)) + bi for row, bi in rows]


def _relu(v):
    return [max(0.0, a) for a in v]


def _drift_by_hand(p, kind, t, z, x):
    zp = z if kind == "lsde" else [math.sin(t), math.cos(t), *z]
    a = _lin(p["linear_in.weight"], p["linear_in.bias"], zp)
    b = _lin(p["init.weight"], p["init.bias"], x)
    h = _relu(_lin(p["emb.weight"], p["emb.bias"], a + b))
    h = _relu(_lin(p["hidden_layers.0.weight"], p["hidden_layers.0.bias"], h))
    out = _lin(p["linear_out.weight"], p["linear_out.bias"], h)
    if kind == "gsde":
        out = [o * math.tanh(zi) for o, zi in zip(out, z, strict=True)]
    return [math.tanh(o) for o in out]


def _sigma_by_hand(p, t):
    h = _relu(_lin(p["net.0.weight"], p["net.0.bias"], [math.sin(t), math.cos(t)]))
    s = _relu(_lin(p["net.2.weight"], p["net.2.bias"], h))
    scale = 1 / (1 + math.exp(-p["theta"]))
    return [scale * v for v in s]


@pytest.mark.parametrize("kind", ["lsde", "lnsde", "gsde"])
def test_reference_drift_and_diffusion_match_their_formulas_on_hand_made_inputs(kind):
    drift_cls, diffusion_cls = REFERENCE_KINDS[kind]
    drift, diffusion = drift_cls(2, 1, width=3, depth=2), diffusion_cls(2, width=4)
    pd, pg = _weights(drift, 1), _weights(diffusion, 2)
    z, x, t = torch.tensor(Z), torch.tensor(X), torch.tensor(T)
    f, g = drift(t, z, x), diffusion(t, z)
    sigma = _sigma_by_hand(pg, T)
    for b in range(2):
        assert f[b].tolist() == pytest.approx(_drift_by_hand(pd, kind, T, Z[b], X[b]), rel=1e-5)
        if kind == "lsde":  # tanh(s(t)), the same for every series
            expected = [math.tanh(s) for s in sigma]
        else:  # tanh(s(t) z)
            expected = [math.tanh(s * zi) for s, zi in zip(sigma, Z[b], strict=True)]
        assert g[b].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_reference_lsde_drift_ignores_time_and_its_diffusion_ignores_the_state():
    drift, diffusion = ReferenceLangevinDrift(2, 1), ReferenceAdditiveDiffusion(2)
    _weights(drift, 3)
    _weights(diffusion, 4)
    z, x = torch.tensor(Z), torch.tensor(X)
    assert torch.equal(drift(torch.tensor(0.0), z, x), drift(torch.tensor(5.0), z, x))
    assert torch.equal(diffusion(torch.tensor(T), z), diffusion(torch.tensor(T), 10 * z + 3))


@pytest.mark.parametrize("kind", ["lnsde", "gsde"])
@pytest.mark.parametrize("architecture", ["reference", "v1"])
def test_zero_diffusion_parameters_give_exactly_zero_diffusion_in_both_architectures(
    kind, architecture
):
    torch.manual_seed(0)
    sde = StableSDE(control=3, hidden=8, kind=kind, architecture=architecture)
    with torch.no_grad():
        for p in sde.diffusion.parameters():
            p.zero_()
    z = 100 * torch.randn(5, 8)
    for t in (0.0, 0.3, 7.0, -2.0):
        assert torch.equal(sde.g(torch.tensor(t), z), torch.zeros(5, 8))


def test_reference_gsde_keeps_every_coordinate_at_zero_fixed():
    """tanh(out * tanh z) and tanh(s(t) z) both vanish where z_i = 0: in continuous time no
    coordinate changes sign, as with the v1 form gamma * z (reported in the issue note)."""
    torch.manual_seed(0)
    drift, diffusion = ReferenceGeometricDrift(4, 2), ReferenceDiffusion(4)
    z = torch.randn(6, 4)
    z[:, 1] = 0.0
    x = torch.randn(6, 2)
    assert torch.equal(drift(torch.tensor(T), z, x)[:, 1], torch.zeros(6))
    assert torch.equal(diffusion(torch.tensor(T), z)[:, 1], torch.zeros(6))


def test_reference_drifts_are_bounded_by_one():
    torch.manual_seed(0)
    big, x = 1e4 * torch.randn(6, 4), torch.randn(6, 2)
    for cls in (ReferenceDrift, ReferenceLangevinDrift, ReferenceGeometricDrift):
        assert cls(4, 2)(torch.tensor(T), big, x).abs().max() <= 1.0


@pytest.mark.parametrize("kind", ["lsde", "lnsde", "gsde"])
def test_the_tabulated_combined_input_equals_the_direct_drift(kind):
    torch.manual_seed(0)
    sde = StableSDE(control=2, hidden=5, kind=kind, width=7, depth=3)
    z, x = torch.randn(4, 5), torch.randn(4, 2)
    t = torch.tensor([0.0, 0.4, 1.1])
    projected = sde.drift.project(t, x.expand(3, 4, 2))
    for i in range(3):
        direct = sde.drift(t[i], z, x)
        tabulated = sde.drift.forward_projected(z, projected[i], sde.drift.z_weight())
        assert torch.allclose(direct, tabulated, atol=1e-6)


def test_solve_precomputes_the_reference_tables_and_matches_the_untabulated_path():
    import torchcde

    tt = torch.linspace(0, 1, 6)
    data = torch.cat([tt.expand(3, 6).unsqueeze(-1), torch.randn(3, 6, 1)], -1)
    path = torchcde.CubicSpline(torchcde.hermite_cubic_coefficients_with_backward_differences(
        data, tt), tt)  # fmt: skip
    torch.manual_seed(0)
    sde = StableSDE(control=2, hidden=4, kind="gsde")
    args = sde.control_args(path)
    table = sde.precompute(step_grid(torch.tensor([0.0, 1.0]), 0.05)[0], args)
    assert table.drift is not None and table.sigma is not None
    ts = torch.tensor([0.0, 1.0])
    z0 = sde.initial_state(args)
    a = solve(sde, z0, ts, dt=0.05, args=args, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # the direct evaluation, with the tables withheld
        plain = args._replace()

        class Direct(torch.nn.Module):
            noise_type, sde_type = "diagonal", "ito"

            def f(self, t, z, args=None):
                return sde.drift(t, z, sde.control(t, plain))

            def g(self, t, z, args=None):
                return sde.diffusion(t, z)

        b = solve(Direct(), z0, ts, dt=0.05, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, atol=1e-5)


def test_reference_head_layout_init_and_a_training_batch_of_one():
    torch.manual_seed(0)
    head = ReferenceClassificationHead(6, 3)
    kinds = [type(m).__name__ for m in head.classifier]
    assert kinds == ["Linear", "_BatchNorm", "ReLU", "Dropout", "Linear"]
    assert head.classifier[3].p == 0.1
    assert torch.all(head.classifier[0].bias == 0.01)
    head.train()
    assert head(torch.randn(1, 6)).shape == (1, 3)  # batch statistics of one sample: running
    assert head(torch.randn(4, 6)).shape == (4, 3)
    with pytest.raises(ValueError, match="head must be one of"):
        PathClassifier(StableSDE(control=2, hidden=3), 2, head="mlp")


def test_unknown_architecture_is_rejected_by_name():
    with pytest.raises(ValueError, match="architecture must be one of"):
        StableSDE(control=2, hidden=3, architecture="paper")
