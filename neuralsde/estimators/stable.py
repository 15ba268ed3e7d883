"""scikit-learn estimators over neuralsde models: classify and regress irregular, gappy series.

``SDEClassifier`` reads the final hidden state of a stable neural SDE (or a Neural CDE);
``SDERegressor`` reads it at query times (interpolation and forecasting). Both accept an xarray
object, an ``IrregularBatch``, a ``(B, L, C)`` array with NaN for missing values, or a list of
ragged ``(L_i, C)`` arrays, train with the shared loop :func:`neuralsde.train.fit`, and save as
weights + a JSON config (never pickled code).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from neuralsde.core.arguments import check_device
from neuralsde.core.keyed import KeyedGenerator
from neuralsde.data import IrregularBatch
from neuralsde.data.coerce import check_observed
from neuralsde.data.scaling import Scaler
from neuralsde.estimators.base import NeuralSDEEstimator, check_steps
from neuralsde.estimators.chunked import chunked_predict, is_chunked
from neuralsde.models import NeuralCDE, PathClassifier, PathRegressor, StableSDE, default_dt
from neuralsde.models.stable import KINDS
from neuralsde.train import fit as train_loop

__all__ = ["SDEClassifier", "SDERegressor"]

ESTIMATOR_KINDS = (*KINDS, "ncde")
CLOCKS = ("unit", "steps")

# training protocols: the optimiser, the learning-rate schedule, gradient clipping, the first
# epoch early stopping may stop at, and the defaults of ``batch_size`` and ``lr`` (functions of
# the training-set size and of the batch size).
# "reference": Oh, Lim & Kim's code (torch_ists/model_run.py): Adam with L2 weight decay
# 0.01 lr, StepLR(10, 0.5), no early stop before epoch 20, no clipping, the largest batch of
# 16/32/64/128 that is at most half the training set, lr 1e-3 per 16 series of the batch.
# "adamw": AdamW, lr 1e-2 halved on a validation plateau, gradient norm clipped at 1; it beat
# "reference" on mean validation accuracy for every model on four UEA/UCR sets
# (benchmarks/results/stable_uea7.md, ablation rows "+schedule" and "+read-out"). Its batch:
# the largest of 16/32/64/128 that leaves at least 8 steps per epoch (16 below 256 series).
# Against a fixed 16 it is the same on the four small sets and won on ItalyPowerDemand (767
# training series, batch 64: mean validation accuracy 0.943 against 0.864 over five models
# at rates 0 and 0.7, 2x faster); the reference's N/2 rule lost (0.655 against 0.705 over
# four sets), results/stable_uea7_batch.json.
# "v1": this library's first protocol: "adamw" with full-batch steps at lr 1e-3.
_ADAMW = {
    "optimizer": lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=0.0),
    "lr_schedule": "plateau",
    "grad_clip": 1.0,
    "min_epochs": 0,
}
SCHEDULES = {
    "reference": {
        "optimizer": lambda params, lr: torch.optim.Adam(params, lr=lr, weight_decay=0.01 * lr),
        "lr_schedule": "step",
        "grad_clip": None,
        "min_epochs": 20,
        "batch_size": lambda n: max([b for b in (16, 32, 64, 128) if b <= n / 2], default=16),
        "lr": lambda batch_size: 1e-3 * batch_size / 16,
    },
    "adamw": {
        **_ADAMW,
        "batch_size": lambda n: max([b for b in (16, 32, 64, 128) if n / b >= 8], default=16),
        "lr": lambda batch_size: 1e-2,
    },
    "v1": {**_ADAMW, "batch_size": lambda n: n, "lr": lambda batch_size: 1e-3},
}


class _ScaledPath:
    """A control path whose channels are multiplied by fixed factors (``evaluate`` and
    ``derivative``): keeps observation counts O(1) whatever the series length."""

    def __init__(self, path, scale: torch.Tensor):
        self.path, self.scale, self.interval = path, scale, path.interval

    def evaluate(self, t):
        return self.path.evaluate(t) * self.scale

    def derivative(self, t):
        return self.path.derivative(t) * self.scale

    @property
    def grid_points(self):
        return self.path.grid_points


class _SDEBase(NeuralSDEEstimator):
    """Shared parameters, preprocessing, model building and persistence."""

    def __init__(
        self,
        kind="lnsde",
        hidden=32,
        depth=2,
        method="euler",
        dt=None,
        epochs=100,
        lr=None,
        batch_size=None,
        patience=10,
        validation_fraction=0.15,
        device="cpu",
        random_state=0,
        verbose=True,
        width=None,
        architecture="reference",
        intensity=False,
        schedule="reference",
        clock="unit",
    ):
        self.kind = kind
        self.clock = clock
        self.hidden = hidden
        self.depth = depth
        self.width = width
        self.architecture = architecture
        self.intensity = intensity
        self.schedule = schedule
        self.method = method
        self.dt = dt
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- checks and scaling
    def _check_params(self):
        if self.kind not in ESTIMATOR_KINDS:
            raise ValueError(f"kind must be one of {ESTIMATOR_KINDS}; got {self.kind!r}")
        for name in ("hidden", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.dt is not None and not (float(self.dt) > 0 and math.isfinite(float(self.dt))):
            raise ValueError(f"dt must be a positive number or None; got {self.dt!r}")
        for name, allowed in (("architecture", ("reference", "v1")),
                              ("schedule", tuple(SCHEDULES)), ("clock", CLOCKS)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        for name in ("width", "batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | np.integer) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None; got {value!r}")
        if self.lr is not None and not (float(self.lr) > 0 and math.isfinite(float(self.lr))):
            raise ValueError(f"lr must be a positive number or None; got {self.lr!r}")
        check_device(self.device)
        if not 0 <= float(self.validation_fraction) < 1:
            raise ValueError(
                f"validation_fraction must lie in [0, 1); got {self.validation_fraction!r}"
            )

    def _fit_scaling(self, batch):
        """Times are shifted to start at 0 and measured on the model's clock, values are
        standardised per channel (``scaler_``). ``clock="unit"``: one time unit is the training
        span, so ``t`` runs over ``[0, 1]``. ``clock="steps"``: one time unit is the default
        solver step ``max(min observed gap, span / 1000)``, so ``t`` runs over ``[0, n_steps]``,
        as in the reference code, whose times are observation indices. A drift bounded by tanh
        moves the state by at most the clock's span, so under ``"unit"`` it cannot grow with
        the series' length. The path's time channel spans ``[0, 1]`` under either clock."""
        check_observed(batch)
        scaler = Scaler.fit(batch)
        span = scaler.time_scale
        step = default_dt(scaler.transform_times(scaler.raw_times(batch)))  # on [0, 1]
        self.scaler_ = scaler.with_time_scale(span * step if self.clock == "steps" else span)
        self.time_span_ = span / self.scaler_.time_scale
        self.max_length_ = int(batch.lengths.max())
        self.n_channels_ = batch.n_channels
        self.channels_ = batch.channel_names
        dt = float(self.dt) if self.dt is not None else span * step
        self.dt_ = dt / self.scaler_.time_scale

    def _tensors(self, X, name="X", whole=True):
        """Validated, scaled ``(times (B, L), values (B, L, C))`` tensors on ``device``.
        ``whole=False``: ``X`` is a chunk of a batch (the batch's stamps are checked)."""
        batch = self._batch(X, name)
        stamps = batch.times[~torch.isnan(batch.times)]
        if whole and int(torch.unique(stamps).numel()) < 2:
            raise ValueError(
                f"{name} holds a single distinct time stamp ({float(stamps[0]):g}) across all "
                f"its series; {type(self).__name__} reads each series as a path through time "
                f"and needs at least 2 distinct time stamps"
            )
        times, values = self.scaler_.transform(batch, name)
        dtype = torch.get_default_dtype()
        return times.to(dtype).to(self.device), values.to(dtype).to(self.device), batch

    def _path(self, times, values, grid=None):
        from neuralsde.data.interpolation import control_path

        path = control_path(times, values, kind="hermite", intensity=bool(self.intensity),
                            grid=grid)  # fmt: skip
        if not self.intensity and self.time_span_ == 1.0:
            return path
        c = self.n_channels_
        scale = torch.ones(1 + (2 if self.intensity else 1) * c, dtype=values.dtype,
                           device=values.device)  # fmt: skip
        scale[0] = 1.0 / self.time_span_
        scale[1 + c :] = 1.0 / self.max_length_
        return _ScaledPath(path, scale)

    def _encoder(self):
        control = 1 + (2 if self.intensity else 1) * self.n_channels_
        width = None if self.width is None else int(self.width)
        if self.kind == "ncde":
            return NeuralCDE(control, int(self.hidden), width=width, depth=int(self.depth))
        return StableSDE(control, int(self.hidden), kind=self.kind, width=width,
                         depth=int(self.depth), architecture=self.architecture)  # fmt: skip

    def _solver(self, generator):
        return {"method": self.method, "dt": self.dt_, "generator": generator}

    def _generator(self, offset=0):
        # a CPU generator: the solver draws its per-chunk seeds from it on any device
        seed = 0 if self.random_state is None else int(self.random_state)
        return torch.Generator().manual_seed(seed + offset)

    def _grid(self, stamps) -> torch.Tensor:
        """The control path's knots ``(T,)`` on the model's axis from the distinct stamps of the
        whole batch (``scaler_.distinct_times``): every chunk of a batch builds its paths on
        the same knots, so a chunk predicts exactly what the whole batch predicts for it."""
        t = self.scaler_.transform_times(torch.as_tensor(stamps, dtype=torch.float64))
        grid = torch.unique(t.to(torch.get_default_dtype()))
        if grid.numel() < 2:
            raise ValueError(
                f"X holds a single distinct time stamp across all its series; "
                f"{type(self).__name__} reads each series as a path through time and needs at "
                f"least 2 distinct time stamps"
            )
        return grid.to(self.device)

    def _noise(self, batch) -> KeyedGenerator:
        """Prediction noise keyed by series label (seeded from ``random_state``): a series
        draws the same noise in any batch or chunk."""
        seed = 0 if self.random_state is None else int(self.random_state)
        return KeyedGenerator.for_labels(seed + 1, batch.series)

    def _seeded_model(self):
        """The model, initialised from ``random_state`` (the global RNG is left untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if self.random_state is None else int(self.random_state))
            return self._build_model().to(self.device)

    def _effective_batch_size(self, n: int) -> int:
        """``batch_size``, or the schedule's default for ``n`` training series."""
        if self.batch_size is not None:
            return int(self.batch_size)
        return int(SCHEDULES[self.schedule]["batch_size"](n))

    def _effective_lr(self, batch_size: int) -> float:
        """``lr``, or the schedule's default for ``batch_size``."""
        if self.lr is not None:
            return float(self.lr)
        return float(SCHEDULES[self.schedule]["lr"](batch_size))

    def _train(self, loss_fn, train, val, callback=None):
        n = int(train[0].shape[0])
        self.batch_size_ = self._effective_batch_size(n)
        self.lr_ = self._effective_lr(self.batch_size_)
        plan = SCHEDULES[self.schedule]
        params = [p for p in self.model_.parameters() if p.requires_grad]
        seed = 0 if self.random_state is None else int(self.random_state)
        # dropout draws from the global RNG: seed a forked one, leave the user's untouched
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._train_loop(loss_fn, train, val, plan, params, seed, callback)

    def _train_loop(self, loss_fn, train, val, plan, params, seed, callback):
        self.history_ = train_loop(
            self.model_, loss_fn, train, val, epochs=int(self.epochs), lr=self.lr_,
            batch_size=self.batch_size_, patience=self.patience, verbose=bool(self.verbose),
            optimizer=plan["optimizer"](params, self.lr_), lr_schedule=plan["lr_schedule"],
            grad_clip=plan["grad_clip"], min_epochs=plan["min_epochs"], callback=callback,
            generator=torch.Generator().manual_seed(seed),
            desc=f"{type(self).__name__}({self.kind})",
        )  # fmt: skip

    _fitted_json = ("time_span_", "max_length_", "n_channels_", "channels_", "dt_")

    def _build_modules(self):
        self.model_ = self._build_model().to(self.device)


def _stratified_holdout(y, fraction, seed):
    """Indices (train, validation) holding out ``fraction`` of each class (at least one)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        k = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        val.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))


# ------------------------------------------------------------------------- classifier
class SDEClassifier(ClassifierMixin, _SDEBase):
    """Classify irregular, gappy multichannel series with a stable neural SDE.

    The control path ``X(t)`` (hermite cubic of ``[time, values]``, plus the per-channel
    observation counts with ``intensity=True``) drives ``dz = f(t, z~) dt + g(t, z) dW`` from
    ``z0 = Linear(X(t0))``; the head reads the final state. The model is that of Oh, Lim &
    Kim's reference code (``architecture`` and ``head`` ``"reference"``; ``"v1"`` gives this
    library's first version of each); the training protocol is ``schedule="adamw"``, which
    beat the reference's on validation (see ``schedule`` below). Times are rescaled
    to ``[0, 1]`` over the training span (``clock="unit"``), values are standardised per
    channel, and ``dt`` defaults to ``max(min observed gap, 1e-3)`` on the rescaled times.
    For the paper's hyper-parameter search use :func:`neuralsde.tune`.

    Parameters:
        kind: ``"lsde"``, ``"lnsde"``, ``"gsde"``, ``"naive"`` or ``"ncde"``.
        hidden, width, depth: hidden-state size, width of the drift's hidden layers (None:
            ``hidden``) and depth of the drift (:class:`~neuralsde.models.StableSDE`).
        method, dt: solver method and step (in the data's time units; None: the default).
        epochs, lr, batch_size, patience: training, early stopping on validation loss.
            ``batch_size=None`` and ``lr=None`` take the schedule's defaults.
            ``schedule="adamw"`` (the default): AdamW, lr ``1e-2`` halved when the
            validation loss stalls, gradient norm clipped at 1, batches of the largest of
            16/32/64/128 series that leaves at least 8 steps per epoch (16 for fewer than 256
            training series, 64 for 767), early stopping after ``patience=20`` epochs without
            a better validation loss. It beat
            ``"reference"`` on mean validation accuracy for every model on four UEA/UCR sets
            at missing rates 0 and 0.7. ``"reference"`` (Oh, Lim & Kim's code): Adam with
            weight decay ``0.01 lr``, lr halved every 10 epochs, no early stop before epoch
            20, the largest batch of 16/32/64/128 that is at most half the training set and
            lr ``1e-3 * batch_size / 16``. ``"v1"``: ``"adamw"`` with full-batch steps at lr
            ``1e-3``.
        architecture: ``"reference"`` or ``"v1"`` drift and diffusion modules.
        head: ``"reference"`` (read-out, then Linear-BatchNorm-ReLU-Dropout-Linear),
            ``"paper"`` (Linear-BatchNorm-ReLU-Dropout-Linear on ``z_T`` itself, as the
            paper's UEA code) or ``"v1"`` (``Linear(ReLU(Linear(tanh z_T)))``).
        intensity: append the cumulative observation count of each channel to the path.
        clock: ``"unit"`` (the training span rescaled to ``[0, 1]``) or ``"steps"`` (one time
            unit per default step, so a regular series of length ``L`` runs over ``[0, L -
            1]`` with ``dt = 1``, as the reference code's index times do). A tanh-bounded drift
            moves the state by at most the clock's span: 1 on ``"unit"``, ``L - 1`` on
            ``"steps"``. ``"steps"`` lost on validation on four UEA/UCR sets with either head
            and a tenth of the learning rate (``benchmarks/results/stable_uea7.md``).
        validation_fraction: share of the training series held out (stratified) for early
            stopping when ``fit`` gets no ``eval_set``.
        device, random_state, verbose: where to run, the seed, the progress bar.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(20, 10, 2)); y = np.repeat([0, 1], 10); X[y == 1] += 1
        >>> clf = SDEClassifier(hidden=8, epochs=3, verbose=False).fit(X, y)
        >>> clf.predict(X).shape
        (20,)
    """

    _fitted_json = (*_SDEBase._fitted_json, "classes_")

    def __init__(
        self,
        kind="lnsde",
        hidden=32,
        depth=2,
        method="euler",
        dt=None,
        epochs=100,
        lr=None,
        batch_size=None,
        patience=20,
        validation_fraction=0.15,
        device="cpu",
        random_state=0,
        verbose=True,
        width=None,
        architecture="reference",
        intensity=False,
        schedule="adamw",
        head="reference",
        clock="unit",
    ):
        super().__init__(
            kind=kind, hidden=hidden, depth=depth, method=method, dt=dt, epochs=epochs, lr=lr,
            batch_size=batch_size, patience=patience, validation_fraction=validation_fraction,
            device=device, random_state=random_state, verbose=verbose, width=width,
            architecture=architecture, intensity=intensity, schedule=schedule, clock=clock,
        )  # fmt: skip
        self.head = head

    def _build_model(self):
        return PathClassifier(self._encoder(), len(self.classes_), head=self.head)

    def fit(self, X, y=None, eval_set=None, callback=None):
        """Fit on series ``X`` with labels ``y: (B,)`` (default: labels carried by ``X``).
        ``eval_set=(X_val, y_val)`` replaces the internal validation split;
        ``callback(epoch, model, history)`` runs after each epoch and returns True to stop
        (:func:`neuralsde.train.fit`)."""
        self._check_params()
        batch = self._batch(X, fitting=True)
        y = _labels(y, batch, "y")
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has a single class ({classes[0].item()!r}); "
                "a classifier needs at least 2 classes"
            )
        self.classes_ = classes
        self._fit_scaling(batch)
        if eval_set is not None:
            X_val, y_val = eval_set
            train_idx, val_batch = np.arange(len(y)), self._batch(X_val, "eval_set X")
            y_val = _labels(y_val, val_batch, "eval_set y")
            unseen = sorted(set(np.unique(y_val).tolist()) - set(classes.tolist()))
            if unseen:
                raise ValueError(
                    f"eval_set y holds labels the training labels y do not: {unseen[:5]}"
                )
            val_y = np.searchsorted(classes, y_val)
        elif self.patience is not None and self.validation_fraction > 0:
            seed = 0 if self.random_state is None else int(self.random_state)  # as the model's
            train_idx, val_idx = _stratified_holdout(y_idx, self.validation_fraction, seed)
            if len(np.unique(y_idx[train_idx])) < len(classes):
                raise ValueError(
                    f"validation_fraction={self.validation_fraction!r} holds out every training "
                    f"series of some class ({len(y)} series, {len(classes)} classes); lower it "
                    f"or pass eval_set"
                )
            val_batch, val_y = (batch[val_idx], y_idx[val_idx]) if len(val_idx) else (None, None)
        else:
            train_idx, val_batch, val_y = np.arange(len(y)), None, None
        times, values, _ = self._tensors(batch[train_idx])
        targets = torch.as_tensor(y_idx[train_idx], device=self.device)
        train = (times, values, targets)
        val = None
        if val_batch is not None:
            vt, vv, _ = self._tensors(val_batch, "eval_set X")
            val = (vt, vv, torch.as_tensor(val_y, device=self.device))
        self.model_ = self._seeded_model()
        generator = self._generator()

        def loss_fn(model, data):
            t, v, target = data
            logits = model(self._path(t, v), **self._solver(generator))
            return torch.nn.functional.cross_entropy(logits, target)

        self._train(loss_fn, train, val, callback)
        return self

    def _logits(self, X, stamps=None) -> torch.Tensor:
        """Logits ``(B, n_classes)``; ``stamps``: the distinct stamps of the whole batch when
        ``X`` is a chunk of it."""
        check_is_fitted(self, "model_")
        times, values, batch = self._tensors(X, whole=stamps is None)
        grid = self._grid(self.scaler_.distinct_times(batch) if stamps is None else stamps)
        noise = self._noise(batch)
        out = []
        with torch.no_grad():
            step = self.batch_size or times.shape[0]
            for s in range(0, times.shape[0], step):
                rows = slice(s, s + step)
                path = self._path(times[rows], values[rows], grid)
                out.append(self.model_(path, **self._solver(noise.subset(rows))))
        return torch.cat(out)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(B, n_classes)`` in the order of ``classes_``; for a
        dask-backed ``X``, a lazy ``xarray.DataArray`` ``(series, class)``."""
        if is_chunked(X):
            return chunked_predict(self, X, "proba")
        return self._proba(X)

    def _proba(self, X, stamps=None) -> np.ndarray:
        return torch.softmax(self._logits(X, stamps), dim=-1).cpu().double().numpy()

    def predict(self, X) -> np.ndarray:
        """Predicted labels ``(B,)``; for a dask-backed ``X``, a lazy ``xarray.DataArray``
        ``(series,)``."""
        if is_chunked(X):
            return chunked_predict(self, X, "labels")
        return self._labels(X)

    def _labels(self, X, stamps=None) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.classes_[self._logits(X, stamps).argmax(-1).cpu().numpy()]

    def _predict_block(self, kind, X, stamps):
        """``"labels"`` ``(series,)`` or ``"proba"`` ``(series, class)`` of a chunk of series
        (:mod:`neuralsde.estimators.chunked`)."""
        import xarray as xr

        batch = self._batch(X)
        series = np.asarray(batch.series)
        if kind == "proba":
            return xr.DataArray(self._proba(batch, stamps), dims=("series", "class"),
                                coords={"series": series, "class": self.classes_},
                                name="probability")  # fmt: skip
        return xr.DataArray(self._labels(batch, stamps), dims=("series",),
                            coords={"series": series}, name="label")  # fmt: skip


def _labels(y, batch, name):
    if y is None:
        if batch.labels is None:
            raise ValueError(f"{name} is None and X carries no labels; pass labels y of shape (B,)")
        y = batch.labels
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != batch.batch_size:
        raise ValueError(
            f"{name} must have shape ({batch.batch_size},) (one label per series); "
            f"got shape {y.shape}"
        )
    if y.dtype == object:
        missing = [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and v != v)]
        if missing:
            raise ValueError(f"{name} holds missing labels (None or NaN) at {missing[:5]}")
        kinds = sorted({type(v).__name__ for v in y})
        if len(kinds) > 1:
            raise TypeError(f"{name} mixes label types {kinds}; use one type for all labels")
    elif y.dtype.kind == "f" and not bool(np.isfinite(y).all()):
        raise ValueError(
            f"{name} holds missing labels (NaN or inf) at {np.flatnonzero(~np.isfinite(y))[:5]}"
            f"; NaN would otherwise become a class of its own"
        )
    return y


# -------------------------------------------------------------------------- regressor
class SDERegressor(RegressorMixin, _SDEBase):
    """Interpolate and forecast irregular series: read a stable neural SDE's hidden state at
    query times, ``x_hat(t) = Linear(z(t))``.

    ``fit(X)`` learns to reconstruct the observed values of ``X`` from a control path built on
    a random ``1 - holdout`` share of them (``task="interpolate"``) or on the first ``1 -
    holdout`` share of each series' time span (``task="forecast"``; past that, the control is
    held at its last value). ``fit(X, y)`` with targets ``y`` aligned with ``X``'s time stamps
    (same layout, NaN = no target) learns ``y`` from the whole of ``X`` instead.
    ``predict(X, times=...)`` returns an ``xarray.DataArray (series, time, channel)``.

    Parameters are those of :class:`SDEClassifier`, plus ``task`` and ``holdout``.

    Example:
        >>> import numpy as np
        >>> X = np.sin(np.linspace(0, 3, 12))[None, :, None] * np.ones((6, 1, 1))
        >>> reg = SDERegressor(hidden=8, epochs=2, verbose=False).fit(X)
        >>> reg.predict(X, times=[0.5, 13.0]).dims
        ('series', 'time', 'channel')
    """

    _fitted_json = (*_SDEBase._fitted_json, "n_outputs_", "supervised_", "y_mean_", "y_std_")

    def __init__(
        self,
        kind="lnsde",
        hidden=32,
        depth=2,
        method="euler",
        dt=None,
        epochs=100,
        lr=1e-3,
        batch_size=None,
        patience=10,
        validation_fraction=0.15,
        device="cpu",
        random_state=0,
        verbose=True,
        task="interpolate",
        holdout=0.3,
        width=None,
        architecture="v1",
        intensity=True,
        schedule="v1",
        clock="unit",
    ):
        super().__init__(
            kind=kind,
            hidden=hidden,
            depth=depth,
            method=method,
            dt=dt,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            patience=patience,
            validation_fraction=validation_fraction,
            device=device,
            random_state=random_state,
            verbose=verbose,
            width=width,
            architecture=architecture,
            intensity=intensity,
            schedule=schedule,
            clock=clock,
        )
        self.task = task
        self.holdout = holdout

    def _build_model(self):
        return PathRegressor(self._encoder(), int(self.n_outputs_))

    def _targets(self, batch, y):
        if y is None:
            return None
        y_batch = (None if isinstance(y, np.ndarray | torch.Tensor)
                   else IrregularBatch.coerce(y, "y"))  # fmt: skip
        arr = y_batch.values if y_batch is not None else torch.as_tensor(np.asarray(y, float))
        if arr.ndim == 2:
            arr = arr.unsqueeze(-1)
        if tuple(arr.shape[:2]) != tuple(batch.values.shape[:2]):
            raise ValueError(
                f"y must be aligned with X: shape (B, L, outputs) = "
                f"({batch.values.shape[0]}, {batch.values.shape[1]}, outputs); "
                f"got shape {tuple(arr.shape)}"
            )
        if not bool(torch.isfinite(arr).any()):
            raise ValueError("y holds no target (all NaN); pass observed targets, or y=None")
        return arr

    def fit(self, X, y=None, callback=None):
        """Fit on series ``X`` (and optional aligned targets ``y``); returns ``self``."""
        self._check_params()
        if self.task not in ("interpolate", "forecast"):
            raise ValueError(f"task must be 'interpolate' or 'forecast'; got {self.task!r}")
        if not 0 <= float(self.holdout) < 1:
            raise ValueError(f"holdout must lie in [0, 1); got {self.holdout!r}")
        batch = self._batch(X, fitting=True)
        y_raw = self._targets(batch, y)
        self._fit_scaling(batch)
        self.supervised_ = y_raw is not None
        if y_raw is not None:
            self.y_mean_ = [float(v) for v in np.nanmean(y_raw.double().numpy(), axis=(0, 1))]
            self.y_std_ = [float(v) or 1.0 for v in np.nanstd(y_raw.double().numpy(), axis=(0, 1))]
        self.n_outputs_ = int(y_raw.shape[-1]) if y_raw is not None else self.n_channels_
        times, values, _ = self._tensors(batch)
        targets = self._scale_y(y_raw) if y_raw is not None else values
        n = times.shape[0]
        use_val = self.patience is not None and self.validation_fraction > 0 and n > 1
        k = max(1, int(round(self.validation_fraction * n))) if use_val else 0
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(int(self.random_state or 0))
        )
        val_idx, train_idx = order[:k], order[k:]
        train = (times[train_idx], values[train_idx], targets[train_idx])
        val = (times[val_idx], values[val_idx], targets[val_idx]) if k else None
        self.model_ = self._seeded_model()
        generator = self._generator()
        mask_gen = torch.Generator(device=self.device).manual_seed(int(self.random_state or 0))

        def loss_fn(model, data):
            t, v, target = data
            control = v if self.supervised_ else self._thin(t, v, mask_gen)
            grid, pred = self._predict_grid(model, t, control, generator)
            on_grid = _to_union(t, grid, target)
            seen = ~torch.isnan(on_grid)
            return ((pred - torch.nan_to_num(on_grid))[seen] ** 2).mean()

        self._train(loss_fn, train, val, callback)
        return self

    def _scale_y(self, y):
        mean = torch.tensor(self.y_mean_, dtype=torch.float64)
        std = torch.tensor(self.y_std_, dtype=torch.float64)
        return ((y.double() - mean) / std).to(torch.get_default_dtype()).to(self.device)

    def _thin(self, t, v, generator):
        """The values the control path sees during self-supervised training."""
        if self.holdout == 0:
            return v
        if self.task == "interpolate":
            keep = torch.rand(v.shape, generator=generator, device=v.device) >= self.holdout
        else:
            start = torch.nan_to_num(t, nan=math.inf).amin(1, keepdim=True)
            end = torch.nan_to_num(t, nan=-math.inf).amax(1, keepdim=True)
            keep = (t <= start + (1 - self.holdout) * (end - start)).unsqueeze(-1).expand_as(v)
        thinned = torch.where(keep, v, torch.full_like(v, math.nan))
        # every series keeps at least its first observation per channel
        first = ~torch.isnan(v) & (torch.cumsum(~torch.isnan(v), dim=1) == 1)
        return torch.where(first, v, thinned)

    def _predict_grid(self, model, t, v, generator, query=None, grid=None):
        """Predictions ``(B, T, outputs)`` on ``query`` (default: the union grid of ``t``);
        the paths' knots are ``grid`` (default: the union grid of ``t``)."""
        path = self._path(t, v, grid)
        grid = torch.unique(t[torch.isfinite(t)]) if query is None else query
        out = model(path, grid, **self._solver(generator))
        return grid, out.transpose(0, 1)

    def _query(self, t, stamps, times):
        """``(query (T,) on the model's axis, the user's times (T,))`` for ``predict``, from
        the distinct stamps of the whole batch."""
        if times is None:
            raw = stamps
        else:
            raw = self.scaler_.encode(times, "times")
            if np.any(np.diff(raw) <= 0):
                raise ValueError(f"times must be strictly increasing; got {times!r}")
        model_t = self.scaler_.transform_times(raw)
        start = float(t[0])
        if model_t[0] < start - 1e-9:
            first = self.scaler_.inverse_times(np.array([start]))[0]
            raise ValueError(
                f"times must not start before the first observation of X ({first}); got "
                f"{np.atleast_1d(times)[0]}"
            )
        check_steps(float(model_t[-1]) - start, self.dt_, "times")
        user = self.scaler_.decode(raw)
        query = torch.as_tensor(model_t, dtype=torch.get_default_dtype(), device=self.device)
        return query, user

    def predict(self, X, times=None):
        """Values at ``times`` (1-D: numbers, or dates for data with datetime stamps; default:
        every time stamp of ``X``) for every series: an ``xarray.DataArray`` with dims
        ``(series, time, channel)`` whose time coordinate is in the user's units. Times after
        a series' last observation are forecasts. For a dask-backed ``X`` (chunked along
        ``series``), a lazy ``DataArray`` with the same dims and coordinates."""
        if is_chunked(X):
            return chunked_predict(self, X, "values", times=times)
        return self._values(X, times=times)

    def _values(self, X, stamps=None, times=None):
        import xarray as xr

        check_is_fitted(self, "model_")
        t, v, batch = self._tensors(X, whole=stamps is None)
        stamps = self.scaler_.distinct_times(batch) if stamps is None else stamps
        grid = self._grid(stamps)
        query, user_times = self._query(grid, stamps, times)
        with torch.no_grad():
            _, pred = self._predict_grid(self.model_, t, v, self._noise(batch), query, grid)
        pred = pred.double().cpu()
        if self.supervised_:
            pred = pred * torch.tensor(self.y_std_) + torch.tensor(self.y_mean_)
            channels = np.arange(self.n_outputs_)
        else:
            pred = self.scaler_.inverse_values(pred)
            channels = np.asarray(self.channels_)
        return xr.DataArray(
            pred.numpy(),
            dims=("series", "time", "channel"),
            coords={"series": np.asarray(batch.series), "time": user_times, "channel": channels},
            name="prediction",
        )

    def score(self, X, y=None, sample_weight=None):
        """R^2 of the predictions at ``X``'s time stamps against ``y`` (default: ``X``'s own
        observed values), over the observed entries. A dask-backed ``X`` is scored against
        its own values, chunk by chunk."""
        if is_chunked(X):
            if y is not None:
                raise ValueError(
                    "y: a dask-backed X is scored against its own observed values; pass y=None "
                    "(or score in memory)"
                )
            parts = chunked_predict(self, X, "score_parts").sum("series").values
        else:
            batch = self._batch(X)
            target = self._targets(batch, y) if y is not None else None
            parts = self._score_parts(batch, None, target).sum(0)
        resid, count, total, squares = (float(p) for p in parts)
        spread = squares - total * total / count if count else 0.0
        return 1 - resid / spread if spread > 0 else 0.0

    def _score_parts(self, X, stamps=None, target=None) -> np.ndarray:
        """Per series ``(B, 4)``: the squared residuals, the number of observed targets, their
        sum and their sum of squares (R^2 of any set of series from the sums)."""
        batch = self._batch(X)
        target = batch.values if target is None else target
        stamps = self.scaler_.distinct_times(batch) if stamps is None else stamps
        pred = self._values(batch, stamps).values
        raw = self.scaler_.raw_times(batch)
        on_grid = _to_union(raw, torch.as_tensor(stamps), target.double()).numpy()
        seen = ~np.isnan(on_grid)
        y = np.where(seen, on_grid, 0.0)
        resid = np.where(seen, (pred - y) ** 2, 0.0)
        return np.stack([resid.sum((1, 2)), seen.sum((1, 2)), y.sum((1, 2)),
                         (y * y).sum((1, 2))], -1)  # fmt: skip

    def _predict_block(self, kind, X, stamps, **kwargs):
        """``"values"`` (as :meth:`predict`) or ``"score_parts"`` ``(series, part)`` of a chunk
        of series (:mod:`neuralsde.estimators.chunked`)."""
        import xarray as xr

        if kind == "values":
            return self._values(X, stamps, **kwargs)
        batch = self._batch(X)
        parts = self._score_parts(batch, stamps)
        return xr.DataArray(parts, dims=("series", "part"),
                            coords={"series": np.asarray(batch.series),
                                    "part": ["resid", "count", "sum", "squares"]})  # fmt: skip


def _to_union(t, grid, values):
    """Scatter ``values (B, L, K)`` at ``t (B, L)`` onto ``grid (T,)`` -> ``(B, T, K)``."""
    batch, _, k = values.shape
    out = values.new_full((batch, grid.shape[0], k), math.nan)
    finite = torch.isfinite(t)
    rows, cols = torch.nonzero(finite, as_tuple=True)
    idx = torch.searchsorted(grid.to(t), t[rows, cols])
    return out.index_put((rows, idx), values[rows, cols])
