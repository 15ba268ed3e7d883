"""Data-parallel training under ``torch.distributed``: the process group ``torchrun`` describes
in the environment, each rank's share of a global mini-batch, and sums across ranks.

Outside a distributed environment (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``) every function is
the single-process identity, so a script runs unchanged under ``python script.py`` and under
``torchrun --nproc_per_node N script.py``. :func:`neuralsde.train.fit` uses it; gradients are
averaged by ``torch.nn.parallel.DistributedDataParallel`` (gloo on CPU, nccl on GPUs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Ranks", "broadcast_state", "is_main", "ranks", "shard", "sum_over_ranks"]


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world`` processes (``0`` of ``1`` when alone)."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """True on the rank that reports progress and saves (rank 0)."""
        return self.rank == 0


def ranks() -> Ranks:
    """The distributed environment, joining the process group ``torchrun`` set up in the
    environment (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) if it is not
    joined yet: nccl when CUDA is available, gloo otherwise."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return Ranks()
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size())


def is_main() -> bool:
    """False only on a rank other than 0 of a joined process group (it neither saves nor
    reports progress); joins nothing."""
    return not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)


def shard(batch, where: Ranks):
    """``(part, share)``: this rank's contiguous slice of a global mini-batch (a tensor or a
    tuple/list of tensors split along dim 0) and its share ``n_rank / n`` of the rows. The
    global batch is the same on every rank (one shuffling seed), so the slices partition it;
    ``part`` is None when this rank's slice is empty."""
    if not where.active:
        return batch, 1.0
    tensors = (batch,) if isinstance(batch, torch.Tensor) else tuple(batch)
    n = tensors[0].shape[0]
    lo, hi = where.rank * n // where.world, (where.rank + 1) * n // where.world
    if hi == lo:
        return None, 0.0
    part = tuple(t[lo:hi] for t in tensors)
    return (part[0] if isinstance(batch, torch.Tensor) else type(batch)(part)), (hi - lo) / n


def sum_over_ranks(values, where: Ranks) -> list[float]:
    """``values`` (floats) summed over the ranks, in float64; as they are when alone."""
    if not where.active:
        return [float(v) for v in values]
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_state(module: torch.nn.Module, where: Ranks) -> None:
    """Give every rank rank 0's parameters and buffers. Gradients are averaged, so the
    parameters already agree; buffers such as batch-norm statistics are each rank's own (they
    saw only its share of every batch), and rank 0's are kept."""
    if not where.active:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)
