"""Native pixels in Chromium: a 50-MP photo beside a 1-MP one, in the same run.

native: from the click on 1:1 to every tile in view loaded and painted (the annotator's
data-native-image attribute). Cases for the 50-MP image:
- opened then zoomed at once: the first zoom of an image just opened (its tiles are being cut in
  the background since it, or the image before it, was opened: whatever is not on disk yet is cut
  on the tile's request);
- cold: a new tab, no tile on disk and none being cut (the tile folders are removed first): one
  decode of the original, then the tiles in view;
- new tab: a new page load, browser cache off, tiles on the server's disk; 1:1 clicked at once,
  and one second after the image is drawn (by then the browser has preloaded the 1:1 view's tiles);
- again: zooming to 1:1 again in the same tab.
Each beside the Streamlit path (the browser's tile server blocked, so the tab asks Python for the
tiles: the fallback, and what every zoom did before the tile server) in the same run.
The 1-MP image has no tiles (its display copy is full size): its figure is the 1:1 view drawn.
open: from pressing D/A to the image drawn with its shapes, editable (data-loaded-image), p50 over
visits after the first; first: the first visit (display copy written then).

Run from the repository root: .venv/bin/python bench/ui_native_pixels.py [--rounds 8] [--cold 3]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_FLAGS,
    UiServer,
    nav,
    new_page,
    open_project,
    wait_image_drawn,
)
from workbench.domain import Category  # noqa: E402
from workbench.images.decode import ImageSource  # noqa: E402
from workbench.services import annotate, classes, imports, projects  # noqa: E402

BIG_WH = (8660, 5774)  # 50.0 MP
SMALL_WH = (1224, 817)  # 1.0 MP


def photo_jpeg(size_wh: tuple[int, int], seed: int) -> bytes:
    """Photo-like content (gradients, noise, some edges) as a quality-92 JPEG."""
    w, h = size_wh
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 200, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 180, h, dtype=np.float32)[:, None]
    img = np.empty((h, w, 3), dtype=np.uint8)
    for c, base in enumerate((x + 0 * y, y + 0 * x, (x + y) / 2)):
        noise = rng.integers(-14, 15, size=(h, w), dtype=np.int16)
        img[..., c] = np.clip(base + noise, 0, 255).astype(np.uint8)
    img[:, ::97] = 20  # 1-px dark lines every 97 px
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def p50(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "-"


def p95(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]:.0f}"


def both(values: list[float]) -> str:
    return f"{p50(values)} / {p95(values)} (n={len(values)})"


def one_to_one(page: Any, image_id: int, tiled: bool) -> float:
    """ms from the click on 1:1 to native pixels on screen."""
    page.evaluate("() => { window.__wbPerf = []; }")
    t0 = time.perf_counter()
    page.get_by_role("button", name="1:1").click()
    if tiled:
        page.locator(f'.wb-annot[data-native-image="{image_id}"]').wait_for(timeout=120_000)
    else:
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return (time.perf_counter() - t0) * 1000


def fit(page: Any) -> None:
    page.keyboard.press("f")
    page.wait_for_function("() => !document.querySelector('.wb-annot[data-native-image]')")


def visit(page: Any, key: str, image_id: int) -> float:
    t0 = time.perf_counter()
    page.keyboard.press(key)
    wait_image_drawn(page, image_id)
    return (time.perf_counter() - t0) * 1000


def tile_folders(root: Path) -> list[Path]:
    return [p for p in root.glob("*/tiles/*") if p.is_dir()]


def grid_done(root: Path, timeout_s: float = 120.0) -> None:
    """Wait until every 50-MP image's grid is on disk (nothing cut in the background meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while len(list(root.glob("*/tiles/*/1024.json"))) < len(tile_folders(root)):
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def tile_fetch_ms(page: Any) -> float:
    """From the first tile request's start to the last tile's last byte (resource timing)."""
    return page.evaluate(
        """() => {
          const t = performance.getEntriesByType("resource").filter((e) => e.name.endsWith(".bmp"));
          return t.length ? Math.max(...t.map((e) => e.responseEnd)) - Math.min(...t.map((e) => e.startTime)) : -1;
        }"""
    )


def tab(browser: Any, url: str, streamlit_path: bool) -> Any:
    """A page with the browser cache off; ``streamlit_path``: the tile server blocked (fallback)."""
    page = new_page(browser, url)
    page.context.new_cdp_session(page).send("Network.setCacheDisabled", {"cacheDisabled": True})
    if streamlit_path:
        port = url.rsplit(":", 1)[1]
        page.route(lambda u: u.endswith(".bmp") and f":{port}/" not in u, lambda r: r.abort())
    return page


def run_path(
    browser: Any,
    server: UiServer,
    root: Path,
    ids: dict[str, int],
    rounds: int,
    cold: int,
    streamlit_path: bool,
) -> dict[str, list[float]]:
    small_id, big_ids = ids["small"], [ids["big"], ids["big2"]]
    res: dict[str, list[float]] = {
        k: []
        for k in (
            "opened",
            "cold",
            "new tab",
            "again",
            "small",
            "open big",
            "open small",
            "cold fetch",
            "new tab fetch",
            "new tab, 1 s",
        )
    }
    page = tab(browser, server.url, streamlit_path)
    open_project(page, "Native")
    nav(page, "Annotate")
    wait_image_drawn(page, small_id)
    # opened then zoomed at once: the first 50-MP image was cut in the background since the 1-MP
    # one before it was opened (its neighbour), the second since itself was opened
    for k, big_id in enumerate(big_ids):
        if k:
            fit(page)
        res["open big"].append(visit(page, "d", big_id))
        res["opened"].append(one_to_one(page, big_id, True))
    fit(page)
    grid_done(root)
    big_id = big_ids[0]
    visit(page, "a", big_id)
    fit(page)
    grid_done(root)
    for _ in range(rounds):
        res["again"].append(one_to_one(page, big_id, True))
        fit(page)
        res["open small"].append(visit(page, "a", small_id))
        res["small"].append(one_to_one(page, small_id, False))
        page.keyboard.press("f")
        res["open big"].append(visit(page, "d", big_id))
    page.context.close()
    for key, n in (("new tab", max(2, rounds // 2)), ("new tab, 1 s", max(2, rounds // 2)), ("cold", cold)):
        for _ in range(n):
            grid_done(root)
            if key == "cold":  # the process remembers the grids it cut: it does not cut them again
                for folder in tile_folders(root):
                    shutil.rmtree(folder, ignore_errors=True)
            page = tab(browser, server.url, streamlit_path)
            page.goto(f"{server.url}/annotate?project=native&image={big_id}")
            wait_image_drawn(page, big_id)
            if key == "new tab, 1 s":
                page.wait_for_timeout(1000)  # a user looks before zooming: the 1:1 tiles are preloaded
            res[key].append(one_to_one(page, big_id, True))
            if not streamlit_path and key != "new tab, 1 s":
                res[f"{key} fetch"].append(tile_fetch_ms(page))
            page.context.close()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--cold", type=int, default=3)
    args = ap.parse_args()
    if not CHROMIUM.exists():
        print("needs /usr/bin/chromium (apt-get install chromium)")
        return 2
    from playwright.sync_api import sync_playwright

    from workbench.services.workspace import open_workspace

    with tempfile.TemporaryDirectory(prefix="wb-bench-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp) / "ws"
        ws = open_workspace(root)
        slug = projects.create_project(ws, "Native").slug
        t = time.perf_counter()
        big, small = photo_jpeg(BIG_WH, 1), photo_jpeg(SMALL_WH, 2)
        imports.import_images(
            ws,
            slug,
            [
                ImageSource(name="a_small.jpg", data=small),
                ImageSource(name="b_big.jpg", data=big),
                ImageSource(name="c_big.jpg", data=photo_jpeg(BIG_WH, 3)),
            ],
        )
        print(
            f"imported 2 x {BIG_WH[0]}x{BIG_WH[1]} ({len(big) / 1e6:.0f} MB) and {SMALL_WH[0]}x{SMALL_WH[1]} JPEGs"
            f" in {time.perf_counter() - t:.1f} s"
        )
        classes.add_category(ws, slug, Category(name="thing"))
        small_id, big_id, big2_id = [im.id for im in annotate.list_images(ws, slug)]
        ids = {"small": small_id, "big": big_id, "big2": big2_id}
        results: dict[str, dict[str, list[float]]] = {}
        for name, streamlit_path in (("tile server", False), ("Streamlit path", True)):
            for folder in tile_folders(root):
                shutil.rmtree(folder, ignore_errors=True)
            server = UiServer(root)  # a fresh process: nothing cut, nothing remembered
            try:
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(
                        executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
                    )
                    results[name] = run_path(
                        browser, server, root, ids, args.rounds, args.cold, streamlit_path
                    )
                    browser.close()
            finally:
                server.stop()

    d, r = results["tile server"], results["Streamlit path"]
    print(f"\nChromium, {args.rounds} rounds, {args.cold} cold zooms; ms, p50 / p95 (n)")
    print("| 50 MP 1:1 -> native pixels on screen | tile server | Streamlit path (reference) | ratio p50 |")
    print("|---|---|---|---|")
    for key, label in (
        ("opened", "first zoom, right after opening the image"),
        ("cold", "cold: no tile on disk (one decode of the original)"),
        ("new tab", "new tab, browser cache off (tiles on disk), 1:1 at once"),
        ("new tab, 1 s", "new tab, browser cache off, 1:1 one second after the image is drawn"),
        ("again", "again in the same tab"),
    ):
        ratio = statistics.median(r[key]) / statistics.median(d[key]) if d[key] and r[key] else float("nan")
        print(f"| {label} | {both(d[key])} | {both(r[key])} | {ratio:.1f}x |")
    print(
        f"| 1 MP {SMALL_WH[0]}x{SMALL_WH[1]}, no tiles: 1:1 drawn | {both(d['small'])} | {both(r['small'])} | |"
    )
    print(
        f"tile server, first tile request -> last tile's last byte, p50: new tab {p50(d['new tab fetch'])} ms,"
        f" cold {p50(d['cold fetch'])} ms (the rest of each figure: the click, layout, decode and paint)"
    )
    print(
        f"open -> editable p50: 50 MP {p50(d['open big'])} ms, 1 MP {p50(d['open small'])} ms (tile server run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
