"""Every notebook in notebooks/ executes from top to bottom within its time limit.

Each notebook runs in a fresh kernel, in its own folder, with the repository on PYTHONPATH and
``NEURALSDE_QUICK=1`` (notebooks use it to pick a short configuration). The run happens in a
subprocess killed after ``NEURALSDE_NOTEBOOK_TIMEOUT`` seconds (default 180), so one stuck
notebook cannot hang the suite. A notebook may lower or raise its own limit with the metadata
entry ``{"neuralsde": {"timeout": seconds}}``.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DEFAULT_TIMEOUT = int(os.environ.get("NEURALSDE_NOTEBOOK_TIMEOUT", "180"))

RUNNER = """
import sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, timeout = sys.argv[1], int(sys.argv[2])
nb = nbformat.read(path, as_version=4)
client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[3]}})
try:
    client.execute()
except CellExecutionError as err:
    print(str(err)[-4000:], file=sys.stderr)
    sys.exit(1)
"""


def _timeout(path: Path) -> int:
    meta = json.loads(path.read_text()).get("metadata", {})
    return int(meta.get("neuralsde", {}).get("timeout", DEFAULT_TIMEOUT))


def test_there_are_notebooks_to_run():
    assert any(p.name == "01_irregular_data.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_without_error(path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    limit = _timeout(path)
    env = {
        **os.environ,
        "NEURALSDE_QUICK": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(path), str(limit), str(path.parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=path.parent,
        start_new_session=True,  # its own process group, so the kernel goes down with it
    )
    try:
        _, stderr = proc.communicate(timeout=limit + 30)  # + kernel start-up and shut-down
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{path.name} did not finish within {limit} s")
    assert proc.returncode == 0, f"{path.name} failed:\n{stderr[-4000:]}"
