#!/usr/bin/env python3
"""Open one built tutorial page of the docs site in headless Chromium, take a screenshot and
check that the page's plots are there.

    python scripts/docs_screenshot.py [--site SITE_DIR] [--page tutorials/02_classify_irregular]
                                      [--out docs_page.png]

Builds the site with ``mkdocs build --strict`` first unless ``--site`` points at a built one.
Checks: the page embeds the notebook's figures (PNG images in the HTML), Chromium renders the
page to a screenshot that is not blank, and the screenshot shows the figures' pixels (the
rendered page has far more distinct colours than a text-only page). Chromium comes from the
Debian package ``chromium``. Prints a one-line summary; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_site(out: Path) -> Path:
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=600)
    return out


def page_images(html: str) -> list[bytes]:
    """The PNG figures embedded in a page (nbconvert writes them as data URIs)."""
    found = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    return [base64.b64decode(m) for m in found]


def screenshot(page: Path, out: Path, height: int = 4000) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--window-size=1280,{height}", f"--screenshot={out}", page.as_uri()]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=180)


def colour_stats(png: Path) -> tuple[int, float]:
    """(number of distinct colours, share of non-white pixels) of a PNG."""
    import matplotlib.image as mpimg
    import numpy as np

    img = (mpimg.imread(png)[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    distinct = len(np.unique(img[:: max(1, len(img) // 200_000)], axis=0))
    return distinct, float((img.min(1) < 245).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--site", type=Path, default=None)
    p.add_argument("--page", default="tutorials/02_classify_irregular")
    p.add_argument("--out", type=Path, default=Path("docs_page.png"))
    args = p.parse_args(argv)
    site = args.site or build_site(Path(tempfile.mkdtemp()) / "site")
    page = site / args.page / "index.html"
    html = page.read_text(encoding="utf-8")
    images = page_images(html)
    screenshot(page, args.out)
    distinct, inked = colour_stats(args.out)
    ok = len(images) >= 1 and distinct >= 500 and inked > 0.02
    title = re.search(r"<title>(.*?)</title>", html)
    print(f"{'OK' if ok else 'FAIL'}: {args.page} ({title.group(1) if title else '?'}): "
          f"{len(images)} embedded figures, screenshot {args.out} with {distinct} colours, "
          f"{inked:.1%} of pixels inked")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
