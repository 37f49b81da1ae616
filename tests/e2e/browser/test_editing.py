"""Annotator editing in Chromium: zoom and pan, vertex deletion, undo/redo, draft keys, class keys,
Delete, and row ids that stay stable across saves and exports.

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
    CLASS_PICKER,
    annotator,
    nav,
    needs_chromium,
    new_page,
    open_project,
    view_box,
    view_mapping,
    wait_for,
    wait_image_drawn,
)
from tests.support.editor import Editor
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE = (400, 300)
CLASSES = ("a", "b", "c")
N_IMAGES = 12  # one per test, and some to move on to
Point = tuple[float, float]


@pytest.fixture(scope="module")
def ed(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[Editor]:
    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Editing").slug
    srcs = [ImageSource(name=f"e{i}.png", data=png_bytes(SIZE, (20 * i, 90, 120))) for i in range(N_IMAGES)]
    imports.import_images(ws, slug, srcs)
    for name in CLASSES:
        classes.add_category(ws, slug, Category(name=name))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    page = new_page(browser, ui_server.url)
    open_project(page, "Editing")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    yield Editor(page=page, ws=ws, slug=slug, ids=ids)
    page.context.close()


def _flat(pts: list[Point]) -> list[float]:
    return [c for p in pts for c in p]


def _near(a: Any, b: Any, tol: float = 1.0) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def page_px_per_natural_px(page: Any) -> float:
    box = page.locator(".wb-svg").bounding_box()
    _, _, vw, vh = view_box(page)
    return min(box["width"] / vw, box["height"] / vh)


TRIANGLE = [(100.0, 80.0), (220.0, 90.0), (150.0, 200.0)]


def test_zoom_and_pan_keep_natural_coordinates(ed: Editor) -> None:
    image_id = ed.fresh_image()
    page = ed.page
    assert view_box(page) == (0, 0, *SIZE)
    # wheel zoom about the cursor: the image point under it stays under it
    to_client, _ = view_mapping(page)
    anchor = to_client(120.0, 100.0)
    page.mouse.move(*anchor)
    page.mouse.wheel(0, -400)
    wait_for(lambda: view_box(page)[2], lambda w: w < SIZE[0] * 0.8, what="wheel zoom")
    assert _near(view_mapping(page)[1](*anchor), (120.0, 100.0))
    # the + button zooms about the centre by 1.25
    w_before = view_box(page)[2]
    annotator(page).locator('[data-cmd="zoomin"]').click()
    assert abs(view_box(page)[2] - w_before / 1.25) < 1e-6
    # space-drag pans by the dragged distance and adds no vertex
    vx, vy, _, _ = view_box(page)
    scale = page_px_per_natural_px(page)
    start = view_mapping(page)[0](140.0, 110.0)
    page.keyboard.down("Space")
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 60, start[1] + 40, steps=4)
    page.mouse.up()
    page.keyboard.up("Space")
    nx, ny, _, _ = view_box(page)
    assert _near((vx - nx, vy - ny), (60 / scale, 40 / scale), tol=0.5)
    assert annotator(page).locator(".wb-draftv").count() == 0
    # middle-button drag pans too
    before = view_box(page)
    page.mouse.move(*start)
    page.mouse.down(button="middle")
    page.mouse.move(start[0] - 30, start[1] - 20, steps=3)
    page.mouse.up(button="middle")
    after = view_box(page)
    assert after[0] > before[0] and after[1] > before[1]
    # drawn at this zoom and pan (inside the visible part), the polygon is stored in natural pixels
    x, y, w, h = view_box(page)
    assert w < SIZE[0] / 2 and x > 0 and y > 0
    tri = [(x + 0.3 * w, y + 0.3 * h), (x + 0.7 * w, y + 0.35 * h), (x + 0.5 * w, y + 0.75 * h)]
    ed.draw(tri)
    (inst,) = ed.wait(image_id, lambda v: len(v) == 1, "polygon drawn while zoomed")
    assert _near(inst.polygons[0], _flat(tri)), (inst.polygons, tri)
    # F fits the whole image again
    page.keyboard.press("f")
    assert view_box(page) == (0, 0, *SIZE)


def _select_tool_vertex(ed: Editor, k: int) -> Any:
    return annotator(ed.page).locator(f'circle.wb-vertex[data-v="{k}"]')


def test_alt_click_and_right_click_delete_a_vertex(ed: Editor) -> None:
    image_id = ed.fresh_image()
    pentagon = [(80.0, 60.0), (200.0, 50.0), (300.0, 120.0), (240.0, 240.0), (90.0, 220.0)]
    ed.draw(pentagon)
    ed.wait(image_id, lambda v: len(v) == 1 and len(v[0].polygons[0]) == 10, "pentagon")
    ed.page.keyboard.press("v")  # edit tool; a finished shape is not selected: click inside it
    ed.click([(180.0, 140.0)])
    _select_tool_vertex(ed, 1).click(modifiers=["Alt"])
    (inst,) = ed.wait(image_id, lambda v: len(v[0].polygons[0]) == 8, "alt-click deletion")
    assert _near(inst.polygons[0], _flat([pentagon[0], *pentagon[2:]]))
    _select_tool_vertex(ed, 0).click(button="right")
    (inst,) = ed.wait(image_id, lambda v: len(v[0].polygons[0]) == 6, "right-click deletion")
    assert _near(inst.polygons[0], _flat(pentagon[2:]))
    # a triangle keeps its three vertices: the user is told to delete the shape instead
    _select_tool_vertex(ed, 0).click(button="right")
    annotator(ed.page).locator(".wb-hint", has_text="at least 3 vertices").wait_for()
    assert len(ed.instances(image_id)[0].polygons[0]) == 6


def test_undo_and_redo(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    square = [(250.0, 150.0), (350.0, 150.0), (350.0, 250.0), (250.0, 250.0)]
    ed.draw(square)
    ed.wait(image_id, lambda v: len(v) == 2, "square")
    ed.page.keyboard.press("Control+z")
    (inst,) = ed.wait(image_id, lambda v: len(v) == 1, "undo of the square")
    assert _near(inst.polygons[0], _flat(TRIANGLE))
    ed.page.keyboard.press("Control+z")
    ed.wait(image_id, lambda v: v == [], "undo of the triangle")
    ed.page.keyboard.press("Control+Shift+Z")
    ed.wait(image_id, lambda v: len(v) == 1, "redo of the triangle")
    ed.page.keyboard.press("Control+Shift+Z")
    insts = ed.wait(image_id, lambda v: len(v) == 2, "redo of the square")
    assert sorted(len(i.polygons[0]) for i in insts) == [6, 8]
    assert annotator(ed.page).locator('[data-cmd="redo"]').is_disabled()


def test_undo_of_a_new_shape_selects_no_other_shape(ed: Editor) -> None:
    """Undoing the square (selected since it was closed) leaves nothing selected: a selection kept by
    index would pass to the triangle, and the next class key or Delete would act on it."""
    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    ed.draw([(250.0, 150.0), (350.0, 150.0), (350.0, 250.0), (250.0, 250.0)])
    ed.wait(image_id, lambda v: len(v) == 2, "square")
    ed.page.keyboard.press("Control+z")
    ed.wait(image_id, lambda v: len(v) == 1, "undo of the square")
    assert annotator(ed.page).locator(".wb-list li.wb-selected").count() == 0
    ed.page.keyboard.press("2")  # picks the class of the next shape only
    ed.page.keyboard.press("Control+Shift+Z")  # a later save: the square comes back
    insts = ed.wait(image_id, lambda v: len(v) == 2, "redo of the square")
    assert [i.category for i in insts] == ["a", "a"]


def test_escape_cancels_and_backspace_drops_the_last_draft_vertex(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.click([(50.0, 50.0), (120.0, 40.0)])
    ed.page.keyboard.press("Escape")
    assert annotator(ed.page).locator(".wb-draftv").count() == 0
    ed.click([*TRIANGLE, (60.0, 250.0)])
    ed.page.keyboard.press("Backspace")
    assert annotator(ed.page).locator(".wb-draftv").count() == 3
    ed.page.keyboard.press("Enter")
    (inst,) = ed.wait(image_id, lambda v: len(v) == 1, "triangle after Backspace")
    assert _near(inst.polygons[0], _flat(TRIANGLE))


def test_shift_and_a_number_key_change_the_class_of_the_selected_shape(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.page.keyboard.press("1")
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1 and v[0].category == "a", "triangle of class a")
    ed.page.keyboard.press("v")
    ed.click([(155.0, 120.0)])  # select it
    for key, name in (("3", "c"), ("2", "b")):
        ed.page.keyboard.press(f"Shift+{key}")
        ed.wait(image_id, lambda v, n=name: v[0].category == n, f"class {name}")
        assert annotator(ed.page).locator(CLASS_PICKER).input_value() == name
    ed.page.keyboard.press("Shift+9")  # no ninth class: nothing changes
    ed.page.keyboard.press("Escape")
    assert ed.instances(image_id)[0].category == "b"


def test_delete_removes_the_selected_shape(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "first shape")
    square = [(250.0, 150.0), (350.0, 150.0), (350.0, 250.0), (250.0, 250.0)]
    ed.draw(square)
    ed.wait(image_id, lambda v: len(v) == 2, "second shape")
    ed.page.keyboard.press("Delete")  # nothing selected (a finished shape is not): nothing deleted
    ed.page.wait_for_timeout(300)
    assert len(ed.instances(image_id)) == 2
    ed.page.keyboard.press("v")
    ed.click([(300.0, 200.0)])  # select the square
    ed.page.keyboard.press("Delete")
    (inst,) = ed.wait(image_id, lambda v: len(v) == 1, "square deleted")
    assert _near(inst.polygons[0], _flat(TRIANGLE))
    # select the triangle by clicking inside it with the edit tool, then delete it
    ed.click([(155.0, 120.0)])
    ed.page.keyboard.press("Delete")
    ed.wait(image_id, lambda v: v == [], "triangle deleted")


def _coco_ann_ids(ed: Editor, image_id: int) -> dict[float, int]:
    from workbench.services import export

    with zipfile.ZipFile(io.BytesIO(export.export_coco_zip(ed.ws, ed.slug))) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".json"))
        coco = json.loads(zf.read(name))
    return {a["segmentation"][0][0]: a["id"] for a in coco["annotations"] if a["image_id"] == image_id}


def test_row_ids_are_stable_across_saves_and_exports(ed: Editor) -> None:
    image_id = ed.fresh_image()
    first = [(40.0, 40.0), (100.0, 40.0), (70.0, 90.0)]
    second = [(150.0, 40.0), (210.0, 40.0), (180.0, 90.0)]
    third = [(260.0, 40.0), (320.0, 40.0), (290.0, 90.0)]
    ed.draw(first)
    ed.wait(image_id, lambda v: len(v) == 1, "first polygon")
    ed.draw(second)
    before = {i.polygons[0][0]: i.id for i in ed.wait(image_id, lambda v: len(v) == 2, "second polygon")}
    coco_before = _coco_ann_ids(ed, image_id)
    assert coco_before == before
    # the browser learnt the row ids of the shapes it drew
    shapes = annotator(ed.page).locator("polygon.wb-shape")
    wait_for(
        lambda: sorted(shapes.nth(k).get_attribute("data-row-id") for k in range(shapes.count())),
        lambda v: v == sorted(str(i) for i in before.values()),
        what="row ids in the browser",
    )
    ed.draw(third)
    after = {i.polygons[0][0]: i for i in ed.wait(image_id, lambda v: len(v) == 3, "third polygon")}
    assert {k: after[k].id for k in before} == before
    assert [after[k].version for k in before] == [1, 1]  # unchanged rows are not rewritten
    coco_after = _coco_ann_ids(ed, image_id)
    assert {k: coco_after[k] for k in coco_before} == coco_before
    # editing the third (its class: select it, Shift+2) keeps its id too
    (third_id,) = {i.id for i in after.values()} - set(before.values())
    ed.page.keyboard.press("v")
    ed.click([(290.0, 55.0)])
    ed.page.keyboard.press("Shift+2")
    edited = ed.wait(image_id, lambda v: any(i.category == "b" for i in v), "third polygon edited")
    assert {i.id for i in edited} == {*before.values(), third_id}
    assert next(i for i in edited if i.category == "b").id == third_id


def test_refused_move_stays_on_the_image_with_its_shapes(ed: Editor) -> None:
    """Moving on shows the next image at once; when the save before it is refused (a shape this tab
    changed was changed elsewhere too), the tab goes back to this image with the user's shapes."""
    from dataclasses import replace

    from workbench.services import annotate

    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    theirs = annotate.load_image(ed.ws, ed.slug, image_id)
    moved = replace(theirs.instances[0], polygons=((10.0, 10.0, 60.0, 10.0, 30.0, 60.0),))
    ed.page.keyboard.press("v")
    ed.click([(155.0, 120.0)])  # select, then relabel: a change to the same shape
    # the other save lands just before the relabel, well inside the 2 s in which this tab's watcher
    # would otherwise load it first (and there would be nothing to clash with)
    annotate.save_image(ed.ws, ed.slug, image_id, [moved], expected_version=theirs.version)
    ed.page.keyboard.press("Shift+2")
    ed.page.get_by_text("changed here and in another tab").first.wait_for()
    ed.page.keyboard.press("d")
    wait_image_drawn(ed.page, image_id)
    ann = annotator(ed.page)
    assert ann.get_attribute("data-shown-image") == str(image_id)
    assert ann.locator(".wb-list li[data-i]").count() == 1
    (stored,) = ed.instances(image_id)  # nothing overwritten
    assert stored.category == "a" and stored.polygons[0][0] == 10.0
    ed.page.get_by_role("button", name="Keep mine").click()
    ed.wait(image_id, lambda v: len(v) == 1 and v[0].category == "b", "mine kept")


def test_space_and_enter_on_a_button_of_the_page_still_press_it(ed: Editor) -> None:
    """The annotator's Space (pan) and Enter (close polygon) must not swallow a focused page button."""
    page = ed.page
    page.evaluate(
        """() => { const b = document.createElement('button'); b.id = 'wb-probe'; b.textContent = 'probe';
                   window.__probeClicks = 0; b.onclick = () => { window.__probeClicks += 1; };
                   document.body.appendChild(b); }"""
    )
    try:
        page.focus("#wb-probe")
        page.keyboard.press("Space")
        page.keyboard.press("Enter")
        assert page.evaluate("window.__probeClicks") == 2
    finally:
        page.evaluate("document.getElementById('wb-probe').remove()")


def test_the_stage_fits_a_short_window(ed: Editor) -> None:
    page = ed.page
    stage = annotator(page).locator('[data-role="stage"]')
    height = lambda: stage.evaluate("e => e.getBoundingClientRect().height")  # noqa: E731
    size = page.viewport_size
    tall = height()
    try:
        page.set_viewport_size({"width": 1024, "height": 700})
        short = wait_for(height, lambda h: h < tall, what="the stage shrinking with the window")
        assert short == 700 - 170  # the window's height less the room for the toolbar and header
        stage.evaluate("e => e.scrollIntoView({block: 'start'})")  # Streamlit scrolls its main block
        box = wait_for(stage.bounding_box, lambda b: b["y"] < 5, what="the stage scrolled to the top")
        assert box["y"] > -1 and box["y"] + box["height"] <= 700  # the whole stage is in the window
    finally:
        page.set_viewport_size(size)
    assert wait_for(height, lambda h: h == tall, what="the stage back to its height") == tall


def test_long_class_name_is_cut_with_an_ellipsis_and_keeps_the_delete_button(
    browser, ui_server, ui_workspace
) -> None:  # noqa: ANN001
    from tests.support.browser import wait_image_drawn
    from workbench.domain import Category, Instance
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Long names").slug
    imports.import_images(ws, slug, [ImageSource(name="long.png", data=png_bytes((200, 150)))])
    long_name = ("very long class name " * 10)[:119] + "Z"
    assert len(long_name) == 120
    classes.add_category(ws, slug, Category(name=long_name))
    (image,) = annotate.list_images(ws, slug)
    square = Instance(long_name, polygons=((20.0, 20.0, 80.0, 20.0, 80.0, 80.0, 20.0, 80.0),))
    annotate.save_image(
        ws, slug, image.id, [square], expected_version=annotate.load_image(ws, slug, image.id).version
    )
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{ui_server.url}/annotate?project={slug}")
        wait_image_drawn(page, image.id)
        row = page.locator(".wb-list li").first
        name = row.locator(".wb-name")
        assert name.get_attribute("title") == long_name  # the full name on hover
        assert name.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
        assert name.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, not wrapped or overflowing
        side = page.locator(".wb-side").bounding_box()
        for act in ("delete", "toggle"):
            button = row.locator(f'[data-act="{act}"]')
            assert button.is_visible()
            box = button.bounding_box()
            assert (
                box["width"] > 4
                and side["x"] <= box["x"]
                and box["x"] + box["width"] <= side["x"] + side["width"]
            )
        assert row.evaluate("li => li.scrollWidth <= li.clientWidth + 1")  # the row does not overflow
        # the class picker of the toolbar stays a sensible width too (the name is in its tooltip)
        picker = page.locator(".wb-annot " + CLASS_PICKER)
        assert picker.bounding_box()["width"] <= 320
        assert picker.get_attribute("title").startswith(long_name) or long_name in picker.evaluate(
            "s => s.selectedOptions[0].title"
        )
    finally:
        ctx.close()
