"""Stable neural SDE classes: formulas, zero diffusion, stability beyond the training horizon."""

import math

import pytest
import torch
import torchcde

from neuralsde.core.grid import step_grid
from neuralsde.core.solve import solve
from neuralsde.models import (
    KINDS,
    GeometricDrift,
    LangevinDrift,
    LinearDiffusion,
    NeuralCDE,
    PathClassifier,
    PathRegressor,
    StableSDE,
    TimeDiffusion,
    TimeDrift,
    default_dt,
)
from neuralsde.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")


def _path(values, t):
    """A hermite cubic control path of [time, values] like IrregularBatch.path()."""
    data = torch.cat([t.expand(values.shape[0], -1).unsqueeze(-1), values], dim=-1)
    coeffs = torchcde.hermite_cubic_coefficients_with_backward_differences(data, t)
    return torchcde.CubicSpline(coeffs, t)


class _WithoutTables(torch.nn.Module):
    """The same SDE without the ``precompute`` hook: every step evaluates X(t) and sigma(t)."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, sde):
        super().__init__()
        self.sde = sde

    def f(self, t, z, args):
        return self.sde.f(t, z, args)

    def g(self, t, z, args):
        return self.sde.g(t, z, args)


def _set_linear(linear, weight, bias):
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight))
        linear.bias.copy_(torch.tensor(bias))


# hand-made inputs: hidden = 2, control = 1, one-layer (depth 0) networks
Z = torch.tensor([[0.5, -1.0], [2.0, 0.25]])
X = torch.tensor([[3.0], [-1.0]])
T = torch.tensor(0.7)
W_LANGEVIN = [[0.1, 0.2, -0.3], [0.4, -0.5, 0.6]]  # columns: z1, z2, x
W_TIME = [[0.3, 0.1, 0.2, -0.3], [-0.2, 0.4, -0.5, 0.6]]  # columns: t, z1, z2, x
B_DRIFT = [0.05, -0.1]
W_SIGMA, B_SIGMA = [[0.2, -0.4], [0.3, 0.1]], [0.5, -0.2]  # columns: sin t, cos t


def _by_hand_gamma(weight, inputs_row):
    return [
        math.tanh(sum(w * v for w, v in zip(ws, inputs_row, strict=True)) + b)
        for ws, b in zip(weight, B_DRIFT, strict=True)
    ]


def _by_hand_sigma(t, raw_scale):
    scale = math.log1p(math.exp(raw_scale))
    feats = [math.sin(t), math.cos(t)]
    return [
        scale * (sum(w * f for w, f in zip(ws, feats, strict=True)) + b)
        for ws, b in zip(W_SIGMA, B_SIGMA, strict=True)
    ]


def _hand_made_sde(kind):
    drift_cls, diffusion_cls = KINDS[kind]
    sde = StableSDE(
        control=1,
        hidden=2,
        kind=kind,
        drift=drift_cls(2, 1, depth=0),
        diffusion=diffusion_cls(2, depth=0),
    )
    weight = W_LANGEVIN if drift_cls is LangevinDrift else W_TIME
    _set_linear(sde.drift.net[0], weight, B_DRIFT)
    _set_linear(sde.diffusion.net[0], W_SIGMA, B_SIGMA)
    with torch.no_grad():
        sde.diffusion.raw_scale.fill_(0.3)
    sde.control = lambda t, args: X  # X(t) fixed by hand
    return sde, weight


@pytest.mark.parametrize("kind", ["lsde", "lnsde", "gsde"])
def test_drift_and_diffusion_match_their_formulas_on_hand_made_inputs(kind):
    sde, weight = _hand_made_sde(kind)
    f, g = sde.f(T, Z), sde.g(T, Z)
    sigma = _by_hand_sigma(0.7, 0.3)
    for b in range(2):
        z, x = Z[b].tolist(), X[b].tolist()
        inputs = z + x if kind == "lsde" else [0.7] + z + x
        gamma = _by_hand_gamma(weight, inputs)
        f_expected = [gm * zi for gm, zi in zip(gamma, z, strict=True)] if kind == "gsde" else gamma
        g_expected = sigma if kind == "lsde" else [s * zi for s, zi in zip(sigma, z, strict=True)]
        assert f[b].tolist() == pytest.approx(f_expected, rel=1e-6)
        assert g[b].tolist() == pytest.approx(g_expected, rel=1e-6)


def test_lsde_drift_ignores_time_and_its_diffusion_ignores_the_state():
    sde, _ = _hand_made_sde("lsde")
    assert torch.equal(sde.f(torch.tensor(0.0), Z), sde.f(torch.tensor(5.0), Z))
    assert torch.equal(sde.g(T, Z), sde.g(T, 10 * Z + 3))


@pytest.mark.parametrize("kind", ["lnsde", "gsde"])
def test_zero_diffusion_parameters_give_exactly_zero_diffusion(kind):
    torch.manual_seed(0)
    sde = StableSDE(control=3, hidden=8, kind=kind)
    with torch.no_grad():
        for p in sde.diffusion.parameters():
            p.zero_()
    z = 100 * torch.randn(5, 8)
    for t in (0.0, 0.3, 7.0, -2.0):
        assert torch.equal(sde.g(torch.tensor(t), z), torch.zeros(5, 8))


@pytest.mark.parametrize("kind", ["lnsde", "gsde"])
def test_linear_noise_vanishes_at_the_origin_and_gsde_keeps_zero_fixed(kind):
    torch.manual_seed(0)
    sde = StableSDE(control=2, hidden=4, kind=kind)
    sde.control = lambda t, args: torch.randn(3, 2)
    zero = torch.zeros(3, 4)
    assert torch.equal(sde.g(T, zero), zero)
    if kind == "gsde":
        assert torch.equal(sde.f(T, zero), zero)


def test_stable_drifts_are_bounded_by_one_and_the_naive_drift_is_not():
    torch.manual_seed(0)
    big = 1e4 * torch.randn(6, 4)
    x = torch.randn(6, 2)
    for cls in (LangevinDrift, TimeDrift):
        assert cls(4, 2)(T, big, x).abs().max() <= 1.0
    assert KINDS["naive"][0](4, 2)(T, big, x).abs().max() > 10.0


def test_time_diffusion_scale_is_positive_and_sigma_uses_sin_and_cos_of_t():
    d = TimeDiffusion(3)
    assert d.scale > 0
    # sigma depends on t only through (sin t, cos t): period 2 pi
    assert torch.allclose(d.sigma(T), d.sigma(T + 2 * math.pi), atol=1e-6)
    assert isinstance(LinearDiffusion(3), TimeDiffusion)


def test_a_user_drift_subclass_plugs_in():
    class DampedDrift(TimeDrift):
        def forward(self, t, z, x):
            return self.gamma(t, z, x) - z

    sde = StableSDE(control=1, hidden=2, kind="lnsde", drift=DampedDrift(2, 1))
    sde.control = lambda t, args: X
    assert torch.allclose(sde.f(T, Z), sde.drift.gamma(T, Z, X) - Z)
    assert isinstance(GeometricDrift(2, 1), TimeDrift)


def test_a_user_drift_subclass_is_not_replaced_by_the_tabulated_projection():
    class DampedDrift(TimeDrift):
        def forward(self, t, z, x):
            return self.gamma(t, z, x) - z

    t = torch.linspace(0, 1, 5)
    path = _path(torch.randn(2, 5, 1), t)
    sde = StableSDE(control=2, hidden=3, kind="lnsde", drift=DampedDrift(3, 2))
    args = sde.precompute(step_grid(torch.tensor([0.0, 1.0]), 0.25)[0], sde.control_args(path))
    assert args.drift is None
    z = torch.randn(2, 3)
    ta = torch.tensor(0.5)
    assert torch.allclose(sde.f(ta, z, args), sde.drift.gamma(ta, z, sde.control(ta, args)) - z)


def test_control_is_held_at_its_end_values_outside_the_path():
    t = torch.linspace(0, 1, 6)
    path = _path(torch.randn(2, 6, 1), t)
    sde = StableSDE(control=2, hidden=3)
    args = sde.control_args(path)
    assert torch.equal(sde.control(torch.tensor(5.0), args), path.evaluate(torch.tensor(1.0)))
    assert torch.allclose(sde.initial_state(args), sde.initial(path.evaluate(torch.tensor(0.0))))


def test_hidden_path_shapes_for_every_kind_and_ncde():
    t = torch.linspace(0, 2, 9)
    path = _path(torch.randn(4, 9, 2), t)
    for kind in KINDS:
        model = PathClassifier(StableSDE(control=3, hidden=5, kind=kind), classes=3)
        logits = model(path, dt=0.1, generator=torch.Generator().manual_seed(0))
        assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    reg = PathRegressor(NeuralCDE(control=3, hidden=5), outputs=2)
    assert reg(path, torch.tensor([0.5, 1.0, 3.0]), dt=0.1).shape == (3, 4, 2)


def test_same_generator_gives_the_same_hidden_path():
    t = torch.linspace(0, 1, 5)
    path = _path(torch.randn(2, 5, 1), t)
    sde = StableSDE(control=2, hidden=3, kind="lsde")
    a = sde.hidden_path(path, t, dt=0.05, generator=torch.Generator().manual_seed(3))
    b = sde.hidden_path(path, t, dt=0.05, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_default_dt_is_the_smallest_gap_floored_at_1e_3():
    assert default_dt(torch.tensor([[0.0, 0.5, 2.0], [0.0, 0.25, math.nan]])) == 0.25
    assert default_dt(torch.tensor([[0.0, 1e-5, 1.0]])) == 1e-3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "sde"}, ValueError, r"kind must be one of .* got 'sde'"),
        ({"hidden": 0}, ValueError, "hidden must be a positive integer; got 0"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    args = {"control": 2, "hidden": 3, **kwargs}
    with pytest.raises(error, match=match):
        StableSDE(**args)


def test_solving_without_a_control_path_raises():
    with pytest.raises(TypeError, match="has no control path: pass args=sde.control_args"):
        StableSDE(control=2, hidden=3).f(T, torch.zeros(1, 3))


def _train_growth_interpolator(kind):
    """Fit z -> x on x(t) = exp(a t), a ~ U(1, 2), t in [0, 1] (training horizon T = 1)."""
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, 11)
    x = torch.exp((1 + torch.rand(32, 1, generator=g)) * t)
    data = torch.stack([t.expand(32, 11), x], -1)
    coeffs = torchcde.hermite_cubic_coefficients_with_backward_differences(data, t)

    def loss(model, batch):
        c, y = batch
        out = model(torchcde.CubicSpline(c, t), t, dt=0.1, generator=g)
        return ((out.squeeze(-1).T - y) ** 2).mean()

    torch.manual_seed(0)
    model = PathRegressor(StableSDE(control=2, hidden=16, kind=kind, width=32), outputs=1)
    fit(model, loss, (coeffs, x), epochs=60, lr=1e-2, patience=None, verbose=False)
    return model.encoder, model.encoder.control_args(torchcde.CubicSpline(coeffs, t))


def test_lsde_hidden_state_stays_bounded_for_ten_training_horizons_and_naive_does_not():
    ts = torch.linspace(0, 10, 11)
    sup = {}
    for kind in ("lsde", "naive"):
        sde, args = _train_growth_interpolator(kind)
        with torch.no_grad():
            z0 = sde.initial_state(args)
            z = solve(sde, z0, ts, dt=0.1, generator=torch.Generator().manual_seed(1), args=args)
            sup[kind] = z.abs().amax(dim=(1, 2))
            if kind == "lsde":
                # a-priori bound: |gamma| <= 1, so |z_i(t)| <= |z0_i| + t + |int sigma_i dW_i|,
                # and the noise term stays below 6 sd = 6 sup|sigma| sqrt(t)
                sigma_sup = torch.stack([sde.diffusion.sigma(s) for s in ts]).abs().max()
                bound = z0.abs().max() + ts + 6 * sigma_sup * ts.sqrt()
    assert (sup["lsde"] <= bound).all()
    assert sup["lsde"][10] / sup["lsde"][5] < 2.2  # at most linear growth
    # the naive SDE grows exponentially and leaves the LSDE envelope by a factor > 5
    assert sup["naive"][10] > 5 * bound[10]
    assert sup["naive"][10] / sup["naive"][5] > 3


@pytest.mark.parametrize("kind", ["lsde", "lnsde", "gsde", "naive"])
def test_tabulated_control_and_sigma_give_the_same_path_and_gradients(kind):
    t = torch.linspace(0, 1.3, 8)
    path = _path(torch.randn(3, 8, 2, generator=torch.Generator().manual_seed(0)), t)
    torch.manual_seed(0)
    sde = StableSDE(control=3, hidden=4, kind=kind)
    ts = torch.tensor([0.0, 0.65, 1.3])
    runs = []
    args = sde.control_args(path)
    for tabulated in (False, True):
        sde.zero_grad()
        if tabulated:  # solve calls sde.precompute with its step grid
            table = sde.precompute(step_grid(ts, 0.05)[0], args)
            assert table.control is not None and table.drift is not None
        target = sde if tabulated else _WithoutTables(sde)
        z = solve(target, sde.initial_state(args), ts, dt=0.05,
                  generator=torch.Generator().manual_seed(2), args=args)  # fmt: skip
        z.square().sum().backward()
        runs.append((z.detach(), [p.grad.clone() for p in sde.parameters()]))
    assert torch.allclose(runs[0][0], runs[1][0], atol=1e-6)
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_time_off_the_table_grid_is_evaluated_exactly():
    t = torch.linspace(0, 1, 5)
    path = _path(torch.randn(2, 5, 1), t)
    sde = StableSDE(control=2, hidden=3, kind="lsde")
    args = sde.precompute(step_grid(torch.tensor([0.0, 1.0]), 0.1)[0], sde.control_args(path))
    off, on = torch.tensor(0.37), torch.tensor(0.4)
    with_table = [sde.control(off, args), sde.sigma(off, args), sde.sigma(on, args)]
    assert torch.equal(with_table[0], path.evaluate(off))
    assert torch.equal(with_table[1], sde.diffusion.sigma(off))
    assert torch.allclose(with_table[2], sde.diffusion.sigma(on), atol=1e-7)
