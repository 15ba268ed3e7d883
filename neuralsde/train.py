"""The one training loop shared by every estimator in neuralsde.

``fit(model, loss_fn, train, val)`` minimises ``loss_fn(model, batch)`` with Adam(W), a learning
rate schedule, gradient clipping, validation early stopping with best-state restore, a
divergence guard and an optional per-epoch callback; it returns a :class:`History`.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from neuralsde.core.arguments import non_negative, positive, positive_int
from neuralsde.parallel import Ranks, broadcast_state, ranks, shard, sum_over_ranks

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency
    tqdm = None

__all__ = ["DivergenceWarning", "History", "fit", "iterate_batches"]


class DivergenceWarning(RuntimeWarning):
    """Training stopped because a loss or a gradient was not finite."""


class TrainingDiverged(FloatingPointError):
    """A non-finite loss or gradient (or a solver divergence) before any epoch was kept:
    there is no state worth returning. ``.epoch``, ``.step`` (None in validation) and
    ``.phase`` (``"training"`` or ``"validation"``) say where; the model holds its initial
    state again."""

    def __init__(self, epoch: int, step: int | None, phase: str = "training"):
        self.epoch, self.step, self.phase = epoch, step, phase
        where = f"epoch {epoch}" + ("" if step is None else f" batch {step}")
        super().__init__(
            f"training diverged in {phase} at {where}, before any epoch finished with a finite "
            f"loss: nothing was kept; try a smaller lr, gradient clipping or a smaller dt"
        )


@dataclass
class History:
    """What happened during :func:`fit`.

    Attributes:
        train_loss: mean training loss per epoch.
        val_loss: validation score per epoch (lower is better); empty without validation data.
        lr: learning rate at the start of each epoch.
        epoch_time: wall-clock seconds per epoch (training and validation).
        best_epoch: epoch (0-based) whose state was restored; -1 if none was saved.
        best_val: validation score of ``best_epoch`` (training loss when there is no validation).
        stopped: why training ended: ``"epochs"``, ``"early_stopping"``, ``"callback"``,
            or ``"diverged at epoch E step S"``.
        extra: whatever the callback stored, e.g. ``{"hurst": [...]}``.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.inf
    stopped: str = "epochs"
    extra: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.stopped.startswith("diverged")

    def to_dict(self) -> dict:
        return {
            "train_loss": list(self.train_loss),
            "val_loss": list(self.val_loss),
            "lr": list(self.lr),
            "epoch_time": list(self.epoch_time),
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "stopped": self.stopped,
        }


def iterate_batches(data, batch_size: int | None, *, shuffle: bool, generator=None):
    """Yield mini-batches from ``data``.

    ``data`` is a tensor (split along dim 0), a tuple/list of tensors with the same first
    dimension (split together), or any other re-iterable of batches (yielded as is, e.g. a
    DataLoader). ``batch_size=None`` yields the whole data set as one batch.

    Example:
        >>> import torch
        >>> [b.shape[0] for b in iterate_batches(torch.zeros(5, 2), 2, shuffle=False)]
        [2, 2, 1]
    """
    tensors = _tensors_of(data)
    if tensors is None:
        yield from data
        return
    single = isinstance(data, torch.Tensor)
    n = tensors[0].shape[0]
    for t in tensors:
        if t.shape[0] != n:
            raise ValueError(
                f"train/val tensors must share their first dimension; got sizes "
                f"{[t.shape[0] for t in tensors]}"
            )
    bs = n if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, bs):
        idx = order[start : start + bs]
        chunk = tuple(t[idx] for t in tensors)
        yield chunk[0] if single else chunk


def _tensors_of(data) -> tuple | None:
    """The tensors of ``data`` split by rows (a tensor, or a tuple/list of tensors), or None
    for any other iterable of batches."""
    if isinstance(data, torch.Tensor):
        return (data,)
    if isinstance(data, tuple | list) and data and all(isinstance(d, torch.Tensor) for d in data):
        return tuple(data)
    return None


def _make_scheduler(optimizer, schedule, epochs: int, patience: int):
    if schedule is None or schedule == "constant":
        return None
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, patience // 3)
        )
    if schedule == "step":  # halve every 10 epochs (the reference protocol of Oh, Lim & Kim)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if callable(schedule):
        return schedule(optimizer)
    raise ValueError(
        f"lr_schedule must be None, 'constant', 'plateau', 'step', 'cosine' or a callable "
        f"optimizer -> scheduler; got {schedule!r}"
    )


def _finite_grads(model: nn.Module) -> bool:
    return all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _mean_loss(model, loss_fn, data, batch_size, where: Ranks) -> float:
    """Mean of ``loss_fn`` over the batches of ``data``; under torch.distributed each rank
    scores its share of every batch and the shares are summed across ranks."""
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in iterate_batches(data, batch_size, shuffle=False):
            part, share = shard(batch, where)
            if part is not None:
                loss = float(loss_fn(model, part))
                total += loss * share if where.active else loss
            count += 1
    if count == 0:
        raise ValueError("val yielded no batches")
    return sum_over_ranks([total], where)[0] / count


class _Loss(nn.Module):
    """``loss_fn(model, batch)`` as a module, so that DistributedDataParallel sees a forward
    pass whatever methods of the model the loss calls; ``batch=None`` (a rank with an empty
    share of the batch) gives a zero loss that still touches every parameter."""

    def __init__(self, model: nn.Module, loss_fn: Callable):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch):
        if batch is None:
            return sum(p.sum() for p in self.model.parameters()) * 0.0
        return self.loss_fn(self.model, batch)


def fit(
    model: nn.Module,
    loss_fn: Callable,
    train,
    val=None,
    *,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    patience: int | None = 10,
    min_epochs: int = 0,
    min_delta: float = 0.0,
    lr_schedule="plateau",
    grad_clip: float | None = 1.0,
    val_fn: Callable | None = None,
    callback: Callable | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    verbose: bool = True,
    desc: str = "train",
) -> History:
    """Train ``model`` by minimising ``loss_fn(model, batch)``; return a :class:`History`.

    Each epoch runs one pass over ``train`` (mini-batches of ``batch_size`` when ``train``
    is a tensor or a tuple of tensors, otherwise the batches it yields), then scores ``val``:
    ``val_fn(model, val)`` when given (any float, lower is better, e.g. ``-accuracy``), else
    the mean of ``loss_fn`` over ``val`` in eval mode without gradients. The state with the
    best score (best training loss without ``val``) is kept and restored at the end.
    Training stops early after ``patience`` epochs without an improvement larger than
    ``min_delta``, once at least ``min_epochs`` epochs have run (``patience=None`` never stops
    early).

    Divergence guard: a non-finite loss or gradient, or a ``FloatingPointError`` raised by
    the solver, in training or in the validation pass, stops training with a
    :class:`DivergenceWarning` naming the epoch (and step) and restores the best state saved
    so far. When no epoch was kept yet there is nothing to return: the initial state is
    restored and :class:`TrainingDiverged` is raised. A ``KeyboardInterrupt`` restores the
    best state so far, sets ``history.stopped = "interrupted"`` and is re-raised (the
    estimators then leave themselves unfitted).

    ``callback(epoch, model, history)`` runs after each epoch; it may store values in
    ``history.extra`` and returns ``True`` to stop.

    Args:
        model: the nn.Module to train (its parameters are optimised in place).
        loss_fn: ``(model, batch) -> 0-d tensor``.
        train, val: tensors, tuples of tensors, or re-iterables of batches.
        lr_schedule: ``"plateau"`` (halve on a validation plateau), ``"step"`` (halve every
            10 epochs), ``"cosine"``,
            ``None``/``"constant"``, or ``optimizer -> scheduler``.
        grad_clip: max global gradient norm (``None`` disables clipping).
        generator: torch.Generator for the mini-batch shuffling.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> x = torch.linspace(-1, 1, 32).unsqueeze(-1); y = 3 * x
        >>> net = torch.nn.Linear(1, 1)
        >>> mse = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()
        >>> h = fit(net, mse, (x, y), epochs=300, lr=0.1, patience=None, lr_schedule=None,
        ...         verbose=False)
        >>> abs(net.weight.item() - 3) < 0.01, h.stopped
        (True, 'epochs')
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (model, batch) -> loss; got {type(loss_fn)}")
    epochs = positive_int(epochs, "epochs")
    patience = positive_int(patience, "patience", allow_none=True)
    batch_size = positive_int(batch_size, "batch_size", allow_none=True)
    min_epochs = positive_int(min_epochs, "min_epochs", minimum=0)
    if optimizer is None:
        lr = positive(lr, "lr")
        weight_decay = non_negative(weight_decay, "weight_decay")
    grad_clip = positive(grad_clip, "grad_clip", allow_none=True)
    min_delta = non_negative(min_delta, "min_delta")
    where = ranks()
    if where.active:
        _check_shards(train, where)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = _make_scheduler(optimizer, lr_schedule, int(epochs), int(patience or 10))

    history = History()
    best_state = copy.deepcopy(model.state_dict())
    verbose = verbose and where.main  # one progress bar, on rank 0
    bar = tqdm(range(int(epochs)), desc=desc, disable=not verbose) if tqdm else range(int(epochs))
    step_loss = _step_loss(model, loss_fn, where)
    try:
        _epochs(bar, model, loss_fn, step_loss, where, train, val, val_fn, batch_size, generator,
                optimizer, scheduler, params, grad_clip, min_delta, patience, min_epochs,
                callback, verbose, history, best_state)  # fmt: skip
    except KeyboardInterrupt:
        history.stopped = "interrupted"
        raise
    finally:
        if tqdm and verbose:
            bar.close()
        model.load_state_dict(best_state)
        model.eval()
    broadcast_state(model, where)  # (not after an error: another rank may not be here)
    return history


def _step_loss(model, loss_fn, where: Ranks):
    """``batch -> loss`` for the training steps: ``loss_fn(model, batch)`` alone, or through
    DistributedDataParallel (which averages the gradients over the ranks in backward)."""
    if not where.active:
        return lambda batch: loss_fn(model, batch)
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(_Loss(model, loss_fn), find_unused_parameters=True)


def _check_shards(train, where: Ranks) -> None:
    """Refuse, before training, data that leaves a rank with no rows at all."""
    tensors = _tensors_of(train)
    if tensors is None:
        raise TypeError(
            f"under torch.distributed ({where.world} ranks), train must be a tensor or a tuple "
            f"of tensors that fit shards by rows; got {type(train).__name__}"
        )
    n = tensors[0].shape[0]
    if n < where.world:
        raise ValueError(
            f"train holds {n} rows for {where.world} ranks: rank(s) {n}..{where.world - 1} "
            f"would have no data; use at most {n} processes"
        )


def _epochs(bar, model, loss_fn, step_loss, where, train, val, val_fn, batch_size, generator,
            optimizer, scheduler, params, grad_clip, min_delta, patience, min_epochs, callback,
            verbose, history, best_state):  # fmt: skip
    """The epochs of :func:`fit`; ``best_state`` (a dict) is updated in place. Under
    torch.distributed every rank takes the same global mini-batches (one shuffling seed),
    trains on its share, and agrees with the others on every decision (divergence, the
    losses, early stopping), so that all ranks stop together with the same weights."""
    bad_epochs = 0
    for epoch in bar:
        start = time.perf_counter()
        history.lr.append(optimizer.param_groups[0]["lr"])
        model.train()
        total, count, diverged_step = 0.0, 0, None
        for step, batch in enumerate(
            iterate_batches(train, batch_size, shuffle=True, generator=generator)
        ):
            optimizer.zero_grad(set_to_none=True)
            part, share = shard(batch, where)
            try:
                loss = step_loss(part)
                bad = not bool(torch.isfinite(loss))
            except FloatingPointError:
                loss, bad = None, True
            if where.active:  # one rank's divergence stops them all, before any backward
                bad = sum_over_ranks([bad], where)[0] > 0
            if bad:
                diverged_step = step
                break
            (loss * (share * where.world) if where.active else loss).backward()
            if not _finite_grads(model):
                diverged_step = step
                break
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(params, float(grad_clip))
            optimizer.step()
            value = float(loss.detach())
            total += sum_over_ranks([value * share], where)[0] if where.active else value
            count += 1
        if diverged_step is not None:
            history.stopped = f"diverged at epoch {epoch} step {diverged_step}"
            history.epoch_time.append(time.perf_counter() - start)
            if history.best_epoch == -1:
                raise TrainingDiverged(epoch, diverged_step)
            warnings.warn(
                f"training stopped: loss or gradient not finite at epoch {epoch} step "
                f"{diverged_step}; restoring the best state (epoch {history.best_epoch})",
                DivergenceWarning,
                stacklevel=3,
            )
            break
        if count == 0:
            raise ValueError("train yielded no batches")
        train_loss = total / count
        history.train_loss.append(train_loss)

        if val is not None:
            model.eval()
            try:
                with torch.no_grad():
                    score = (
                        float(val_fn(model, val))
                        if val_fn
                        else _mean_loss(model, loss_fn, val, batch_size, where)
                    )
            except FloatingPointError:  # a solver's DivergenceError in the validation pass
                score = math.nan
            history.val_loss.append(score)
            if not math.isfinite(score):
                history.stopped = f"diverged in validation at epoch {epoch}"
                history.epoch_time.append(time.perf_counter() - start)
                if history.best_epoch == -1:
                    raise TrainingDiverged(epoch, None, "validation")
                warnings.warn(
                    f"training stopped: validation loss not finite at epoch {epoch}; restoring "
                    f"the best state (epoch {history.best_epoch})",
                    DivergenceWarning,
                    stacklevel=3,
                )
                break
        else:
            score = train_loss
        history.epoch_time.append(time.perf_counter() - start)

        if math.isfinite(score) and score < history.best_val - min_delta:
            history.best_val, history.best_epoch = score, epoch
            best_state.update(copy.deepcopy(model.state_dict()))
            bad_epochs = 0
        else:
            bad_epochs += 1
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(score)
            else:
                scheduler.step()
        if tqdm and verbose:
            post = {"loss": f"{train_loss:.4g}"}
            if val is not None:
                post["val"] = f"{score:.4g}"
            bar.set_postfix(post)
        if callback is not None and callback(epoch, model, history):
            history.stopped = "callback"
            break
        if patience is not None and bad_epochs >= int(patience) and epoch + 1 >= int(min_epochs):
            history.stopped = "early_stopping"
            break


class Polished(NamedTuple):
    """What :func:`polish` did: the loss before and after, the evaluations it took, and why it
    stopped early (``None`` when L-BFGS ended by its own criteria)."""

    before: float
    after: float
    evaluations: int
    stopped: str | None


class _Stop(Exception):
    pass


RESTARTS = 3  # L-BFGS runs of :func:`polish` after a failing trial point


def polish(model: nn.Module, loss_fn: Callable, data, *, max_eval: int, batch_size=None):
    """Refine a trained ``model`` by L-BFGS (strong Wolfe line search) on the whole of ``data``.

    The objective is the mean of ``loss_fn(model, batch)`` over the batches of
    :func:`iterate_batches` (in order, weighted by their rows); it should be deterministic
    (noise draws held fixed). Quasi-Newton steps follow a long curved valley of such a loss,
    along which first-order steps crawl. At most ``max_eval`` evaluations (loss and gradient).
    A trial point whose loss is non-finite or fails numerically (say, a Cholesky factor of a
    matrix no longer positive definite) starts L-BFGS again from the best state with a ten times
    smaller step (at most ``RESTARTS`` times); the model keeps the best state evaluated, so its
    loss never rises.

    Returns a :class:`Polished`.

    Example:
        >>> lin = nn.Linear(1, 1)
        >>> x = torch.linspace(-1, 1, 8)[:, None]
        >>> out = polish(lin, lambda m, b: ((m(b) - 3 * b) ** 2).mean(), x, max_eval=20)
        >>> round(lin.weight.item(), 4), out.after < out.before
        (3.0, True)
    """
    max_eval = positive_int(max_eval, "max_eval")
    params = [p for p in model.parameters() if p.requires_grad]
    batches = list(iterate_batches(data, batch_size, shuffle=False))
    share = [len(b[0] if isinstance(b, tuple | list) else b) for b in batches]
    share = [r / sum(share) for r in share]
    count = [0]

    def objective(grad: bool) -> float:
        total = 0.0
        for b, w in zip(batches, share, strict=True):
            loss = loss_fn(model, b) * w
            if grad:
                loss.backward()
            total += float(loss.detach())
        return total

    with torch.no_grad():
        before = objective(False)
    best = {"loss": before, "state": copy.deepcopy(model.state_dict())}

    def closure():
        optimizer.zero_grad()
        count[0] += 1
        try:
            value = objective(True)
        except (RuntimeError, ArithmeticError, ValueError) as err:  # numerical, at a trial point
            raise _Stop(
                f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:160]}"
            ) from err
        if not math.isfinite(value):
            raise _Stop(f"the loss became {value}")
        if value < best["loss"]:
            best.update(loss=value, state=copy.deepcopy(model.state_dict()))
        return torch.tensor(value)

    if not math.isfinite(before):
        return Polished(before, before, 0, f"the loss is {before} before polishing")
    stopped, lr = None, 1.0
    for _ in range(RESTARTS + 1):
        left = max_eval - count[0]
        if left < 1:
            break
        optimizer = torch.optim.LBFGS(params, lr=lr, max_iter=left, max_eval=left,
                                      history_size=20, line_search_fn="strong_wolfe")  # fmt: skip
        try:
            optimizer.step(closure)
            stopped = None
            break
        except _Stop as stop:  # start again from the best state with a smaller step
            stopped = str(stop)
            model.load_state_dict(best["state"])
            lr *= 0.1
    model.load_state_dict(best["state"])
    return Polished(before, best["loss"], count[0], stopped)
