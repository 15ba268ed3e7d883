#!/usr/bin/env python3
"""Set up the project and run its jobs, with nothing but Python 3.10+ installed.

    python3 dev.py demo          # create .venv, install everything, run the demo
    python3 dev.py test          # same setup, then the fast test suite (what CI runs)
    python3 dev.py test --all    # every test, the slow statistical and training ones too,
                                 # and the fuzz properties' slow profile (3,000+ cases)
    python3 dev.py bench         # the solver benchmarks (writes benchmarks/results/)

torch is installed pinned (torch==2.13.0, a CPU build) before anything that depends on
it, so no other requirement pulls a multi-GB CUDA build. signatory is then built against
it; if that fails, neuralsde falls back to pysiglib for signatures.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".neuralsde-setup"
TORCH = "torch==2.13.0"
SIGNATORY = "signatory==1.2.6.1.9.0"
# k-diffusion's samplers are a test-only peer; its declared dependencies (torchvision, CLIP,
# wandb, ...) serve its training code and would pull a CUDA torchvision, so it comes alone.
K_DIFFUSION = "k-diffusion==0.1.1.post1"


def run(*cmd: str, check: bool = True, env: dict | None = None) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, check=check, env=env).returncode


def pip(*args: str, check: bool = True) -> int:
    return run(str(PY), "-m", "pip", "install", "--disable-pip-version-check", *args, check=check)


def setup() -> None:
    """Create .venv and install the package with its extras (skipped when up to date)."""
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    key = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + Path(__file__).read_bytes()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == key:
        return
    pip("--upgrade", "pip", "setuptools", "wheel")
    pip(TORCH)
    if pip("--no-build-isolation", SIGNATORY, check=False) != 0:
        print(
            "note: signatory could not be built here; neuralsde will use pysiglib "
            "for signatures (same values).",
            flush=True,
        )
    pip("-e", ".[dev,docs]")
    pip("--no-deps", K_DIFFUSION)
    STAMP.write_text(key)


def main(argv: list[str]) -> int:
    job = argv[0] if argv else "demo"
    rest = argv[1:]
    if job not in ("demo", "test", "bench", "setup"):
        print(__doc__)
        return 2
    setup()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if job == "demo":
        return run(str(PY), "-m", "neuralsde", "demo", *rest, check=False, env=env)
    if job == "bench":
        bench = ROOT / "benchmarks"
        for script in ("solver_vs_torchsde.py", "memory_reversible.py"):
            code = run(str(PY), str(bench / script), check=False, env=env)
            if code:
                return code
        return 0
    if job == "test":
        # Two pytest workers on two cores, one torch thread each (no oversubscription).
        env["OMP_NUM_THREADS"] = "1"
        marker = [] if "--all" in rest else ["-m", "not slow"]
        if "--all" in rest:  # the fuzz properties' slow profile: ten times the cases
            env.setdefault("NEURALSDE_FUZZ_PROFILE", "slow")
        rest = [a for a in rest if a != "--all"]
        return run(str(PY), "-m", "pytest", "-n", "2", *marker, *rest, check=False, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
