"""Zooming past the display copy shows the original's pixels (Chromium).

A 6000 x 4000 image of 1-px black lines on white: its display copy (2048 px) blurs every line to a
grey smear about 3 px wide. At 1:1 the stage must show the original's pixels themselves: the
screenshot of the stage equals the original's crop at the viewBox, line for line. The same
screenshot with the tiles hidden (only the display copy) is far from it, which is what this test
would see without the tiles. An image no larger than its display copy gets no tiles.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support.browser import nav, needs_chromium, new_page, open_project, view_box, wait_image_drawn

pytestmark = [pytest.mark.browser, needs_chromium]

BIG = (6000, 4000)
SMALL = (1200, 800)


def lines_image(size_wh: tuple[int, int], seed: int = 7) -> np.ndarray:
    """White, with 1-px black lines at irregular gaps (no period, so a shifted view cannot match)."""
    w, h = size_wh
    rng = np.random.default_rng(seed)
    arr = np.full((h, w, 3), 255, dtype=np.uint8)
    xs = np.cumsum(rng.integers(3, 17, size=w // 3))
    ys = np.cumsum(rng.integers(3, 17, size=h // 3))
    arr[:, xs[xs < w]] = 0
    arr[ys[ys < h], :] = 0
    return arr


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@dataclass
class Native:
    page: Any
    ids: list[int]
    original: np.ndarray


@pytest.fixture(scope="module")
def native(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[Native]:
    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Native").slug
    original = lines_image(BIG)
    srcs = [
        ImageSource(name="a_big.png", data=_png(original)),
        ImageSource(name="b_small.png", data=_png(lines_image(SMALL, seed=8))),
    ]
    imports.import_images(ws, slug, srcs)
    classes.add_category(ws, slug, Category(name="edge"))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    page = new_page(browser, ui_server.url)  # device_scale_factor 1: one screen pixel per CSS pixel
    open_project(page, "Native")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    yield Native(page=page, ids=ids, original=original)
    page.context.close()


def _stage_shot(page: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(screenshot, rows, cols): a whole-pixel region of the stage's upper part (the hint sits at the
    bottom), and the natural row and column under each screen pixel's centre."""
    box = page.locator(".wb-svg").bounding_box()
    vx, vy, vw, vh = view_box(page)
    s = min(box["width"] / vw, box["height"] / vh)
    ox = box["x"] + (box["width"] - vw * s) / 2
    oy = box["y"] + (box["height"] - vh * s) / 2
    left, top = math.ceil(box["x"]) + 2, math.ceil(box["y"]) + 2
    w, h = int(box["width"]) - 6, int(box["height"] * 0.6)
    shot = np.asarray(
        Image.open(io.BytesIO(page.screenshot(clip={"x": left, "y": top, "width": w, "height": h}))).convert(
            "RGB"
        )
    ).astype(np.int16)
    cols = np.floor(vx + (left + np.arange(shot.shape[1]) + 0.5 - ox) / s).astype(int)
    rows = np.floor(vy + (top + np.arange(shot.shape[0]) + 0.5 - oy) / s).astype(int)
    return shot, rows, cols


def _tile_hrefs(page: Any) -> list[str]:
    return page.locator('[data-role="tiles"] image').evaluate_all(
        "es => es.map((e) => e.getAttribute('href'))"
    )


def test_one_to_one_shows_the_originals_pixels(native: Native, ui_server: Any) -> None:
    page = native.page
    page.get_by_role("button", name="1:1").click()
    page.locator(f'.wb-annot[data-native-image="{native.ids[0]}"]').wait_for(timeout=60_000)
    hrefs = _tile_hrefs(page)  # fetched from the tile server, not through a Streamlit rerun
    assert hrefs and all(h.startswith("http://127.0.0.1:") and f":{ui_server.port}/" not in h for h in hrefs)
    box = page.locator(".wb-svg").bounding_box()
    _, _, vw, vh = view_box(page)
    assert abs(min(box["width"] / vw, box["height"] / vh) - 1.0) < 1e-6  # one screen px per natural px
    shot, rows, cols = _stage_shot(page)
    assert rows.min() >= 0 and cols.min() >= 0 and rows.max() < BIG[1] and cols.max() < BIG[0]
    expected = native.original[np.ix_(rows, cols)].astype(np.int16)
    diff = np.abs(shot - expected).mean()
    assert diff < 2, f"stage differs from the original's pixels by {diff:.2f} on average"
    # every 1-px vertical line of the original in view is a dark 1-px column on screen
    line_cols = np.flatnonzero((native.original[0, cols] == 0).all(axis=-1))
    assert len(line_cols) > 20
    grey = shot.mean(axis=-1)
    free_rows = ~(native.original[rows, cols[0]] == 0).all(axis=-1)  # rows without a horizontal line
    profile = grey[free_rows].mean(axis=0)
    assert (profile[line_cols] < 40).all(), "a 1-px line is not black on screen"
    white = np.setdiff1d(np.arange(len(cols)), line_cols)
    assert (profile[white] > 215).all(), "a white column is not white on screen"

    # the display copy alone (tiles hidden) is what the stage showed before tiles: far from it
    tiles = page.locator('.wb-annot [data-role="tiles"]')
    tiles.evaluate("g => { g.style.display = 'none'; }")
    page.wait_for_timeout(200)
    blurred, _, _ = _stage_shot(page)
    blurred_diff = np.abs(blurred - expected).mean()
    assert blurred_diff > 5 * max(diff, 1.0), (diff, blurred_diff)
    assert blurred.mean(axis=-1)[free_rows].mean(axis=0)[line_cols].mean() > 60  # smeared grey
    tiles.evaluate("g => { g.style.display = ''; }")


def test_zooming_out_drops_the_tiles_and_small_images_get_none(native: Native) -> None:
    page = native.page
    assert page.locator('[data-role="tiles"] image').count() > 0
    page.keyboard.press("f")
    page.wait_for_function("() => !document.querySelector('.wb-annot [data-role=\"tiles\"] image')")
    assert page.locator(".wb-annot").get_attribute("data-native-image") is None
    page.keyboard.press("d")
    wait_image_drawn(page, native.ids[1])
    page.get_by_role("button", name="1:1").click()
    page.wait_for_timeout(800)  # an ask would have been answered by now
    assert page.locator('[data-role="tiles"] image').count() == 0
    box = page.locator(".wb-svg").bounding_box()
    _, _, vw, vh = view_box(page)
    assert abs(min(box["width"] / vw, box["height"] / vh) - 1.0) < 1e-6


def test_tiles_still_show_after_leaving_the_page_and_coming_back(native: Native) -> None:
    """A full run (another page and back) drops the tab's media registrations: the registered
    tiles are added again, so 1:1 shows native pixels again instead of failed loads."""
    page = native.page
    page.keyboard.press("f")
    page.keyboard.press("a")
    wait_image_drawn(page, native.ids[0])
    page.get_by_role("button", name="1:1").click()
    page.locator(f'.wb-annot[data-native-image="{native.ids[0]}"]').wait_for(timeout=60_000)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})  # the tiles are fetched again
    nav(page, "Classes")
    nav(page, "Annotate")
    wait_image_drawn(page, native.ids[0])
    page.get_by_role("button", name="1:1").click()
    page.locator(f'.wb-annot[data-native-image="{native.ids[0]}"]').wait_for(timeout=60_000)
    shot, rows, cols = _stage_shot(page)
    expected = native.original[np.ix_(rows, cols)].astype(np.int16)
    assert np.abs(shot - expected).mean() < 2
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})


def test_without_the_tile_server_the_tiles_come_through_streamlit(
    native: Native, browser: Any, ui_server: Any
) -> None:
    """A browser that cannot reach the tile server (a proxy that forwards the UI's port only) asks
    Python for the tiles instead: still the original's pixels at 1:1."""
    page = new_page(browser, ui_server.url)
    port = f":{ui_server.port}/"
    page.route(lambda url: url.endswith(".bmp") and port not in url, lambda route: route.abort())
    page.goto(f"{ui_server.url}/annotate?project=native&image={native.ids[0]}")
    wait_image_drawn(page, native.ids[0])
    page.get_by_role("button", name="1:1").click()
    page.locator(f'.wb-annot[data-native-image="{native.ids[0]}"]').wait_for(timeout=60_000)
    hrefs = _tile_hrefs(page)
    assert hrefs and all("/media/" in h for h in hrefs), hrefs  # Streamlit media, not the tile server
    shot, rows, cols = _stage_shot(page)
    expected = native.original[np.ix_(rows, cols)].astype(np.int16)
    assert np.abs(shot - expected).mean() < 2
    page.context.close()
