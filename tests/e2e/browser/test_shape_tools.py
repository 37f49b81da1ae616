"""Shape tools in Chromium with the real mouse and keys, checked against the store: copy / paste across
images, duplicate, propagate to the next image, hide all, lock (kept across images and a reload) and
the drawing order (z_order), down to the exported index map.

One server, one browser and one page for the module; each test moves to an image of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support.browser import (
    annotator,
    nav,
    needs_chromium,
    new_page,
    open_project,
    wait_for,
    wait_image_drawn,
)
from tests.support.editor import Editor
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE = (400, 300)
N_IMAGES = 14
TRIANGLE = [(100.0, 80.0), (220.0, 90.0), (150.0, 200.0)]
SQUARE = [(250.0, 150.0), (350.0, 150.0), (350.0, 250.0), (250.0, 250.0)]
IN_TRIANGLE = (155.0, 120.0)
IN_SQUARE = (300.0, 200.0)


@pytest.fixture(scope="module")
def ed(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[Editor]:
    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Shape tools").slug
    srcs = [
        ImageSource(name=f"s{i:02d}.png", data=png_bytes(SIZE, (15 * i, 90, 130))) for i in range(N_IMAGES)
    ]
    imports.import_images(ws, slug, srcs)
    classes.add_category(ws, slug, Category(name="red", color="#e53e3e"))
    classes.add_category(ws, slug, Category(name="blue", color="#3182ce"))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    page = new_page(browser, ui_server.url)
    open_project(page, "Shape tools")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    yield Editor(page=page, ws=ws, slug=slug, ids=ids)
    page.context.close()


def _rows(ed: Editor) -> Any:
    return annotator(ed.page).locator(".wb-list li[data-i]")


def _shown_polygons(ed: Editor) -> int:
    return annotator(ed.page).locator("svg polygon.wb-shape").count()


def _select(ed: Editor, pt: tuple[float, float]) -> None:
    ed.page.keyboard.press("v")
    ed.click([pt])


def _two_shapes(ed: Editor) -> int:
    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    ed.page.keyboard.press("2")
    ed.draw(SQUARE)
    ed.wait(image_id, lambda v: len(v) == 2, "triangle and square")
    return image_id


def test_copy_all_or_the_selected_shape_and_paste_on_other_images(ed: Editor) -> None:
    first = _two_shapes(ed)
    src = ed.instances(first)
    ed.page.keyboard.press("Control+c")  # nothing selected: every shape
    second = ed.fresh_image()
    ed.page.keyboard.press("Control+v")
    pasted = ed.wait(second, lambda v: len(v) == 2, "both shapes pasted on the next image")
    assert [(i.category, i.polygons) for i in pasted] == [(i.category, i.polygons) for i in src]
    assert not {i.id for i in pasted} & {i.id for i in src}  # new rows
    assert len(ed.instances(first)) == 2

    _select(ed, IN_SQUARE)
    ed.page.keyboard.press("Control+c")  # the selected shape alone
    third = ed.fresh_image()
    ed.page.keyboard.press("Control+v")
    (square,) = ed.wait(third, lambda v: len(v) == 1, "the square pasted")
    assert square.category == "blue" and square.polygons == src[1].polygons
    ed.page.keyboard.press("Control+v")  # the clipboard stays: a second paste
    ed.wait(third, lambda v: len(v) == 2, "pasted again")


def test_duplicate_is_the_selected_shape_ten_pixels_aside_and_selected(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    (orig,) = ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    _select(ed, IN_TRIANGLE)
    ed.page.keyboard.press("Control+d")
    insts = ed.wait(image_id, lambda v: len(v) == 2, "the duplicate")
    assert insts[0].polygons == orig.polygons
    assert insts[1].polygons[0] == pytest.approx([v + 10.0 for v in orig.polygons[0]], abs=0.02)
    assert insts[1].id != orig.id
    selected = annotator(ed.page).locator(".wb-list li.wb-selected")
    assert selected.count() == 1 and selected.get_attribute("data-i") == "1"


def test_propagate_saves_copies_on_the_next_image_and_stays(ed: Editor) -> None:
    image_id = _two_shapes(ed)
    nxt = ed.ids[ed.at + 1]
    _select(ed, IN_TRIANGLE)
    ed.page.keyboard.press("Control+Shift+v")  # the selected shape
    (copy,) = ed.wait(nxt, lambda v: len(v) == 1, "the triangle on the next image")
    assert copy.category == "red" and copy.polygons == ed.instances(image_id)[0].polygons
    assert annotator(ed.page).get_attribute("data-loaded-image") == str(image_id)  # still here
    ed.page.keyboard.press("Escape")
    ed.click([(30.0, 30.0)])  # a click on the image deselects
    annotator(ed.page).locator('[data-cmd="propagate"]').click()  # nothing selected: every shape
    insts = ed.wait(nxt, lambda v: len(v) == 3, "both shapes added after the triangle")
    assert [i.category for i in insts] == ["red", "red", "blue"]
    assert len(ed.instances(image_id)) == 2
    ed.page.keyboard.press("d")  # the next image shows them
    wait_image_drawn(ed.page, nxt)
    ed.at += 1
    wait_for(lambda: _rows(ed).count(), lambda n: n == 3, what="three rows on the next image")


def test_hide_all_and_one_hidden_shape_kept_across_images_and_a_reload(ed: Editor) -> None:
    image_id = _two_shapes(ed)
    ed.page.keyboard.press("h")
    assert _shown_polygons(ed) == 0 and annotator(ed.page).locator(".wb-list li.wb-hidden").count() == 2
    ed.page.keyboard.press("h")
    assert _shown_polygons(ed) == 2
    _rows(ed).nth(0).locator('[data-act="toggle"]').click()  # hide the triangle alone
    assert _shown_polygons(ed) == 1
    ed.page.keyboard.press("d")
    wait_image_drawn(ed.page, ed.ids[ed.at + 1])
    ed.page.keyboard.press("a")
    wait_image_drawn(ed.page, image_id)
    assert _shown_polygons(ed) == 1 and "wb-hidden" in (_rows(ed).nth(0).get_attribute("class") or "")
    again = _reopened(ed, image_id)  # a new tab of the same browser (a reload): the hide is kept
    wait_for(lambda: _rows(again).count(), lambda n: n == 2, what="rows in the new tab")
    assert _shown_polygons(again) == 1 and "wb-hidden" in (_rows(again).nth(0).get_attribute("class") or "")
    assert len(ed.instances(image_id)) == 2  # hiding is a view: nothing deleted
    _rows(again).nth(0).locator('[data-act="toggle"]').click()
    assert _shown_polygons(again) == 2
    again.page.close()


def _reopened(ed: Editor, image_id: int) -> Editor:
    """The image opened from its address in a new tab of the module's browser context (its storage)."""
    page = ed.page.context.new_page()
    base = ed.page.url.split("?")[0]  # .../annotate
    page.goto(f"{base}?project={ed.slug}&image={image_id}")
    wait_image_drawn(page, image_id)
    return Editor(page=page, ws=ed.ws, slug=ed.slug, ids=ed.ids)


def _drag(ed: Editor, a: tuple[float, float], b: tuple[float, float]) -> None:
    from tests.support.browser import view_mapping

    to_client, _ = view_mapping(ed.page)
    ed.page.mouse.move(*to_client(*a))
    ed.page.mouse.down()
    for k in range(1, 6):
        ed.page.mouse.move(*to_client(a[0] + (b[0] - a[0]) * k / 5, a[1] + (b[1] - a[1]) * k / 5))
    ed.page.mouse.up()


def test_a_locked_shape_cannot_be_moved_edited_or_deleted_on_the_canvas(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    (orig,) = ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    _select(ed, IN_TRIANGLE)
    ed.page.keyboard.press("l")
    assert _rows(ed).nth(0).locator('[data-act="lock"]').inner_text() == "unlock"
    ed.page.keyboard.press("Delete")
    _drag(ed, TRIANGLE[0], (40.0, 40.0))  # a vertex of the selected shape
    ed.page.keyboard.press("f")
    _drag(ed, IN_TRIANGLE, (300.0, 250.0))  # the shape itself: the view pans instead
    ed.page.keyboard.press("f")
    ed.page.wait_for_timeout(800)
    assert [i.polygons for i in ed.instances(image_id)] == [orig.polygons]
    assert _rows(ed).nth(0).locator('[data-act="delete"]').is_disabled()

    again = _reopened(ed, image_id)  # the lock is kept by the browser (a new tab, as after a reload)
    wait_for(lambda: _rows(again).count(), lambda n: n == 1, what="the row in the new tab")
    assert _rows(again).nth(0).locator('[data-act="lock"]').inner_text() == "unlock"
    again.page.keyboard.press("v")
    _drag(again, IN_TRIANGLE, (165.0, 130.0))
    again.page.keyboard.press("f")
    again.page.wait_for_timeout(800)
    assert [i.polygons for i in ed.instances(image_id)] == [orig.polygons]

    _rows(again).nth(0).locator('[data-act="lock"]').click()  # unlocked: the same drag moves it
    _drag(again, IN_TRIANGLE, (165.0, 130.0))
    (moved,) = ed.wait(image_id, lambda v: v[0].polygons != orig.polygons, "moved once unlocked")
    assert moved.polygons[0][0] == pytest.approx(orig.polygons[0][0] + 10.0, abs=1.5)
    again.page.close()


def _index_map_pixel(ed: Editor, image_id: int, xy: tuple[int, int], tmp: Path) -> int:
    from workbench.services import annotate, export

    out = export.export_labelmaps(ed.ws, ed.slug, tmp / f"maps{image_id}")
    stem = Path(annotate.load_image(ed.ws, ed.slug, image_id).image.file_name).stem
    return int(np.asarray(Image.open(out / "index" / f"{stem}.png"))[xy[1], xy[0]])


def test_bring_to_front_draws_on_top_and_wins_the_index_map(ed: Editor, tmp_path: Path) -> None:
    image_id = ed.fresh_image()
    ed.draw([(60.0, 60.0), (220.0, 60.0), (220.0, 220.0), (60.0, 220.0)])  # red, under
    ed.wait(image_id, lambda v: len(v) == 1, "red square")
    ed.page.keyboard.press("2")
    ed.draw([(150.0, 150.0), (300.0, 150.0), (300.0, 280.0), (150.0, 280.0)])  # blue, drawn later: on top
    red, _ = ed.wait(image_id, lambda v: len(v) == 2, "blue square")
    overlap = (180, 180)
    assert _index_map_pixel(ed, image_id, overlap, tmp_path) == 2  # blue (class 2) over red

    _select(ed, (80.0, 80.0))  # where the red square is alone
    ed.page.keyboard.press("PageUp")
    ed.wait(image_id, lambda v: v[0].z_order > v[1].z_order, "red brought to the front")
    top = annotator(ed.page).locator("svg polygon.wb-shape").last
    # drawn last: on top on the canvas (the tab's order follows the save's answer)
    wait_for(lambda: top.get_attribute("data-row-id"), lambda v: v == str(red.id), what="red on top")
    assert _index_map_pixel(ed, image_id, overlap, tmp_path) == 1
    ed.click([overlap])  # the overlap now picks the red square
    assert annotator(ed.page).locator(".wb-list li.wb-selected").get_attribute("data-i") == "0"

    ed.page.keyboard.press("p")  # a shape drawn now goes on top of the one brought forward
    ed.page.keyboard.press("2")  # selecting the red square made red the class of the next shape
    ed.draw([(110.0, 70.0), (200.0, 70.0), (200.0, 130.0), (110.0, 130.0)])  # blue, over the red square
    *_, third = ed.wait(image_id, lambda v: len(v) == 3, "a third square")
    assert third.category == "blue"
    assert third.z_order == 1 and _index_map_pixel(ed, image_id, (150, 100), tmp_path) == 2
    # the row id reaches the tab with the save's answer, which may come after the row is in the store
    last = annotator(ed.page).locator("svg polygon.wb-shape").last
    wait_for(lambda: last.get_attribute("data-row-id"), lambda v: v == str(third.id), what="third on top")

    _select(ed, (80.0, 80.0))
    ed.page.keyboard.press("Control+BracketLeft")  # the red square under everything
    ed.wait(image_id, lambda v: v[0].z_order < min(v[1].z_order, v[2].z_order), "red sent to the back")
    first = annotator(ed.page).locator("svg polygon.wb-shape").first
    wait_for(lambda: first.get_attribute("data-row-id"), lambda v: v == str(red.id), what="red at the back")
    assert _index_map_pixel(ed, image_id, overlap, tmp_path) == 2


def _mask(inst: Any) -> np.ndarray:
    from workbench.geometry import rle_to_mask

    assert inst.rle is not None and not inst.polygons
    return rle_to_mask(inst.rle).astype(bool)


def test_a_painted_mask_is_duplicated_moved_and_pasted_pixel_for_pixel(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.page.keyboard.press("b")
    _drag(ed, (100.0, 100.0), (200.0, 120.0))
    (orig,) = ed.wait(image_id, lambda v: len(v) == 1 and v[0].rle is not None, "the painted mask")
    src = _mask(orig)
    assert src.sum() > 500
    ed.page.keyboard.press("Control+d")  # the stroke's shape is selected
    _, dup = ed.wait(image_id, lambda v: len(v) == 2, "the duplicate mask")
    assert np.array_equal(_mask(dup), np.roll(src, (10, 10), axis=(0, 1)))
    ed.page.keyboard.press("Control+c")  # the duplicate is selected now
    other = ed.fresh_image()
    ed.page.keyboard.press("Control+v")
    (pasted,) = ed.wait(other, lambda v: len(v) == 1, "the mask pasted on the next image")
    assert np.array_equal(_mask(pasted), _mask(dup)) and pasted.area == dup.area
