"""Tests for the shared training loop neuralsde.train.fit."""

import copy
import math

import pytest
import torch

from neuralsde.train import DivergenceWarning, fit, iterate_batches


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
