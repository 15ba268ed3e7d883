"""Where the shipped data files live, in a source checkout and in an installed package.

The repository's top-level ``datasets/`` folder is package data of ``neuralsde.datasets``
through the symlink ``neuralsde/datasets/files``; an installed wheel holds real copies there.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_file", "data_root"]


def data_root() -> Path:
    """The folder holding the shipped datasets (one subfolder per dataset)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "files", here.parent.parent / "datasets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"the shipped datasets were not found next to {here} (expected a 'files' folder); "
        "reinstall neuralsde"
    )


def data_file(*parts: str) -> Path:
    """Path of one shipped file, e.g. ``data_file("nile", "nile.csv")``."""
    path = data_root().joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"shipped data file {path} is missing; reinstall neuralsde")
    return path
