"""Heads that map an encoder's hidden path to outputs, and the encoder + head models.

An *encoder* is any module with ``hidden`` and ``hidden_path(path, ts, **solver) -> (len(ts),
batch, hidden)`` (:class:`StableSDE`, :class:`NeuralCDE`). Classification reads the final
state ``z(t_end)``; regression, interpolation and forecasting read ``z`` at query times.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ClassificationHead", "PathClassifier", "PathRegressor", "RegressionHead"]


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
    """Encoder + :class:`ClassificationHead`: ``forward(path, **solver) -> logits``."""

    def __init__(self, encoder: nn.Module, classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = ClassificationHead(encoder.hidden, classes)

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
