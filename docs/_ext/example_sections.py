"""Griffe extension for the docs build: read ``Example:`` as a Google "Examples" section.

neuralsde's docstrings head their doctests ``Example:``; Griffe's Google parser knows only the
plural as the examples section and would render the singular as an admonition of plain
markdown (``>>>`` lines become block quotes). This renames the heading before parsing, so the
doctests render as code. It changes nothing outside the documentation build.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rewrite ``Example:`` section headings to ``Examples:`` in every loaded docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
