"""The annotator's former traps, in Chromium with the real mouse and keys: class keys that relabelled the
shape just drawn, keypoints dropped by a relabel, a filter that moved the user away after the first save,
drafts saved by navigation, keys typed into a dropdown, and two tabs that could only overwrite each other.

One server, one browser and one page for the module; each test moves to an image of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
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
    wait_for,
    wait_image_drawn,
    wait_keys_to_annotator,
)
from tests.support.editor import Editor
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE = (400, 300)
N_IMAGES = 14
TRIANGLE = [(100.0, 80.0), (220.0, 90.0), (150.0, 200.0)]
SQUARE = [(250.0, 150.0), (350.0, 150.0), (350.0, 250.0), (250.0, 250.0)]


@pytest.fixture(scope="module")
def ed(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[Editor]:
    from workbench.domain import Category, KeypointSchema
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Traps").slug
    srcs = [
        ImageSource(name=f"t{i:02d}.png", data=png_bytes(SIZE, (15 * i, 80, 140))) for i in range(N_IMAGES)
    ]
    imports.import_images(ws, slug, srcs)
    classes.add_category(ws, slug, Category(name="plain"))
    classes.add_category(ws, slug, Category(name="pin", keypoints=KeypointSchema(names=("tip", "base"))))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    page = new_page(browser, ui_server.url)
    open_project(page, "Traps")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    yield Editor(page=page, ws=ws, slug=slug, ids=ids)
    page.context.close()


def _pick(page: Any, label: str, option: str) -> None:
    """Choose an option of one of the page's Streamlit dropdowns with the mouse."""
    page.locator('[data-testid="stSelectbox"]', has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_keys_to_annotator(page)  # keys pressed before the rerun has settled would go to the dropdown


def _selected_rows(ed: Editor) -> int:
    return annotator(ed.page).locator(".wb-list li.wb-selected").count()


def test_a_finished_polygon_is_deselected_and_class_keys_choose_the_next_shapes_class(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1 and v[0].category == "plain", "triangle")
    assert _selected_rows(ed) == 0
    ed.page.keyboard.press("2")  # the next shape's class: the triangle stays "plain"
    assert annotator(ed.page).locator(CLASS_PICKER).input_value() == "pin"
    ed.draw(SQUARE)
    insts = ed.wait(image_id, lambda v: len(v) == 2, "square")
    assert sorted(i.category for i in insts) == ["pin", "plain"]


def test_a_relabel_that_would_drop_keypoints_asks_first(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.page.keyboard.press("2")
    ed.page.keyboard.press("k")
    ed.click([(120.0, 100.0), (180.0, 160.0)])  # tip, base
    ed.wait(image_id, lambda v: len(v) == 1 and v[0].keypoints and v[0].keypoints[5] == 2, "two keypoints")
    assert _selected_rows(ed) == 1  # the keypoint instance being placed
    answers: list[str] = []

    def answer(accept: bool) -> None:
        def on_dialog(d: Any) -> None:
            answers.append(d.message)
            d.accept() if accept else d.dismiss()

        ed.page.once("dialog", on_dialog)

    answer(False)
    ed.page.keyboard.press("Shift+1")
    wait_for(lambda: answers, lambda a: len(a) == 1, what="the question")
    assert "keypoints" in answers[0]
    ed.page.wait_for_timeout(300)
    (inst,) = ed.instances(image_id)
    assert inst.category == "pin" and inst.keypoints is not None  # kept
    answer(True)
    ed.page.keyboard.press("Shift+1")
    ed.wait(image_id, lambda v: v == [] or v[0].category == "plain", "relabelled after yes")


def test_a_status_filter_keeps_the_open_image_after_its_first_save(ed: Editor) -> None:
    image_id = ed.fresh_image()
    _pick(ed.page, "Status", "unlabeled")
    ed.page.wait_for_timeout(500)
    assert annotator(ed.page).get_attribute("data-loaded-image") == str(image_id)  # the same image
    ed.page.keyboard.press("p")
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    ed.page.wait_for_timeout(1500)  # a rerun that would move away has had its time
    assert annotator(ed.page).get_attribute("data-loaded-image") == str(image_id)
    assert annotator(ed.page).locator(".wb-list li[data-i]").count() == 1
    ed.page.keyboard.press("d")  # moving on goes to the next unlabeled image
    wait_image_drawn(ed.page, ed.ids[ed.at + 1])
    ed.at += 1
    _pick(ed.page, "Status", "all")
    wait_image_drawn(ed.page)


def test_keys_go_to_the_annotator_after_a_filter_is_used(ed: Editor) -> None:
    ed.fresh_image()
    _pick(ed.page, "Split", "all")
    ed.page.wait_for_timeout(300)
    ed.page.keyboard.press("v")
    wait_for(lambda: annotator(ed.page).get_attribute("data-tool"), lambda t: t == "select", what="edit tool")
    search = ed.page.locator('[data-testid="stSelectbox"]', has_text="Split").locator("input")
    assert "v" not in (search.input_value() or "")
    ed.page.keyboard.press("p")


def test_moving_away_keeps_a_draft_for_its_image_and_never_saves_it(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.click(TRIANGLE)  # three vertices, not closed
    ed.page.keyboard.press("d")
    wait_image_drawn(ed.page, ed.ids[ed.at + 1])
    assert annotator(ed.page).locator(".wb-draftv").count() == 0
    assert ed.instances(image_id) == []  # nothing saved by moving
    ed.page.keyboard.press("a")
    wait_image_drawn(ed.page, image_id)
    assert annotator(ed.page).locator(".wb-draftv").count() == 3  # the draft is back
    ed.page.get_by_role("button", name="Done").first.click()  # nor by Done
    ed.page.wait_for_timeout(500)
    assert ed.instances(image_id) == []
    ed.page.keyboard.press("Enter")
    ed.wait(image_id, lambda v: len(v) == 1, "the draft closed by Enter")


def test_a_reload_with_a_draft_open_warns(browser: Any, ui_server: Any, ed: Editor) -> None:
    page = new_page(browser, ui_server.url)
    open_project(page, "Traps")
    nav(page, "Annotate")
    wait_image_drawn(page)
    own = Editor(page=page, ws=ed.ws, slug=ed.slug, ids=ed.ids)
    own.click([(50.0, 50.0), (120.0, 40.0)])
    kinds: list[str] = []
    page.on("dialog", lambda d: (kinds.append(d.type), d.accept()))
    page.close(run_before_unload=True)
    for _ in range(50):  # the sync API hands events over during calls: the module's page pumps them
        if kinds:
            break
        ed.page.wait_for_timeout(100)
    assert kinds == ["beforeunload"]
    page.context.close()


def test_edits_to_other_shapes_merge_without_a_question(ed: Editor) -> None:
    from workbench.domain import Instance
    from workbench.services import annotate

    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    theirs = annotate.load_image(ed.ws, ed.slug, image_id)
    other = Instance(category="plain", polygons=((20.0, 220.0, 80.0, 220.0, 50.0, 280.0),))
    annotate.save_image(ed.ws, ed.slug, image_id, [*theirs.instances, other], expected_version=theirs.version)
    ed.draw(SQUARE)  # saved against the older version: merged shape by shape
    ed.wait(image_id, lambda v: len(v) == 3, "merged: triangle, theirs and the square")
    wait_for(
        lambda: annotator(ed.page).locator(".wb-list li[data-i]").count(), lambda n: n == 3, what="3 rows"
    )
    assert ed.page.get_by_text("changed here and in another tab").count() == 0


def test_the_same_shape_changed_in_two_places_asks_and_shows_both(ed: Editor) -> None:
    from workbench.services import annotate

    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    top = ed.page.locator(".wb-svg").bounding_box()["y"]
    theirs = annotate.load_image(ed.ws, ed.slug, image_id)
    moved = replace(theirs.instances[0], polygons=((10.0, 10.0, 60.0, 10.0, 30.0, 60.0),))
    ed.page.keyboard.press("v")
    ed.click([(155.0, 120.0)])
    # the other save lands just before the relabel, well inside the 2 s in which this tab's watcher
    # would otherwise load it first (and there would be nothing to clash with)
    annotate.save_image(ed.ws, ed.slug, image_id, [moved], expected_version=theirs.version)
    ed.page.keyboard.press("Shift+2")  # mine: a relabel of the same shape
    ed.page.get_by_text("changed here and in another tab").first.wait_for()
    assert annotator(ed.page).locator("polygon.wb-ghost").count() == 1  # theirs, dashed
    assert ed.page.locator(".wb-svg").bounding_box()["y"] == top  # the message did not move the canvas
    (stored,) = ed.instances(image_id)
    assert stored.category == "plain" and stored.polygons[0][0] == 10.0
    ed.page.get_by_role("button", name="Take theirs").click()
    wait_for(
        lambda: annotator(ed.page).locator("polygon.wb-ghost").count(), lambda n: n == 0, what="resolved"
    )
    (stored,) = ed.instances(image_id)
    assert stored.category == "plain" and stored.polygons[0][0] == 10.0
    ed.page.keyboard.press("Escape")


def test_a_deleted_shapes_id_is_never_given_to_a_new_one(ed: Editor) -> None:
    image_id = ed.fresh_image()
    ed.draw(TRIANGLE)
    ed.wait(image_id, lambda v: len(v) == 1, "triangle")
    ed.draw(SQUARE)
    (newest,) = [i for i in ed.wait(image_id, lambda v: len(v) == 2, "square") if len(i.polygons[0]) == 8]
    ed.page.keyboard.press("v")
    ed.click([(300.0, 200.0)])
    ed.page.keyboard.press("Delete")  # the newest row of the whole store
    ed.wait(image_id, lambda v: len(v) == 1, "square deleted")
    ed.page.keyboard.press("p")
    ed.draw(SQUARE)
    insts = ed.wait(image_id, lambda v: len(v) == 2, "a new square")
    (again,) = [i for i in insts if len(i.polygons[0]) == 8]
    assert again.id > newest.id  # SQLite without AUTOINCREMENT gave the deleted row's id again
