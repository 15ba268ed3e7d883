"""One time grid per series (``ts: (T, batch)``): each series steps on its own grid, with its own
step sizes and Brownian scaling, and equals that series solved alone on the same grid."""

import numpy as np
import pytest
import torch

from neuralsde import SDE, DivergenceError, solve
from neuralsde.core.brownian import BrownianPath
from neuralsde.core.grid import series_grid, step_grid
from neuralsde.examples import GBM

F64 = torch.float64


class Batched(SDE):
    """dy = (a sin(y) + t) dt + s (1 + cos(y) / 2) dW: uses ``t``, opted in to (batch, 1)."""

    batched_time = True

    def __init__(self, sde_type="ito"):
        super().__init__(noise_type="diagonal", sde_type=sde_type)
        self.a = torch.nn.Parameter(torch.tensor(0.7, dtype=F64))
        self.s = torch.nn.Parameter(torch.tensor(0.4, dtype=F64))

    def f(self, t, y):
        return self.a * torch.sin(y) + t

    def g(self, t, y):
        return self.s * (1 + 0.5 * torch.cos(y)) * (1 + t)


class BatchedGBM(GBM):
    batched_time = True


def _irregular_ts(batch, n, seed):
    g = torch.Generator().manual_seed(seed)
    gaps = torch.rand(n - 1, batch, generator=g, dtype=F64) * 0.2 + 0.01
    return torch.cat([torch.zeros(1, batch, dtype=F64), gaps.cumsum(0)])


class _Recording:
    """A per-series Brownian source: fresh increments ``N(0, tb - ta)`` for every series, kept
    by series and interval so that one series can be replayed alone (:class:`_Replay`)."""

    def __init__(self, batch, size, seed):
        self.batch, self.size, self.store = batch, size, {}
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, ta, tb):
        h = torch.as_tensor(np.asarray(tb) - np.asarray(ta), dtype=F64).unsqueeze(-1)
        dw = torch.randn(self.batch, self.size, generator=self.gen, dtype=F64) * h.sqrt()
        for b in range(self.batch):
            self.store[b, float(ta[b]), float(tb[b])] = dw[b : b + 1]
        return dw


class _Replay:
    def __init__(self, recording, b):
        self.recording, self.b = recording, b

    def __call__(self, ta, tb):
        return self.recording.store[self.b, float(ta), float(tb)]


@pytest.mark.parametrize(
    "method,sde_type",
    [("euler", "ito"), ("milstein", "ito"), ("heun", "stratonovich"),
     ("reversible_heun", "stratonovich")],
)  # fmt: skip
def test_each_series_equals_that_series_solved_alone_on_its_grid_and_path(method, sde_type):
    sde = Batched(sde_type)
    B, dt = 5, 0.03
    ts = _irregular_ts(B, 7, seed=0)
    y0 = torch.linspace(-1, 1, 2 * B, dtype=F64).view(B, 2)
    path = _Recording(B, 2, seed=1)
    ys = solve(sde, y0, ts, method=method, dt=dt, bm=path)
    grid, index = series_grid(ts, dt)
    assert len({float(v) for v in torch.diff(grid, dim=0)[0]}) > 1  # sizes differ across series
    for b in range(B):
        # the series' own grid as output times, one step per interval: the same steps alone
        alone = solve(sde, y0[b : b + 1], grid[:, b], method=method, dt=10.0,
                      bm=_Replay(path, b))  # fmt: skip
        torch.testing.assert_close(ys[:, b], alone[index[:, b], 0], rtol=0, atol=1e-12)


def test_euler_keeps_strong_order_one_half_on_gbm_when_step_sizes_differ_across_the_batch():
    sde = BatchedGBM(mu=0.5, sigma=0.8)
    B = 3000
    spans = torch.tensor([0.5, 0.75, 1.0], dtype=F64).repeat(B // 3)
    ts = torch.stack([torch.zeros(B, dtype=F64), spans])  # (2, batch): own end times
    bm = BrownianPath(0.0, 1.0, 2**12, (B, 1), generator=torch.Generator().manual_seed(11))
    y0 = torch.ones(B, 1, dtype=F64)
    exact = sde.exact(y0[:, 0], spans, bm(np.zeros(B), spans.numpy())[:, 0])
    dts = [2.0**-k for k in range(3, 9)]
    errs = []
    for dt in dts:
        y1 = solve(sde, y0, ts, method="euler", dt=dt, bm=bm)[-1, :, 0]
        errs.append(float((y1 - exact).abs().mean()))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - 0.5) < 0.1, (errs, slope)
    # the step sizes really differ: the half-length series takes all its steps at dt / 2
    grid, _ = series_grid(ts, dts[-1])
    steps = torch.diff(grid, dim=0)
    assert float(steps[:, 0].max()) == pytest.approx(dts[-1] / 2)  # span 0.5
    assert float(steps[:, 2].min()) == pytest.approx(dts[-1])  # span 1


def test_outputs_are_each_series_own_times_on_a_deterministic_flow():
    class Decay(SDE):
        noise_type, sde_type, batched_time = "diagonal", "stratonovich", True

        def f(self, t, y):
            return -y * t  # y(t) = y0 exp(-t^2 / 2)

        def g(self, t, y):
            return torch.zeros_like(y)

    ts = _irregular_ts(4, 6, seed=2)
    ys = solve(Decay(), torch.ones(4, 1, dtype=F64), ts, method="heun", dt=1e-3)
    assert ys.shape == (6, 4, 1)
    torch.testing.assert_close(ys[..., 0], torch.exp(-(ts**2) / 2), rtol=1e-6, atol=0)


def test_reversible_adjoint_on_per_series_grids_equals_direct_backpropagation():
    ts = _irregular_ts(4, 5, seed=3)
    y0 = torch.linspace(-1, 1, 8, dtype=F64).view(4, 2).requires_grad_(True)
    w = torch.randn(5, 4, 2, dtype=F64, generator=torch.Generator().manual_seed(4))
    grads = []
    for adjoint in (None, "reversible"):
        sde = Batched("stratonovich")
        ys = solve(sde, y0, ts, method="reversible_heun", dt=0.02, adjoint=adjoint,
                   generator=torch.Generator().manual_seed(5))  # fmt: skip
        grads.append(torch.autograd.grad((w * torch.sin(ys)).sum(), [y0, sde.a, sde.s]))
    for direct, rev in zip(*grads, strict=True):
        torch.testing.assert_close(rev, direct, rtol=1e-8, atol=1e-12)


def test_series_grids_refine_each_series_own_step_grid_to_a_common_step_count():
    """Each series keeps the points of its own 1-D grid (its times merged with t0 + k dt, what
    it gets solved alone); shorter series cut their largest steps into equal pieces."""
    ts = _irregular_ts(6, 9, seed=6)
    dt = 0.05
    grid, index = series_grid(ts, dt)
    steps = torch.diff(grid, dim=0)
    assert bool((steps > 0).all()) and float(steps.max()) <= dt + 1e-12
    torch.testing.assert_close(grid[index, torch.arange(6)], ts, rtol=0, atol=0)
    own = [step_grid(ts[:, b], dt)[0] for b in range(6)]
    assert grid.shape[0] == max(len(g) for g in own)  # the longest series sets the step count
    for b, g in enumerate(own):
        assert bool(torch.isin(g, grid[:, b]).all())


def test_per_series_grids_have_clear_errors():
    y0, ts = torch.zeros(3, 1, dtype=F64), _irregular_ts(3, 4, seed=0)
    with pytest.raises(ValueError, match="does not declare batched_time = True"):
        solve(GBM(), y0 + 1, ts)
    with pytest.raises(ValueError, match=r"method='srk' does not support one grid per series.*"
                       r"'euler'"):  # fmt: skip
        solve(BatchedGBM(), y0 + 1, ts, method="srk")
    with pytest.raises(ValueError, match="needs fixed steps"):
        solve(BatchedGBM(), y0 + 1, ts, rtol=1e-3)
    with pytest.raises(
        ValueError, match="one column per series: got 3 columns for y0 with batch 2"
    ):
        solve(BatchedGBM(), torch.ones(2, 1, dtype=F64), ts)
    bad = ts.clone()
    bad[2, 1] = bad[1, 1]
    with pytest.raises(ValueError, match=r"strictly increasing; got ts\[1, 1\]=.* followed by "
                       r"ts\[2, 1\]"):  # fmt: skip
        solve(BatchedGBM(), y0 + 1, bad)


def test_a_diverging_series_is_reported_with_its_own_time():
    class Blowup(SDE):
        noise_type, sde_type, batched_time = "diagonal", "ito", True

        def f(self, t, y):
            return y**3

        def g(self, t, y):
            return torch.zeros_like(y)

    # y' = y^3 from 2 blows up at t = 1/8. Series 1 spans [0, 1] in the steps series 0 takes
    # for [0, 0.5], so it gets there in half the steps: the error carries series 1's time
    ts = torch.tensor([[0.0, 0.0], [0.5, 1.0]])
    with pytest.raises(DivergenceError, match=r"stopped being finite at t=.* \(step \d+\)") as e:
        solve(Blowup(), torch.full((2, 1), 2.0), ts, dt=0.005)
    grid, _ = series_grid(ts, 0.005)
    assert e.value.time == pytest.approx(float(grid[e.value.step, 1]))
    assert 0.12 < e.value.time < 0.3


def test_a_grid_given_as_data_is_stepped_on_exactly():
    """solve(grid=...) takes its steps on the given times: on a uniform grid it is the dt
    solve, on a graded grid Euler's error is that of the same steps taken by hand."""
    from neuralsde import SDE, solve

    class Decay(SDE):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            return -2.0 * y

        def g(self, t, y):
            return torch.zeros_like(y)

    y0 = torch.ones(3, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    uniform = torch.linspace(0, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(solve(Decay(), y0, ts, grid=uniform), solve(Decay(), y0, ts, dt=0.1))
    graded = torch.linspace(0, 1, 9, dtype=torch.float64) ** 2
    by_hand = torch.prod(1 - 2.0 * torch.diff(graded))
    torch.testing.assert_close(solve(Decay(), y0, ts, grid=graded)[-1], by_hand * y0)


def test_a_bad_grid_is_refused():
    import pytest

    from neuralsde import SDE, solve

    class Zero(SDE):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            return torch.zeros_like(y)

        def g(self, t, y):
            return torch.zeros_like(y)

    y0, ts = torch.ones(2, 1), torch.tensor([0.0, 1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        solve(Zero(), y0, ts, grid=torch.tensor([0.0, 0.6, 0.5, 1.0]))
    with pytest.raises(ValueError, match="hold every time of ts"):
        solve(Zero(), y0, ts, grid=torch.tensor([0.0, 0.5, 0.9]))
    with pytest.raises(ValueError, match="no rtol/atol"):
        solve(Zero(), y0, ts, grid=torch.tensor([0.0, 1.0]), rtol=1e-3)


def test_repeated_series_share_their_grid_computed_once():
    """Posterior samples repeat each series' times: ``series_grid`` computes each distinct
    column once and returns exactly the grid of the column-by-column construction."""
    from neuralsde.core.grid import _series_grid

    rng = np.random.default_rng(0)
    cols = [np.sort(rng.uniform(0, 1, 5)) for _ in range(3)]
    for c in cols:
        c[0] = 0.0
    t = np.stack([cols[i] for i in (0, 1, 0, 2, 1, 1)], axis=1)
    grid, index = series_grid(torch.from_numpy(t), 0.1)
    full_grid, full_index = _series_grid(t, 0.1, torch.finfo(torch.float64).eps)
    assert np.array_equal(grid.numpy(), full_grid)
    assert torch.equal(index, full_index)
    assert torch.equal(grid[:, 0], grid[:, 2]) and not torch.equal(grid[:, 0], grid[:, 1])
