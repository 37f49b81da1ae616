"""Class attributes in Chromium: defined on the Classes page, set per shape in the annotator's panel,
stored on the instance and exported in COCO ``attributes``; undo takes an edit back."""

from __future__ import annotations

import json
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
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE = (400, 300)
TRIANGLE = [(100.0, 80.0), (220.0, 90.0), (150.0, 200.0)]


@pytest.fixture(scope="module")
def setup(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[tuple[Any, Any, str, int]]:
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Attributes").slug
    imports.import_images(ws, slug, [ImageSource(name="a.png", data=png_bytes(SIZE, (40, 90, 120)))])
    (im,) = annotate.list_images(ws, slug)
    page = new_page(browser, ui_server.url)
    open_project(page, "Attributes")
    yield page, ws, slug, im.id
    page.context.close()


def test_attributes_defined_on_classes_set_in_the_panel_stored_and_exported(
    setup: Any, tmp_path: Path
) -> None:
    from workbench.domain import AttributeDef
    from workbench.services import annotate, classes, export

    page, ws, slug, image_id = setup
    nav(page, "Classes")
    form = page.locator('[data-testid="stForm"]')
    form.get_by_label("Class name", exact=True).fill("car")
    form.get_by_label("Attributes", exact=True).fill("colour: select(red, green)\nplate: text")
    form.get_by_role("button", name="Add class").click()
    page.get_by_text("Added class 'car'.").wait_for()
    (car,) = classes.list_categories(ws, slug)
    assert car.attributes == (
        AttributeDef("colour", "select", ("red", "green")),
        AttributeDef("plate", "text"),
    )

    nav(page, "Annotate")
    wait_image_drawn(page, image_id)
    to_client, _ = view_mapping(page)
    for x, y in TRIANGLE:
        page.mouse.click(*to_client(x, y))
    page.keyboard.press("Enter")

    def stored() -> list[Any]:
        return annotate.load_image(ws, slug, image_id).instances

    wait_for(stored, lambda insts: len(insts) == 1, what="the polygon saved")
    ann = annotator(page)
    panel = ann.locator('[data-role="attrpanel"]')
    assert panel.locator("[data-attr]").count() == 0  # nothing selected, no panel
    ann.locator('.wb-list li[data-i="0"]').click()
    assert panel.locator("label.wb-attr").evaluate_all("els => els.map((e) => e.dataset.attr)") == [
        "occluded",
        "truncated",
        "colour",
        "plate",
    ]
    panel.locator('input[data-attr="occluded"]').check()
    wait_for(lambda: stored()[0].attributes, lambda a: a == {"occluded": True}, what="occluded saved")
    panel.locator('select[data-attr="colour"]').select_option("green")
    want = {"occluded": True, "colour": "green"}
    wait_for(lambda: stored()[0].attributes, lambda a: a == want, what="colour saved")
    # typed into a field, 'd' is text, not 'next image'
    plate = panel.locator('input[data-attr="plate"]')
    plate.click()
    page.keyboard.type("dd 1")
    page.keyboard.press("Enter")
    want = {**want, "plate": "dd 1"}
    wait_for(lambda: stored()[0].attributes, lambda a: a == want, what="plate saved")
    assert ann.get_attribute("data-loaded-image") == str(image_id)

    (path,) = export.export_coco(ws, slug, tmp_path / "out", copy_images=True)
    (coco_ann,) = json.loads(path.read_text())["annotations"]
    assert coco_ann["attributes"] == want

    # one undo takes the last edit back; the panel shows it again
    ann.locator('[data-cmd="undo"]').click()
    want.pop("plate")
    wait_for(lambda: stored()[0].attributes, lambda a: a == want, what="undo saved")
    assert plate.input_value() == ""
    assert panel.locator('select[data-attr="colour"]').input_value() == "green"
