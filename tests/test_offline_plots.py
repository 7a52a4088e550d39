"""End-to-end: `dvc plots show` on the demo pipeline draws every chart in a real headless browser with no network.

DVC's own page loads vega, vega-lite and vega-embed from a CDN, so on an offline machine it is blank; the project's
template (.dvc/plots/offline.html, `plots.html_template` in .dvc/config) inlines them. Chromium renders both pages
from file:// with background networking off: the offline page must draw a chart in every plot element and its
screenshot must hold the charts' ink; DVC's CDN page, the control, must draw none (so the checks can fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--virtual-time-budget=20000"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    return found


def render(page: Path, tmp: Path) -> tuple[int, int, float]:
    """(charts the page asks for, charts drawn, share of non-white pixels in a 1200×3000 screenshot) of `page` in
    Chromium: DVC writes one `vegaEmbed('#id', …)` call per chart; a drawn chart is a canvas in the rendered DOM."""
    from PIL import Image

    browser = chromium()
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp / 'dom-profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=180).stdout
    shot = tmp / f"{page.parent.name}.png"
    subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp / 'shot-profile'}", "--window-size=1200,3000",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180, check=True)
    pixels = Image.open(shot).convert("L").getdata()
    ink = sum(1 for value in pixels if value < 200) / len(pixels)
    return page.read_text(encoding="utf-8").count("vegaEmbed('#"), dom.count("<canvas"), ink


def test_plots_page_draws_offline_and_the_cdn_page_does_not(demo_repo, tmp_path):
    from dvc_render.html import PAGE_HTML

    offline = tmp_path / "offline"
    demo_repo.dvc("plots", "show", "-o", str(offline))
    page = (offline / "index.html").read_text(encoding="utf-8")
    assert "<script src=" not in page and "cdn.jsdelivr" not in page  # nothing the page must fetch
    elements, drawn, ink = render(offline / "index.html", tmp_path)
    print(f"offline page: {elements} charts asked for, {drawn} charts drawn, {ink:.1%} of the screenshot inked")
    assert elements >= 15 and drawn == elements  # 7 models' confusions + curves, the stack's two plots
    assert ink > 0.02

    cdn_template = tmp_path / "dvc-default.html"
    cdn_template.write_text(PAGE_HTML, encoding="utf-8")
    cdn = tmp_path / "cdn"
    demo_repo.dvc("plots", "show", "--html-template", str(cdn_template), "-o", str(cdn))
    elements, drawn, ink = render(cdn / "index.html", tmp_path)
    print(f"DVC's CDN page offline: {elements} charts asked for, {drawn} charts drawn, {ink:.1%} inked")
    assert elements >= 15 and drawn == 0 and ink < 0.005
