"""The README's first command: the end-to-end demo runs on shipped data (quick sizes)."""

import re

import pytest

from neuralsde.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_quick_demo_runs_writes_its_figures_and_classifies_with_the_defaults(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert {p.name for p in tmp_path.glob("*.png")} == {"demo_paths.png", "demo_data.png"}
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert accuracy >= 0.9  # BasicMotions at 50% missing, default SDEClassifier, 15 epochs
    assert "puts the change at 189" in out  # Nile: the dam works of 1898
