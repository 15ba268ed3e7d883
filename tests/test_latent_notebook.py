"""notebooks/03_latent_fractional.ipynb runs with its short configuration in under 60 s and shows
the learned Hurst index, its trajectory and the fan chart. (tests/test_notebooks.py also executes
it in the fast suite; this test checks what it shows.)"""

import os
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_latent_fractional.ipynb"


@pytest.mark.slow
def test_latent_fractional_notebook_fits_hurst_and_draws_the_fan_chart(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("NEURALSDE_QUICK", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    root = str(NOTEBOOK.parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": root}}
    ).execute()
    assert time.perf_counter() - start < 60 + 15  # + kernel start-up
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    h = float(text.split("estimated H = ")[1][:5])
    assert 0 < h < 1
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
