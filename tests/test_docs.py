"""The documentation site builds with ``mkdocs build --strict`` and says what the code does.

The API pages are generated from the docstrings, so a broken docstring fails the build here.
The tutorial pages are executed: every ``python`` block of a page runs in one namespace, and a
``text`` block that follows one is the exact output it must print.
"""

from __future__ import annotations

import contextlib
import html
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

needs_mkdocs = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None
    or importlib.util.find_spec("mkdocstrings_handlers") is None,
    reason="mkdocs / mkdocstrings[python] are not installed (pip install neuralsde[docs])",
)


def _text(page: Path) -> str:
    """The text of an HTML page without its tags, whitespace collapsed."""
    raw = re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8"))
    return " ".join(html.unescape(raw).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _nav_pages(nav) -> list[str]:
    """The markdown files named in an mkdocs ``nav`` (nested lists of ``{title: page}``)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_pages(v)]
    return [p for item in nav for p in _nav_pages(item)]


@needs_mkdocs
def test_site_builds_strict_and_every_page_is_in_the_nav(site):
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    # the tutorials are the notebooks themselves (docs/tutorials links to notebooks/)
    pages += sorted(f"tutorials/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(nav) == sorted(pages)
    for page in pages:
        stem = page.rsplit(".", 1)[0]
        built = "index.html" if page == "index.md" else stem + "/index.html"
        assert (site / built).is_file(), page
    for api in ("core", "methods", "brownian", "data", "datasets"):
        assert f"api/{api}.md" in nav


@needs_mkdocs
def test_solve_api_page_shows_the_solve_docstring(site):
    from neuralsde import solve

    page = site / "api" / "core" / "index.html"
    text = _text(page)
    # neuralsde.solve is neuralsde.core.solve.solve (griffe reads neuralsde.core.solve as the
    # module of the same name, so the page documents the function by its full path)
    assert 'id="neuralsde.core.solve.solve"' in page.read_text(encoding="utf-8")
    summary = solve.__doc__.strip().splitlines()[0].replace("``", "")
    assert summary in text
    # the Args section became a parameter table and the doctest a code block
    assert "strictly increasing output times" in text
    assert "torch.Size([5, 8, 2])" in text


@needs_mkdocs
def test_example_sections_render_as_code_not_block_quotes(site):
    page = (site / "api" / "core" / "index.html").read_text(encoding="utf-8")
    assert "<blockquote>" not in page
    assert '<span class="gp">&gt;&gt;&gt; </span>' in page


def _blocks(markdown: str) -> list[tuple[str, str | None]]:
    """``(python code, expected output or None)`` for each python block, in page order."""
    fences = re.findall(r"```(\w+)\n(.*?)```", markdown, flags=re.DOTALL)
    out = []
    for i, (lang, body) in enumerate(fences):
        if lang != "python":
            continue
        nxt = fences[i + 1] if i + 1 < len(fences) else None
        out.append((body, nxt[1] if nxt is not None and nxt[0] == "text" else None))
    return out


@pytest.mark.parametrize("page", ["getting-started.md", "data.md"])
def test_page_code_runs_and_prints_what_the_page_says(page):
    blocks = _blocks((DOCS / page).read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    namespace: dict = {"__name__": page}
    checked = 0
    for code, expected in blocks:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, page, "exec"), namespace)
        if expected is not None:
            assert buffer.getvalue().strip() == expected.strip(), code
            checked += 1
    assert checked >= 3


def test_notebooks_named_in_the_docs_exist():
    named = set()
    for page in DOCS.rglob("*.md"):
        named |= set(re.findall(r"notebooks/[\w.-]+\.ipynb", page.read_text(encoding="utf-8")))
    assert named, "the docs point to no notebook"
    missing = sorted(n for n in named if not (ROOT / n).is_file())
    assert not missing, f"docs name notebooks that do not exist: {missing}"


@needs_mkdocs
@pytest.mark.parametrize("notebook", sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_every_notebook_is_a_tutorial_page_with_its_figures(site, notebook):
    """mkdocs-jupyter renders the committed (executed) notebooks; their figures are embedded."""
    page = (site / "tutorials" / notebook / "index.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 1, f"{notebook} shows no figure"
    assert "TqdmWarning" not in page


@needs_mkdocs
def test_the_cli_page_is_generated_from_the_cli_help(site):
    from neuralsde.cli import cli

    text = _text(site / "cli" / "index.html")
    for name, command in cli.commands.items():
        assert f"neuralsde {name}" in text
        assert command.get_short_help_str(limit=60).rstrip(".")[:40] in text
    assert "--label" in text and "--horizon" in text and "--n-bkps" in text


@needs_mkdocs
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian package chromium absent")
def test_a_tutorial_page_renders_in_headless_chromium_with_its_plots(site, tmp_path):
    script = ROOT / "scripts" / "docs_screenshot.py"
    proc = subprocess.run([sys.executable, str(script), "--site", str(site), "--out",
                           str(tmp_path / "page.png")], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("OK:"), proc.stdout + proc.stderr
