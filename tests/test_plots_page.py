"""The page `dvc plots show` writes draws with no network: checked in a real headless Chromium (Debian's `chromium`
package; the test is skipped without it), by screenshot and by the DOM vega left behind.

Network is cut for the browser (every host resolves to nothing), so the check means the same on a connected CI
machine: the page must carry its own vega. DVC's stock page, filled with the same plots, must fail the same check
(it loads vega from a CDN) — so the check can tell a drawn page from a blank one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / ".dvc" / "plots.html"
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium: apt-get install chromium (make browser)")


def png_pixels(data: bytes) -> np.ndarray:
    """[height, width, channels] uint8 of an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes): enough of a
    decoder to count pixels without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    depth, color, interlace = header[8], header[9], header[12]
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG (depth {depth}, color {color})"
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), dtype=np.int32)
    prior = np.zeros(width * bpp, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:
            row = (line + prior) % 256
        else:            # Average / Paeth: pixel by pixel
            row = line.copy()
            for x in range(width):
                s = slice(x * bpp, (x + 1) * bpp)
                left = row[(x - 1) * bpp:x * bpp] if x else np.zeros(bpp, dtype=np.int32)
                up = prior[s]
                if kind == 3:
                    row[s] = (line[s] + (left + up) // 2) % 256
                else:
                    upleft = prior[(x - 1) * bpp:x * bpp] if x else np.zeros(bpp, dtype=np.int32)
                    p = left + up - upleft
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
                    row[s] = (line[s] + pred) % 256
        out[y] = row
        prior = row
    return out.reshape(height, width, bpp).astype(np.uint8)


def page(tmp_path: Path, template: str | None) -> Path:
    """A plots page as `dvc plots show` writes it (dvc_render, the renderer DVC uses): a training curve titled by
    its dvclive path, a confusion matrix and a horizontal bar chart, like koemo's."""
    from dvc_render import render_html
    from dvc_render.vega import VegaRenderer

    curve = VegaRenderer([{"step": s, "lr": 0.001 * (0.8 ** s), "rev": "workspace",
                           "filename": "dvclive/text/plots/metrics/fold0/lr.tsv", "field": "lr"} for s in range(6)],
                         "dvclive/text/plots/metrics/fold0/lr.tsv", template="linear", x="step", y="lr",
                         title="dvclive/text/plots/metrics/fold0/lr.tsv")
    confusion = VegaRenderer([{"actual": a, "predicted": p, "rev": "workspace", "filename": "plots/c.csv"}
                              for a in ("angry", "sadness") for p in ("angry", "sadness", "angry")],
                             "plots/text_confusion.csv", template="confusion", x="predicted", y="actual",
                             title="text: test confusion (fold-mean)")
    bars = VegaRenderer([{"model_group": f"stack · gender {g}", "ua": u, "rev": "workspace", "filename": "plots/g.csv"}
                         for g, u in (("여성", 0.71), ("남성", 0.64))], "plots/groups.csv",
                        template="bar_horizontal", x="ua", y="model_group", title="test UA per group")
    out = tmp_path / ("offline" if template else "cdn") / "index.html"
    render_html([curve, confusion, bars], out, html_template=template)
    return out


def browse(html: Path, tmp_path: Path) -> tuple[str, np.ndarray]:
    """(DOM after the scripts ran, screenshot pixels) from headless Chromium with every host unresolvable."""
    common = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=900,1300",
              "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=8000",
              f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120).stdout
    shot = tmp_path / f"{html.parent.name}.png"
    subprocess.run([*common, f"--screenshot={shot}", html.as_uri()], capture_output=True, timeout=120)
    return dom, png_pixels(shot.read_bytes())


def drawn_share(pixels: np.ndarray) -> float:
    """Share of the screenshot that is not (near-)white."""
    return float((pixels[..., :3].astype(int).sum(axis=2) < 720).mean())


def test_the_offline_page_draws_every_chart_with_readable_titles_and_the_cdn_page_does_not(tmp_path):
    offline_dom, offline = browse(page(tmp_path, str(TEMPLATE)), tmp_path)
    assert '<script src="http' not in offline_dom and 'data-error="' not in offline_dom
    assert offline_dom.count('data-drawn="1"') == 3, "every chart must be rendered by vega"
    assert len(re.findall(r"<svg[^>]*class=\"marks\"", offline_dom)) == 3
    assert "text model: learning rate per epoch (CV fold 0)" in offline_dom     # not its dvclive path
    assert "dvclive/text/plots/metrics/fold0/lr.tsv</text>" not in offline_dom
    assert drawn_share(offline) > 0.03, f"screenshot nearly blank ({drawn_share(offline):.2%} drawn)"

    cdn_dom, cdn = browse(page(tmp_path, None), tmp_path)
    assert '<script src="https://cdn.jsdelivr' in cdn_dom and "<svg" not in cdn_dom and "<canvas" not in cdn_dom
    assert drawn_share(cdn) < 0.005, "DVC's CDN page must stay blank offline (else this check proves nothing)"


def test_the_png_reader_reads_what_it_is_given():
    """The pixel counter is only as good as the decoder: a known image round-trips (filter type 0 and 1)."""
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 1] = [255, 0, 0, 255]
    rgba[1] = [10, 20, 30, 255]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    sub_row = np.diff(np.concatenate([np.zeros((1, 4), np.int32), rgba[1].astype(np.int32)]), axis=0) % 256
    raw = b"\x00" + rgba[0].tobytes() + b"\x01" + sub_row.astype(np.uint8).tobytes()
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (3).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes([8, 6, 0, 0, 0]))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    assert (png_pixels(png) == rgba).all()
