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


def _readme_blocks(lang):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.slow
def test_the_readme_python_quick_start_runs_and_classifies_its_own_data():
    code = _readme_blocks("python")[0]
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    clf, data = namespace["clf"], namespace["data"]
    assert clf.score(data, data["label"].values) >= 0.9


def test_the_readme_cli_quick_start_names_real_commands_and_options():
    from neuralsde.cli import cli

    line = _readme_blocks("bash")[1]
    for part in line.split("&&"):
        words = part.split()
        assert words[0] == "neuralsde"
        group = cli.commands[words[1]]
        command = group.commands[words[2]]
        options = {o for p in command.params for o in p.opts}
        assert {w for w in words if w.startswith("--")} <= options
