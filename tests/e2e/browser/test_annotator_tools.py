"""Annotator tools in Chromium with the real mouse and keys: the rectangle tool (drawn, resized by a corner,
converted to a polygon, exported as COCO `segmentation: []`), N for a new shape, Done and next, the "?"
overlay of every shortcut, display-only image adjustments and the thumbnail picker.

One server, one browser and one page for the module; each test moves to an image of its own.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    annotator,
    nav,
    needs_chromium,
    new_page,
    open_project,
    view_mapping,
    wait_for,
    wait_image_drawn,
)
from tests.support.editor import Editor
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE = (400, 300)
N_IMAGES = 10
TRIANGLE = [(100.0, 80.0), (220.0, 90.0), (150.0, 200.0)]


@pytest.fixture(scope="module")
def ed(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[Editor]:
    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Tools").slug
    srcs = [
        ImageSource(name=f"b{i:02d}.png", data=png_bytes(SIZE, (20 * i, 100, 90))) for i in range(N_IMAGES)
    ]
    imports.import_images(ws, slug, srcs)
    for name in ("car", "sign"):
        classes.add_category(ws, slug, Category(name=name))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    page = new_page(browser, ui_server.url)
    open_project(page, "Tools")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    yield Editor(page=page, ws=ws, slug=slug, ids=ids)
    page.context.close()


def _drag(ed: Editor, a: tuple[float, float], b: tuple[float, float]) -> None:
    to_client, _ = view_mapping(ed.page)
    ed.page.mouse.move(*to_client(*a))
    ed.page.mouse.down()
    for t in (0.3, 0.6, 1.0):
        ed.page.mouse.move(*to_client(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t))
    ed.page.mouse.up()


def _near(a: Any, b: Any, tol: float = 1.0) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_the_rectangle_tool_draws_resizes_and_converts_a_box(ed: Editor) -> None:
    from workbench.services import export

    image_id = ed.fresh_image()
    ed.page.keyboard.press("2")
    ed.page.keyboard.press("r")
    _drag(ed, (60.0, 50.0), (180.0, 140.0))
    (box,) = ed.wait(image_id, lambda v: len(v) == 1, "box")
    assert box.category == "sign" and box.polygons == () and box.rle is None
    assert _near(box.bbox_xywh, (60.0, 50.0, 120.0, 90.0))
    assert box.area == pytest.approx(120 * 90, rel=0.03)
    with zipfile.ZipFile(io.BytesIO(export.export_coco_zip(ed.ws, ed.slug))) as zf:
        coco = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith(".json"))))
    (ann,) = [a for a in coco["annotations"] if a["image_id"] == image_id]
    assert ann["segmentation"] == [] and _near(ann["bbox"], [60, 50, 120, 90])
    # select it, drag its bottom-right corner
    ed.page.keyboard.press("v")
    ed.click([(120.0, 95.0)])
    corner = annotator(ed.page).locator('circle.wb-corner[data-corner="2"]')
    corner.wait_for()
    _drag(ed, (180.0, 140.0), (230.0, 200.0))

    ed.wait(image_id, lambda v: _near(v[0].bbox_xywh, (60.0, 50.0, 170.0, 150.0)), "resized box")
    annotator(ed.page).get_by_role("button", name="to polygon").click()
    (poly,) = ed.wait(image_id, lambda v: len(v[0].polygons) == 1, "box as a polygon")
    assert _near(poly.polygons[0], (60, 50, 230, 50, 230, 200, 60, 200)) and poly.id == box.id
    ed.page.keyboard.press("p")


def test_n_starts_a_new_shape_of_the_current_class_with_the_last_tool(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.page.keyboard.press("r")
    _drag(ed, (20.0, 20.0), (80.0, 70.0))
    ed.wait(image_id, lambda v: len(v) == 1, "first box")
    ed.page.keyboard.press("v")
    ed.click([(50.0, 45.0)])
    assert annotator(ed.page).locator(".wb-list li.wb-selected").count() == 1
    ed.page.keyboard.press("n")
    assert annotator(ed.page).get_attribute("data-tool") == "box"
    assert annotator(ed.page).locator(".wb-list li.wb-selected").count() == 0
    _drag(ed, (200.0, 150.0), (300.0, 250.0))
    insts = ed.wait(image_id, lambda v: len(v) == 2, "second box")
    assert sorted(i.bbox_xywh[0] for i in insts) == pytest.approx([20.0, 200.0], abs=1.0)
    ed.page.keyboard.press("p")


def test_done_and_next_marks_the_image_done_and_opens_the_next(ed: Editor) -> None:
    from workbench.services import annotate

    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    ed.page.keyboard.press("Control+Enter")
    wait_image_drawn(ed.page, ed.ids[ed.at + 1])
    ed.at += 1
    assert annotate.load_image(ed.ws, ed.slug, image_id).image.status == "done"
    annotator(ed.page).locator('[data-cmd="donenext"]').click()
    wait_image_drawn(ed.page, ed.ids[ed.at + 1])
    assert annotate.load_image(ed.ws, ed.slug, ed.ids[ed.at]).image.status == "done"
    ed.at += 1


def test_the_keys_overlay_lists_every_tool_of_the_toolbar(ed: Editor) -> None:
    ann = annotator(ed.page)
    overlay = ann.locator("[data-testid=wb-keys]")
    assert not overlay.is_visible()
    ed.page.keyboard.press("?")
    overlay.wait_for(state="visible")
    text = overlay.text_content() or ""
    for b in ann.locator(".wb-tool").all():
        title = b.get_attribute("title") or ""
        key = title.split("(")[1].split(")")[0]  # "Polygon (P): ..." -> "P"
        assert f"{key} {b.text_content().strip().lower()}" in text.lower() or key in text, (key, title)
    for words in ("Ctrl+Enter", "Shift+1-9", "Ctrl+Z", "Ctrl+C", "1:1"):
        assert words in text
    ed.page.keyboard.press("Escape")
    overlay.wait_for(state="hidden")


def test_image_adjustments_change_the_display_only(ed: Editor) -> None:
    from workbench.services import annotate

    image_id = ed.fresh_image()
    version = annotate.load_image(ed.ws, ed.slug, image_id).version
    ann = annotator(ed.page)
    box = ed.page.locator(".wb-svg").bounding_box()
    clip = {
        "x": box["x"] + box["width"] / 2 - 20,
        "y": box["y"] + box["height"] / 2 - 20,
        "width": 40,
        "height": 40,
    }

    def mean_level() -> float:
        from PIL import Image, ImageStat

        shot = Image.open(io.BytesIO(ed.page.screenshot(clip=clip))).convert("L")
        return ImageStat.Stat(shot).mean[0]

    before = mean_level()
    ann.locator('[data-cmd="adjust"]').click()
    slider = ann.locator('input[data-adjust="brightness"]')
    slider.fill("0.4")
    wait_for(lambda: ann.get_attribute("data-adjusted"), lambda v: v == "1", what="adjusted")
    ed.page.wait_for_timeout(200)
    brighter = mean_level()
    assert brighter > before + 40
    ann.get_by_role("button", name="Reset").click()
    ed.page.wait_for_timeout(200)
    assert abs(mean_level() - before) < 2
    ann.locator('[data-cmd="adjust"]').click()
    ed.page.wait_for_timeout(300)
    assert annotate.load_image(ed.ws, ed.slug, image_id).version == version  # nothing saved


def test_the_thumbnail_picker_opens_an_image_and_shows_status(ed: Editor) -> None:
    from workbench.services import annotate

    ed.fresh_image()
    annotate.set_status(ed.ws, ed.slug, ed.ids[-2], "needs_review")
    ed.page.get_by_text("Thumbnails").click()
    target = ed.ids[-1]
    button = ed.page.get_by_role("button", name=f"{N_IMAGES}. b{N_IMAGES - 1:02d}.png")
    button.wait_for()
    wait_for(ed.page.locator('[data-testid="stImage"] img').count, lambda n: n >= N_IMAGES, what="thumbnails")
    assert ed.page.get_by_role("button", name=f"⚑ {N_IMAGES - 1}. b{N_IMAGES - 2:02d}.png").count() == 1
    button.click()
    wait_image_drawn(ed.page, target)
    ed.page.get_by_text("Thumbnails").click()
