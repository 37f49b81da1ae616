"""Saves carry only what changed (issue 11), in Chromium with the real mouse and keys: on an image of
300 shapes a moved vertex sends and stores one shape, Delete sends one uid, undo brings the shape
back, and a save made elsewhere meanwhile is merged, not overwritten.

One server, one browser and one page for the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
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

SIZE = (800, 600)
COLS, ROWS, CELL, SIDE = 20, 15, 40.0, 24.0


def square(k: int) -> tuple[float, ...]:
    x, y = (k % COLS) * CELL + 8, (k // COLS) * CELL + 8
    return (x, y, x + SIDE, y, x + SIDE, y + SIDE, x, y + SIDE)


@pytest.fixture(scope="module")
def ed(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[Editor]:
    from workbench.domain import Category, Instance
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Deltas").slug
    imports.import_images(ws, slug, [ImageSource(name="many.png", data=png_bytes(SIZE, (60, 90, 120)))])
    classes.add_category(ws, slug, Category(name="a"))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    shapes = [Instance(category="a", polygons=(square(k),)) for k in range(COLS * ROWS)]
    annotate.save_image(ws, slug, ids[0], shapes, expected_version=1)
    page = new_page(browser, ui_server.url)
    open_project(page, "Deltas")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    page.evaluate("() => { window.__wbActions = []; }")
    page.keyboard.press("v")
    yield Editor(page=page, ws=ws, slug=slug, ids=ids)
    page.context.close()


def rows(ed: Editor) -> dict[int, Any]:
    return {i.id: i for i in ed.instances(ed.ids[0])}


def version(ed: Editor) -> int:
    from workbench.services import annotate

    return annotate.image_version(ed.ws, ed.slug, ed.ids[0])


def saved_after(ed: Editor, v: int) -> dict[str, Any]:
    """The action that made the save past version v (the last one sent), once it is stored."""
    wait_for(lambda: version(ed), lambda now: now > v, what="the save")
    ed.page.locator('.wb-savestate[data-state="saved"]').wait_for()
    return ed.page.evaluate("() => window.__wbActions[window.__wbActions.length - 1]")


def drag_vertex(ed: Editor, k: int, dx: float, dy: float) -> None:
    to_client, _ = view_mapping(ed.page)
    x, y = square(k)[:2]
    ed.page.mouse.click(*to_client(x + SIDE / 2, y + SIDE / 2))  # select it: its vertices are drawn
    ed.page.mouse.move(*to_client(x, y))
    ed.page.mouse.down()
    for s in range(1, 6):
        ed.page.mouse.move(*to_client(x + dx * s / 5, y + dy * s / 5))
    ed.page.mouse.up()


def test_a_moved_vertex_sends_and_stores_one_shape(ed: Editor) -> None:
    before, v = rows(ed), version(ed)
    target = next(i for i in before.values() if i.polygons[0] == square(123))
    drag_vertex(ed, 123, -5.0, -4.0)
    act = saved_after(ed, v)
    assert "instances" not in act and act["deleted"] == []
    assert [it["id"] for it in act["changed"]] == [target.id]
    after = rows(ed)
    assert [k for k in before if before[k].version != after[k].version] == [target.id]
    x, y = after[target.id].polygons[0][:2]
    assert abs(x - (square(123)[0] - 5)) <= 1.0 and abs(y - (square(123)[1] - 4)) <= 1.0
    assert after[target.id].polygons[0][2:] == square(123)[2:]


def test_delete_sends_one_uid_and_undo_brings_the_shape_back(ed: Editor) -> None:
    before, v = rows(ed), version(ed)
    target = next(i for i in before.values() if i.polygons[0] == square(200))
    to_client, _ = view_mapping(ed.page)
    x, y = square(200)[:2]
    ed.page.mouse.click(*to_client(x + SIDE / 2, y + SIDE / 2))
    ed.page.keyboard.press("Delete")
    act = saved_after(ed, v)
    assert act["changed"] == [] and len(act["deleted"]) == 1
    assert target.id not in rows(ed) and len(rows(ed)) == len(before) - 1
    v = version(ed)
    ed.page.keyboard.press("Control+z")
    act = saved_after(ed, v)
    assert [it["polygons"] for it in act["changed"]] == [[list(square(200))]] and act["deleted"] == []
    back = [i for i in rows(ed).values() if i.polygons[0] == square(200)]
    assert len(back) == 1 and back[0].id != target.id and len(rows(ed)) == len(before)


def test_a_save_made_elsewhere_is_merged_not_overwritten(ed: Editor) -> None:
    from dataclasses import replace

    from workbench.services import annotate

    before = rows(ed)
    theirs = next(i for i in before.values() if i.polygons[0] == square(40))
    moved = replace(theirs, polygons=(tuple(c + 3 for c in square(40)),))
    v = version(ed)
    annotate.save_changes(ed.ws, ed.slug, ed.ids[0], [moved], expected_version=v)  # another tab
    drag_vertex(ed, 60, 6.0, 0.0)  # this tab's version is stale now (unless its watcher saw theirs)
    mine = next(i for i in before.values() if i.polygons[0] == square(60))

    def both(now: dict[int, Any]) -> bool:
        return now[theirs.id].polygons[0] == moved.polygons[0] and now[mine.id].polygons[0][0] > square(60)[0] + 3

    wait_for(lambda: rows(ed), both, what="both edits stored")
    assert len(rows(ed)) == len(before)
