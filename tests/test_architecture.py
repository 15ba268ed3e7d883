"""The dependency direction of DESIGN.md, enforced by import-linter (contracts in pyproject.toml):
core imports nothing above it, data nothing above core, models and diffusion no estimators,
and there are no import cycles inside core or between the subpackages."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lint the package under ``root`` (not the installed editable one), in a fresh interpreter.
_RUN = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
sys.path.insert(0, {root!r})
from importlinter.cli import lint_imports
raise SystemExit(lint_imports(config_filename={config!r}, no_cache=True, no_logo=True))
"""


def _lint(root: Path):
    code = _RUN.format(root=str(root), config=str(root / "pyproject.toml"))
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_import_contracts_are_kept():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 kept, 0 broken" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "module,line,contract",
    [
        ("core/grid.py", "import neuralsde.models.latent", "core imports nothing from the rest"),
        ("core/grid.py", "from neuralsde.core import solve", "no import cycles inside core"),
        ("diffusion/nets.py", "import neuralsde.estimators", "do not import estimators or cli"),
    ],
)
def test_a_deliberately_broken_import_breaks_its_contract(tmp_path, module, line, contract):
    shutil.copytree(ROOT / "neuralsde", tmp_path / "neuralsde",
                    ignore=shutil.ignore_patterns("__pycache__", "files"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "neuralsde" / module
    target.write_text(target.read_text() + f"\n{line}  # deliberately broken\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert f"{contract}" in proc.stdout and "BROKEN" in proc.stdout, proc.stdout


# ------------------------------------------------------------------------------ one input gate
# Building a batch from user data, or reading a user's file, happens in the data layer only:
# everything else calls IrregularBatch.coerce (or neuralsde.data.files for files). The
# datasets package reads the library's own shipped files, not user input.
_CONVERTERS = {"from_arrays", "from_xarray", "from_dataframe", "from_padded", "read_csv",
               "read_parquet", "open_dataset", "open_dataarray", "read_excel"}  # fmt: skip


def _converter_calls(package: Path) -> list[str]:
    import ast

    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if rel.parts[0] in ("data", "datasets"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in _CONVERTERS:
                    found.append(f"{rel}:{node.lineno} {node.func.attr}")
    return found


def test_only_the_data_layer_converts_user_input():
    assert _converter_calls(ROOT / "neuralsde") == []


def test_the_gate_check_sees_a_conversion_outside_the_data_layer(tmp_path):
    pkg = tmp_path / "neuralsde"
    (pkg / "estimators").mkdir(parents=True)
    (pkg / "estimators" / "x.py").write_text("def f(X, B):\n    return B.from_xarray(X)\n")
    assert _converter_calls(pkg) == ["estimators/x.py:2 from_xarray"]
