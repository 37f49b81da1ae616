"""Brush latency in Chromium on a 24-megapixel image: mouseup of a stroke to the RLE in the store, p50/p95.

brush, new shape: each stroke (radius 40 image px) starts away from the selected mask, so it is a new
shape; the save carries that mask only (saves send what changed, issue 11). brush, one growing
shape: Shift-strokes add parts to one mask that grows to the whole run's strokes. polygon: in the same
run and browser, from the Enter that closes a triangle to its row in the store (as
bench/ui_latency.py measures it). "In the store" is polled as the image's version (one small query;
the rows are written in the same transaction), then the rows are checked.

Run from the repository root: .venv/bin/python bench/ui_brush.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
    view_mapping,
    wait_image_drawn,
)
from workbench.domain import Category  # noqa: E402
from workbench.images.decode import ImageSource  # noqa: E402
from workbench.services import annotate, classes, imports, projects  # noqa: E402
from workbench.services.workspace import open_workspace  # noqa: E402

SIZE_WH = (6000, 4000)
RADIUS = 40


def photo_jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    w, h = SIZE_WH
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 200, yy / h * 180, (xx + yy) / (w + h) * 220], axis=-1)
    img = np.clip(base + rng.normal(0, 12, size=(h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def row(name: str, ms: list[float]) -> str:
    return f"| {name} | {len(ms)} | {statistics.median(ms):.0f} | {pct(ms, 0.95):.0f} |"


def timed_until(release: Callable[[], None], done: Callable[[], bool]) -> float:
    t0 = time.perf_counter()
    release()
    while not done():
        time.sleep(0.002)
    return (time.perf_counter() - t0) * 1000


def strokes(page: Any, ws: Any, slug: str, image_id: int, rounds: int, shift: bool) -> list[float]:
    to_client, _ = view_mapping(page)
    w, h = SIZE_WH
    out: list[float] = []
    last_area = 0.0
    for i in range(rounds):
        x, y = w * (0.1 + 0.08 * (i % 10)), h * (0.2 + 0.3 * (i // 10 % 3))
        path = [(x, y), (x + 150, y + 60), (x + 220, y + 260)]
        if shift and i:
            page.keyboard.down("Shift")
        page.mouse.move(*to_client(*path[0]))
        page.mouse.down()
        for p in path[1:]:
            page.mouse.move(*to_client(*p), steps=6)

        version = annotate.image_version(ws, slug, image_id)

        def saved(i: int = i, last: float = last_area, version: int = version) -> bool:
            if annotate.image_version(ws, slug, image_id) == version:
                return False
            insts = annotate.load_image(ws, slug, image_id).instances
            if not shift:
                return len(insts) == i + 1
            return len(insts) == 1 and (insts[0].area or 0) > last

        out.append(timed_until(page.mouse.up, saved))
        if shift and i:
            page.keyboard.up("Shift")
        last_area = max(inst.area or 0 for inst in annotate.load_image(ws, slug, image_id).instances)
        page.locator('.wb-savestate[data-state="saved"]').wait_for()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    if not CHROMIUM.exists():
        print("needs /usr/bin/chromium (apt-get install chromium)")
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        root = Path(tmp) / "ws"
        ws = open_workspace(root)
        slug = projects.create_project(ws, "Brush").slug
        imports.import_images(ws, slug, [ImageSource(name=f"p{i}.jpg", data=photo_jpeg(i)) for i in range(3)])
        classes.add_category(ws, slug, Category(name="thing"))
        ids = [im.id for im in annotate.list_images(ws, slug)]
        server = UiServer(root)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
                )
                page = new_page(browser, server.url)
                open_project(page, "Brush")
                nav(page, "Annotate")
                wait_image_drawn(page, ids[0])
                page.keyboard.press("b")
                field = page.locator('[data-role="brushsize"]')
                field.fill(str(RADIUS))
                field.press("Enter")
                page.locator(".wb-annot").focus()
                new_ms = strokes(page, ws, slug, ids[0], args.rounds, shift=False)
                page.keyboard.press("d")
                wait_image_drawn(page, ids[1])
                grow_ms = strokes(page, ws, slug, ids[1], args.rounds, shift=True)
                page.keyboard.press("d")
                wait_image_drawn(page, ids[2])
                page.keyboard.press("p")
                to_client, _ = view_mapping(page)
                poly_ms: list[float] = []
                for i in range(args.rounds):
                    x = SIZE_WH[0] * (0.1 + 0.04 * i)
                    for p in [(x, 1000.0), (x + 200, 1000.0), (x + 100, 1300.0)]:
                        page.mouse.click(*to_client(*p))
                    v = annotate.image_version(ws, slug, ids[2])

                    def closed(i: int = i, v: int = v) -> bool:
                        if annotate.image_version(ws, slug, ids[2]) == v:
                            return False
                        return len(annotate.load_image(ws, slug, ids[2]).instances) == i + 1

                    poly_ms.append(timed_until(lambda: page.keyboard.press("Enter"), closed))
                    page.locator('.wb-savestate[data-state="saved"]').wait_for()
                browser.close()
        finally:
            server.stop()
    print(
        f"{SIZE_WH[0]}x{SIZE_WH[1]} image, brush radius {RADIUS} image px; ms from mouseup / Enter to the store"
    )
    print("| action | n | p50 ms | p95 ms |")
    print("|---|---|---|---|")
    print(row("brush stroke, new shape each", new_ms))
    print(row("brush stroke, one growing shape (Shift)", grow_ms))
    print(row("polygon close (Enter)", poly_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
