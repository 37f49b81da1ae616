"""In Chromium, small defects of the UI that a user sees at once: the sidebar after the first project,
the Annotate page's saved version after a save, an image emptied of its shapes, the epoch axis.

The first test needs the module's workspace empty: it stays first in the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    create_project,
    nav,
    needs_chromium,
    new_page,
    open_project,
    view_mapping,
    wait_for,
    wait_idle,
    wait_image_drawn,
)
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE = (400, 300)
TRIANGLE = [(100.0, 80.0), (220.0, 90.0), (150.0, 200.0)]


def _sidebar(page: Any) -> Any:  # noqa: ANN401
    return page.locator('[data-testid="stSidebar"]')


def test_the_sidebar_offers_the_first_project_as_soon_as_it_is_created(browser, ui_server) -> None:  # noqa: ANN001
    """It said 'No projects yet' beside the 'Created and opened' message until the next rerun."""
    page = new_page(browser, ui_server.url)
    try:
        _sidebar(page).get_by_text("No projects yet").wait_for()  # the workspace starts empty
        create_project(page, "First")
        wait_idle(page)
        sidebar = _sidebar(page)
        assert sidebar.get_by_text("No projects yet").count() == 0
        assert sidebar.get_by_label("Project").input_value() == "First"  # the picker shows it open
        page.get_by_text("Created and opened project").wait_for()  # the message survives
        nav(page, "Classes")  # and the project is the open one
        page.get_by_role("heading", name="Classes · First").wait_for()
    finally:
        page.context.close()


@dataclass
class Annotating:
    page: Any
    ws: Any
    slug: str
    ids: list[int]

    def load(self, image_id: int) -> Any:  # noqa: ANN401
        from workbench.services import annotate

        return annotate.load_image(self.ws, self.slug, image_id)

    def draw(self, pts: list[tuple[float, float]]) -> None:
        to_client, _ = view_mapping(self.page)
        for x, y in pts:
            self.page.mouse.click(*to_client(x, y))
        self.page.keyboard.press("Enter")


@pytest.fixture(scope="module")
def ann(browser, ui_server, ui_workspace: Path) -> Iterator[Annotating]:  # noqa: ANN001
    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Small defects").slug
    imports.import_images(
        ws, slug, [ImageSource(name=f"s{i}.png", data=png_bytes(SIZE, (40 * i, 90, 120))) for i in range(3)]
    )
    classes.add_category(ws, slug, Category(name="thing"))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    page = new_page(browser, ui_server.url)
    open_project(page, "Small defects")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    yield Annotating(page=page, ws=ws, slug=slug, ids=ids)
    page.context.close()


def _caption_version(page: Any) -> int:  # noqa: ANN401
    text = page.get_by_text("saved version").inner_text()
    return int(text.split("saved version", 1)[1].split()[0])


def test_the_caption_shows_the_version_just_saved(ann: Annotating) -> None:
    """The caption under the canvas names the version the last save made (the next save presents it)."""
    image_id = ann.ids[0]
    before = ann.load(image_id).version
    assert _caption_version(ann.page) == before
    ann.draw(TRIANGLE)
    after = wait_for(lambda: ann.load(image_id).version, lambda v: v > before, what="the save").__int__()
    wait_idle(ann.page)
    assert wait_for(lambda: _caption_version(ann.page), lambda v: v == after, what="the caption") == after


def test_an_image_whose_shapes_are_all_deleted_is_unlabeled_again(ann: Annotating) -> None:
    """It stayed 'in progress' with nothing on it: the Dataset page and the status filter counted it
    as started, and 'unlabeled' no longer found it."""
    page = ann.page
    page.keyboard.press("d")
    image_id = wait_image_drawn(page, ann.ids[1])
    assert ann.load(image_id).image.status == "unlabeled"
    ann.draw(TRIANGLE)
    wait_for(lambda: ann.load(image_id).image.status, lambda s: s == "in_progress", what="in progress")
    page.keyboard.press("v")
    to_client, _ = view_mapping(page)
    page.mouse.click(*to_client(155.0, 120.0))  # inside the triangle: selects it
    page.keyboard.press("Delete")
    wait_for(lambda: ann.load(image_id).instances, lambda v: v == [], what="the triangle deleted")
    assert ann.load(image_id).image.status == "unlabeled"
    page.keyboard.press("p")


def _x_axis(page: Any, caption: str) -> str:  # noqa: ANN401
    """The aria label Vega gives the x axis of the chart below ``caption`` (its scale's range)."""
    chart = page.locator('[data-testid="stElementContainer"]', has_text=caption).locator(
        "xpath=following-sibling::*[1]"
    )
    axis = chart.locator('[aria-roledescription="axis"][aria-label^="X-axis"]')
    return (axis.first.get_attribute("aria-label") or "") if axis.count() else ""  # "" until drawn


def test_the_validation_chart_counts_epochs_from_1_as_the_progress_does(
    browser, ui_server, ui_workspace
) -> None:  # noqa: ANN001
    """The progress said 'epoch 3/3' while the chart of validation AP per epoch ran from 0 to 2."""
    from tests.e2e.browser.test_offline import finished_run
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, num_images=2, name="Epochs").slug
    finished_run(ws, slug, ui_workspace.parent / "epochs-run")
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{ui_server.url}/train?project={slug}")
        page.get_by_text("epoch 3/3").wait_for(timeout=90_000)  # the first Train page imports torch
        page.get_by_text("Validation AP per epoch").wait_for()
        label = wait_for(
            lambda: _x_axis(page, "Validation AP per epoch"), bool, what="the chart's x axis", timeout_s=60
        )
        assert "epoch" in label and "from 1" in label and "to 3" in label, label
    finally:
        page.context.close()
