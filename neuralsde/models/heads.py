"""Heads that map an encoder's hidden path to outputs, and the encoder + head models.

An *encoder* is any module with ``hidden`` and ``hidden_path(path, ts, **solver) -> (len(ts),
batch, hidden)`` (:class:`StableSDE`, :class:`NeuralCDE`). Classification reads the final
state ``z(t_end)``; regression, interpolation and forecasting read ``z`` at query times.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ClassificationHead",
    "PathClassifier",
    "PaperClassificationHead",
    "PathRegressor",
    "ReferenceClassificationHead",
    "RegressionHead",
]


class ClassificationHead(nn.Module):
    """Logits ``Linear(ReLU(Linear(tanh(z_T)))): (batch, classes)`` from the final state
    ``z_T: (batch, hidden)``: one hidden layer of width ``hidden``, the read-out of Oh, Lim &
    Kim's classifiers. On BasicMotions at 70% missing it lifted the mean validation accuracy of
    LSDE and LNSDE from 0.75 to 0.92-0.93 over a linear read-out (5 seeds; see
    ``benchmarks/results/stable_uea_report.md``)."""

    def __init__(self, hidden: int, classes: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Tanh(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)
        )

    def forward(self, z_final: torch.Tensor) -> torch.Tensor:
        return self.net(z_final)


class _BatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that normalises a training batch of one series with its running statistics
    (batch statistics of a single sample are undefined): a last mini-batch of size 1 trains."""

    def forward(self, x):
        if self.training and x.shape[0] == 1:
            return nn.functional.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class ReferenceClassificationHead(nn.Module):
    """The classifier of Oh, Lim & Kim's reference code (``torch_ists``): the read-out
    ``Linear(ReLU(Linear(tanh z_T)))`` to ``hidden`` units, then ``Linear, BatchNorm1d, ReLU,
    Dropout(dropout), Linear`` to the logits ``(batch, classes)``. The classifier's linear
    layers start Xavier-uniform with biases 0.01, as there. (The reference also multiplies the
    last layer's gradient by 100; under Adam that only changes the weight decay's relative
    size, and it would dominate gradient-norm clipping, so it is left out.)

    Example:
        >>> ReferenceClassificationHead(8, 3).eval()(torch.zeros(5, 8)).shape
        torch.Size([5, 3])
    """

    def __init__(self, hidden: int, classes: int, dropout: float = 0.1):
        super().__init__()
        self.readout = nn.Sequential(
            nn.Tanh(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.classifier = nn.Sequential(
            nn.Linear(hidden, hidden),
            _BatchNorm(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, classes),
        )
        for layer in self.classifier:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.constant_(layer.bias, 0.01)

    def forward(self, z_final: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.readout(z_final))


class PaperClassificationHead(ReferenceClassificationHead):
    """The classifier of the paper's UEA benchmark code (``benchmark_classification``): no
    read-out, ``Linear, BatchNorm1d, ReLU, Dropout, Linear`` on ``z_T`` itself. With no tanh in
    front, a final state far from 0 (long series on the ``"steps"`` clock) is normalised by
    the batch norm instead of saturating.

    Example:
        >>> PaperClassificationHead(8, 3).eval()(torch.full((5, 8), 30.0)).shape
        torch.Size([5, 3])
    """

    def __init__(self, hidden: int, classes: int, dropout: float = 0.1):
        super().__init__(hidden, classes, dropout)
        self.readout = nn.Identity()


HEADS = {
    "reference": ReferenceClassificationHead,
    "paper": PaperClassificationHead,
    "v1": ClassificationHead,
}


class RegressionHead(nn.Module):
    """Outputs ``Linear(z(t)): (..., outputs)`` at every query time, ``z: (..., hidden)``."""

    def __init__(self, hidden: int, outputs: int):
        super().__init__()
        self.linear = nn.Linear(hidden, outputs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)


def _solver_times(path, ts=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Times to solve at (start of the path first) and the index of each query time."""
    t0, t1 = (float(v) for v in (path.interval[0], path.interval[-1]))
    if ts is None:
        return torch.tensor([t0, t1]), torch.tensor([1])
    ts = torch.as_tensor(ts, dtype=torch.get_default_dtype()).reshape(-1)
    if ts.numel() and float(ts[0]) < t0:
        raise ValueError(
            f"query times must not start before the path's first time {t0}; got {float(ts[0])}"
        )
    if ts.numel() > 1 and not bool((ts.diff() > 0).all()):
        raise ValueError("query times must be strictly increasing")
    if ts.numel() and float(ts[0]) == t0:
        return ts, torch.arange(ts.numel())
    return torch.cat([torch.tensor([t0]).to(ts), ts]), torch.arange(1, ts.numel() + 1)


class PathClassifier(nn.Module):
    """Encoder + head: ``forward(path, **solver) -> logits``. ``head="v1"`` is
    :class:`ClassificationHead`, ``"reference"`` :class:`ReferenceClassificationHead`."""

    def __init__(self, encoder: nn.Module, classes: int, head: str = "v1"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {sorted(HEADS)}; got {head!r}")
        self.encoder = encoder
        self.head = HEADS[head](encoder.hidden, classes)

    def forward(self, path, **solver) -> torch.Tensor:
        ts, _ = _solver_times(path)
        return self.head(self.encoder.hidden_path(path, ts, **solver)[-1])


class PathRegressor(nn.Module):
    """Encoder + :class:`RegressionHead`: ``forward(path, ts, **solver) -> (len(ts), batch,
    outputs)``; ``ts`` strictly increasing, not before the path's first time (times past its
    end forecast with the control held at its last value)."""

    def __init__(self, encoder: nn.Module, outputs: int):
        super().__init__()
        self.encoder = encoder
        self.head = RegressionHead(encoder.hidden, outputs)

    def forward(self, path, ts, **solver) -> torch.Tensor:
        solve_ts, keep = _solver_times(path, ts)
        return self.head(self.encoder.hidden_path(path, solve_ts, **solver)[keep])
