"""Execute notebooks/05_change_points.ipynb with its short test configuration."""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_change_points.ipynb"


def test_change_point_notebook_runs_and_finds_the_nile_change(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("NEURALSDE_QUICK", "1")
    root = str(NOTEBOOK.parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": root}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    year = int(text.split("latent SDE: top change in ")[1][:4])
    assert 1896 <= year <= 1902
    assert "latent SDE  [" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
