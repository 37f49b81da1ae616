"""The Classes page's "Add a class" form in Chromium: after an add it is empty again and offers the next
palette colour, so the next class inherits neither the keypoint schema nor the colour of the last."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import nav, needs_chromium, new_page, open_project, wait_for

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def classes_page(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[tuple[Any, Any, str]]:
    from workbench.services import projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Classes form").slug
    page = new_page(browser, ui_server.url)
    open_project(page, "Classes form")
    nav(page, "Classes")
    yield page, ws, slug
    page.context.close()


def _form(page: Any) -> Any:
    return page.locator('[data-testid="stForm"]')


def _add(page: Any, name: str, keypoints: str = "", skeleton: str = "") -> None:
    form = _form(page)
    form.get_by_label("Class name").fill(name)
    if keypoints:
        form.get_by_label("Keypoint names (comma-separated, in placing order)").fill(keypoints)
    if skeleton:
        form.get_by_label("Skeleton pairs").fill(skeleton)
    form.get_by_role("button", name="Add class").click()
    page.get_by_text(f"Added class '{name}'.").wait_for()


def test_the_next_class_starts_from_an_empty_form_and_the_next_colour(classes_page: Any) -> None:
    from workbench.domain import palette_color
    from workbench.services import classes

    page, ws, slug = classes_page
    _add(page, "person", "nose, tail", "nose-tail")
    form = _form(page)
    for label in ("Class name", "Keypoint names (comma-separated, in placing order)", "Skeleton pairs",
                  "Left/right flip pairs", "Attributes"):  # fmt: skip
        # the flash comes before the form in the page, so the emptied fields may arrive a moment later
        wait_for(lambda label=label: form.get_by_label(label, exact=True).input_value(), lambda v: v == "", 5, what=label)
    _add(page, "bag")
    cats = wait_for(lambda: classes.list_categories(ws, slug), lambda c: len(c) == 2, what="two classes")
    person, bag = cats
    assert person.keypoints is not None and person.keypoints.names == ("nose", "tail")
    assert bag.keypoints is None
    assert (person.color, bag.color) == (palette_color(0), palette_color(1))
    wait_for(lambda: form.get_by_label("Class name").input_value(), lambda v: v == "", 5, what="empty name")
    hexa = palette_color(2)  # the colour the third class is offered
    rgb = f"rgb({int(hexa[1:3], 16)}, {int(hexa[3:5], 16)}, {int(hexa[5:7], 16)})"
    swatch = form.locator('[data-testid="stColorPickerBlock"]')
    wait_for(lambda: swatch.evaluate("e => getComputedStyle(e).backgroundColor"), lambda c: c == rgb, 5,
             what=f"colour picker at {hexa}")  # fmt: skip
