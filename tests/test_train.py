"""Tests for the shared training loop neuralsde.train.fit."""

import copy
import math

import pytest
import torch
from torch import nn

from neuralsde.train import DivergenceWarning, fit, iterate_batches, polish


def _mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def _line_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = x @ torch.tensor([[2.0], [-1.0]]) + 0.5 + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


def test_fit_reaches_the_least_squares_solution():
    torch.manual_seed(0)
    x, y = _line_data()
    net = torch.nn.Linear(2, 1)
    hist = fit(
        net,
        _mse,
        (x, y),
        epochs=400,
        lr=0.05,
        patience=None,
        lr_schedule=None,
        grad_clip=None,
        verbose=False,
    )
    design = torch.cat([x, torch.ones(len(x), 1)], 1)
    exact = torch.linalg.lstsq(design, y).solution.squeeze()
    got = torch.cat([net.weight.squeeze(), net.bias])
    assert torch.allclose(got, exact, atol=1e-3)
    assert hist.stopped == "epochs" and len(hist.train_loss) == 400


def test_minibatches_cover_every_row_once_per_epoch():
    x = torch.arange(10.0).unsqueeze(-1)
    g = torch.Generator().manual_seed(1)
    seen = torch.cat(list(iterate_batches(x, 3, shuffle=True, generator=g))).squeeze()
    assert sorted(seen.tolist()) == list(range(10))


def test_early_stopping_restores_the_best_validation_state():
    torch.manual_seed(0)
    x, y = _line_data()
    net = torch.nn.Linear(2, 1)
    states = []

    def record(epoch, model, history):
        states.append(copy.deepcopy(model.state_dict()))

    # validation score rises after epoch 3 whatever the model does
    scores = iter([5.0, 4.0, 3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0])
    hist = fit(
        net,
        _mse,
        (x, y),
        val=(x, y),
        val_fn=lambda m, v: next(scores),
        epochs=10,
        patience=3,
        lr=0.01,
        callback=record,
        verbose=False,
    )
    assert hist.stopped == "early_stopping"
    assert hist.best_epoch == 3 and hist.best_val == 2.0
    assert len(hist.val_loss) == 7
    for k, v in net.state_dict().items():
        assert torch.equal(v, states[3][k])


def test_divergence_guard_names_epoch_and_step_and_keeps_best_state():
    torch.manual_seed(0)
    x, y = _line_data()
    net = torch.nn.Linear(2, 1)
    calls = {"n": 0}
    states = []

    def loss(model, batch):
        calls["n"] += 1
        value = _mse(model, batch)
        # batches of 16 over 64 rows: 4 steps per epoch; poison epoch 2, step 1
        return value * math.nan if calls["n"] == 2 * 4 + 2 else value

    with pytest.warns(DivergenceWarning, match="epoch 2 step 1"):
        hist = fit(
            net,
            loss,
            (x, y),
            epochs=10,
            batch_size=16,
            lr=0.01,
            verbose=False,
            callback=lambda e, m, h: states.append(copy.deepcopy(m.state_dict())),
        )
    assert hist.stopped == "diverged at epoch 2 step 1" and hist.diverged
    assert hist.best_epoch == 1
    for k, v in net.state_dict().items():
        assert torch.equal(v, states[1][k])
        assert torch.isfinite(v).all()


def test_divergence_before_any_epoch_was_kept_raises_and_restores_the_initial_state():
    """It used to return normally with a warning and an untrained model (issue 19)."""
    from neuralsde.train import TrainingDiverged

    net = torch.nn.Linear(1, 1)
    initial = copy.deepcopy(net.state_dict())

    def loss(model, batch):
        raise FloatingPointError("solve diverged at t=0.3 step 4")

    with pytest.raises(TrainingDiverged, match="in training at epoch 0 batch 0") as err:
        fit(net, loss, torch.zeros(4, 1), epochs=3, verbose=False)
    assert (err.value.epoch, err.value.step) == (0, 0)
    for k, v in net.state_dict().items():
        assert torch.equal(v, initial[k])


def test_divergence_in_validation_is_guarded_like_training():
    """The validation pass raised the solver's DivergenceError (naming a solver step, not the
    epoch) and left the diverged weights in the model (issue 19)."""
    from neuralsde.core.loop import DivergenceError

    x, y = _line_data()
    net = torch.nn.Linear(2, 1)
    states, calls = [], {"n": 0}

    def val_fn(model, val):
        calls["n"] += 1
        if calls["n"] == 3:
            raise DivergenceError(0.5, 7)
        return float(_mse(model, val))

    def record(e, m, h):
        states.append(copy.deepcopy(m.state_dict()))

    with pytest.warns(DivergenceWarning, match="validation loss not finite at epoch 2"):
        hist = fit(net, _mse, (x, y), val=(x, y), val_fn=val_fn, epochs=10, lr=0.01,
                   verbose=False, patience=None, callback=record)  # fmt: skip
    assert hist.stopped == "diverged in validation at epoch 2" and hist.best_epoch == 1
    for k, v in net.state_dict().items():
        assert torch.equal(v, states[1][k])


def test_an_interrupt_restores_the_best_state_and_is_re_raised():
    x, y = _line_data()
    net = torch.nn.Linear(2, 1)
    states, calls = [], {"n": 0}

    def loss(model, batch):
        calls["n"] += 1
        if calls["n"] == 3 * 4 + 2:  # 4 batches per epoch: epoch 3, batch 1
            raise KeyboardInterrupt
        return _mse(model, batch)

    def record(e, m, h):
        states.append((h.best_epoch, copy.deepcopy(m.state_dict())))

    with pytest.raises(KeyboardInterrupt):
        fit(net, loss, (x, y), val=(x, y), epochs=10, batch_size=16, lr=0.01, verbose=False,
            patience=None, callback=record)  # fmt: skip
    best = states[-1][0]
    for k, v in net.state_dict().items():
        assert torch.equal(v, states[best][1][k])
    assert not net.training


def test_callback_can_record_values_and_stop():
    net = torch.nn.Linear(2, 1)
    x, y = _line_data()

    def cb(epoch, model, history):
        history.extra.setdefault("w0", []).append(float(model.weight[0, 0].detach()))
        return epoch == 4

    hist = fit(net, _mse, (x, y), epochs=50, verbose=False, callback=cb)
    assert hist.stopped == "callback" and len(hist.extra["w0"]) == 5


def test_cosine_schedule_follows_its_formula():
    net = torch.nn.Linear(2, 1)
    x, y = _line_data()
    hist = fit(
        net, _mse, (x, y), epochs=8, lr=0.1, lr_schedule="cosine", patience=None, verbose=False
    )
    expected = [0.05 * (1 + math.cos(math.pi * e / 8)) for e in range(8)]
    assert hist.lr == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be a positive integer; got 0"),
        ({"patience": 0}, "patience must be a positive integer or None; got 0"),
        ({"lr_schedule": "exp"}, "lr_schedule must be .* got 'exp'"),
        ({"batch_size": 0}, "batch_size must be a positive integer or None; got 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    x, y = _line_data()
    with pytest.raises(ValueError, match=match):
        fit(torch.nn.Linear(2, 1), _mse, (x, y), verbose=False, **kwargs)


def test_mismatched_tensors_are_rejected():
    with pytest.raises(ValueError, match=r"share their first dimension; got sizes \[4, 3\]"):
        fit(torch.nn.Linear(2, 1), _mse, (torch.zeros(4, 2), torch.zeros(3, 1)), verbose=False)


def test_loss_fn_must_be_callable():
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        fit(torch.nn.Linear(2, 1), None, torch.zeros(2, 2), verbose=False)


def test_polish_reaches_the_least_squares_solution_in_closed_form():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64) + 0.1 * torch.randn(
        40, generator=g, dtype=torch.float64
    )
    lin = nn.Linear(3, 1).double()
    before, after, n, stopped = polish(
        lin, lambda m, b: ((m(b[0])[:, 0] - b[1]) ** 2).mean(), (X, y), max_eval=60, batch_size=16
    )
    assert stopped is None
    A = torch.cat([X, torch.ones(40, 1, dtype=torch.float64)], 1)
    exact = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
    # L-BFGS stops once the loss changes by < 1e-9 (torch's tolerance_change): the weights
    # are then within ~1e-5 of the solution and the loss within ~1e-9 of the least one
    torch.testing.assert_close(lin.weight[0].detach(), exact[:3], atol=2e-5, rtol=0)
    torch.testing.assert_close(lin.bias.detach(), exact[3:], atol=2e-5, rtol=0)
    resid = ((A @ exact - y) ** 2).mean()
    assert after == pytest.approx(float(resid), abs=1e-8) and after < before and n <= 60


def test_polish_follows_a_curved_valley_that_adam_crawls_along():
    """Rosenbrock's valley from (-1.2, 1): 100 L-BFGS evaluations reach the minimum (1, 1);
    100 Adam steps at lr 0.01 (one gradient each) do not get near it."""

    class Point(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))

    def rosen(m, _):
        x, y = m.p
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2

    pt = Point()
    after = polish(pt, rosen, torch.zeros(1), max_eval=100).after
    torch.testing.assert_close(pt.p.detach(), torch.ones(2, dtype=torch.float64), atol=1e-4,
                               rtol=0)  # fmt: skip
    assert after < 1e-8
    adam, opt = Point(), None
    opt = torch.optim.Adam(adam.parameters(), lr=0.01)
    for _ in range(100):
        opt.zero_grad()
        rosen(adam, None).backward()
        opt.step()
    assert rosen(adam, None).item() > 1.0


def test_polish_stops_at_a_failing_trial_point_and_keeps_the_best_state():
    lin = nn.Linear(1, 1)
    state = {k: v.clone() for k, v in lin.state_dict().items()}
    calls = []

    def blows_up(m, b):  # finite at the start, NaN once the weights move
        calls.append(1)
        out = ((m(b) - 2 * b) ** 2).mean()
        return out if len(calls) <= 2 else out * float("nan")

    out = polish(lin, blows_up, torch.linspace(-1, 1, 5)[:, None], max_eval=5)
    assert out.after == out.before and out.stopped == "the loss became nan"
    for k, v in lin.state_dict().items():
        assert torch.equal(v, state[k])

    def not_spd(m, b):  # Cholesky of [[1, w], [w, 1]] fails once |w| >= 1
        w = m.weight[0, 0]
        M = torch.stack([torch.stack([torch.ones(()), w]), torch.stack([w, torch.ones(())])])
        return torch.linalg.cholesky(M)[1, 1]  # sqrt(1 - w^2): falls as |w| -> 1

    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(0.5)
    out = polish(lin, not_spd, torch.zeros(2, 1), max_eval=30)
    assert out.stopped is not None and "not positive-definite" in out.stopped
    assert out.after < out.before  # it kept the best point before the failure
    assert abs(lin.weight.item()) < 1 and out.after == pytest.approx(
        math.sqrt(1 - lin.weight.item() ** 2), rel=1e-6
    )
    nan = polish(lin, lambda m, b: m(b).sum() * float("nan"), torch.zeros(2, 1), max_eval=5)
    assert nan.evaluations == 0 and nan.stopped == "the loss is nan before polishing"
    for bad in (0, -3, 2.5):
        with pytest.raises((ValueError, TypeError), match="max_eval"):
            polish(lin, blows_up, torch.zeros(2, 1), max_eval=bad)
