"""Native pixels in Chromium: a 50-MP photo beside a 1-MP one, in the same run.

native: from the click on 1:1 to every tile in view loaded and painted (the annotator's
data-native-image attribute). Three cases for the 50-MP image: first zoom ever (the tiles are
written: one decode of the original, 1024-px PNG tiles), first zoom after coming back to the image
(tiles on disk, registered again), and zooming to 1:1 again while they are registered. The 1-MP
image has no tiles (its display copy is full size): its figure is the 1:1 view drawn.
open: from pressing D/A to the image drawn with its shapes, editable (data-loaded-image), p50 over
visits after the first; first: the first visit (display copy written then).

Run from the repository root: .venv/bin/python bench/ui_native_pixels.py [--rounds 8]
"""

from __future__ import annotations

import argparse
import io
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    if not CHROMIUM.exists():
        print("needs /usr/bin/chromium (apt-get install chromium)")
        return 2
    from playwright.sync_api import sync_playwright

    from workbench.services.workspace import open_workspace

    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        root = Path(tmp) / "ws"
        ws = open_workspace(root)
        slug = projects.create_project(ws, "Native").slug
        t = time.perf_counter()
        big, small = photo_jpeg(BIG_WH, 1), photo_jpeg(SMALL_WH, 2)
        imports.import_images(
            ws, slug, [ImageSource(name="a_small.jpg", data=small), ImageSource(name="b_big.jpg", data=big)]
        )
        print(
            f"imported {BIG_WH[0]}x{BIG_WH[1]} ({len(big) / 1e6:.0f} MB) and {SMALL_WH[0]}x{SMALL_WH[1]} JPEGs"
            f" in {time.perf_counter() - t:.1f} s"
        )
        classes.add_category(ws, slug, Category(name="thing"))
        small_id, big_id = [im.id for im in annotate.list_images(ws, slug)]

        server = UiServer(root)
        native: dict[str, list[float]] = {"small": [], "new tab": [], "again": []}
        opened: dict[str, list[float]] = {"small": [], "big": []}
        first: dict[str, float] = {}
        inside: list[float] = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
                )
                page = new_page(browser, server.url)
                open_project(page, "Native")
                nav(page, "Annotate")
                wait_image_drawn(page, small_id)
                first["big"] = visit(page, "d", big_id)
                t0 = time.perf_counter()
                first["zoom"] = one_to_one(page, big_id, True)
                while not list(root.glob("**/tiles/*/1024.json")):
                    time.sleep(0.05)
                first["grid"] = time.perf_counter() - t0
                fit(page)
                first["small"] = visit(page, "a", small_id)
                for _ in range(args.rounds):
                    opened["big"].append(visit(page, "d", big_id))
                    native["again"].append(one_to_one(page, big_id, True))
                    fit(page)
                    opened["small"].append(visit(page, "a", small_id))
                    native["small"].append(one_to_one(page, small_id, False))
                    page.keyboard.press("f")
                for _ in range(max(2, args.rounds // 2)):
                    page.goto(f"{server.url}/annotate?project=native&image={big_id}")
                    wait_image_drawn(page, big_id)
                    native["new tab"].append(one_to_one(page, big_id, True))
                    marks = dict(page.evaluate("() => window.__wbPerf.splice(0)"))
                    if "tiles-asked" in marks and "native" in marks:
                        inside.append(marks["native"] - marks["tiles-asked"])
                browser.close()
        finally:
            server.stop()

    print(f"\nChromium, {args.rounds} rounds, p50 in ms")
    print("| image | open -> editable, first | open -> editable | 1:1 -> native pixels on screen |")
    print("|---|---|---|---|")
    print(
        f"| 1 MP {SMALL_WH[0]}x{SMALL_WH[1]} | {first['small']:.0f} | {p50(opened['small'])} | {p50(native['small'])} |"
    )
    print(
        f"| 50 MP {BIG_WH[0]}x{BIG_WH[1]} | {first['big']:.0f} | {p50(opened['big'])} | "
        f"first zoom ever {first['zoom']:.0f}; first zoom in a new tab {p50(native['new tab'])}; "
        f"again {p50(native['again'])} |"
    )
    print(
        f"50 MP: whole grid ({-(-BIG_WH[0] // 1024)} x {-(-BIG_WH[1] // 1024)} tiles) on disk "
        f"{first['grid']:.1f} s after the first zoom; new tab, inside the browser: tiles asked -> "
        f"painted p50 {p50(inside)} ms"
    )
    print("1 MP: no tiles (its display copy is full size): the 1:1 view drawn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
