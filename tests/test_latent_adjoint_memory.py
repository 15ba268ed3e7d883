"""Reversible adjoint: training memory of a latent SDE stays flat from 100 to 2000 steps."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.latent_adjoint_memory import saved_bytes  # noqa: E402


@pytest.mark.slow
def test_reversible_saved_memory_is_flat_while_direct_grows_with_steps():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rev = [saved_bytes(s, "reversible") for s in (100, 2000)]
        direct = [saved_bytes(s, None) for s in (100, 2000)]
    finally:
        torch.set_num_threads(n)
    assert rev[1] <= 1.05 * rev[0]
    assert direct[1] >= 10 * direct[0]  # backprop keeps every step (20x the steps)
    assert rev[1] < direct[0]
