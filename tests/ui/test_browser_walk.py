"""In Chromium: problems found by walking the UI as a new user, each checked where only a browser shows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.browser import nav, needs_chromium, new_page, open_project, wait_for
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]


def _idle(page) -> None:  # noqa: ANN001
    """Wait until the app's rerun has finished (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")


def test_import_keeps_the_open_tab_after_an_import(browser, ui_server, ui_workspace, tmp_path: Path) -> None:  # noqa: ANN001
    from workbench.services import projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    projects.create_project(ws, "Tabs")
    projects.create_project(ws, "Other")  # two projects: the user opens one
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes((40, 30)))
    page = new_page(browser, ui_server.url)
    try:
        open_project(page, "Tabs")
        nav(page, "Import")
        page.get_by_role("tab", name="Folder on this machine").click()
        _idle(page)  # switching tabs reruns the page (the tabs remember the open one)
        page.get_by_label("Folder or zip path on the machine running the workbench").fill(str(folder))
        page.keyboard.press("Enter")
        _idle(page)
        page.get_by_role("button", name="Import from path").click()
        page.get_by_text("1 image imported").wait_for()
        # The report appears above the tabs: the user stays on the tab they used.
        tab = page.get_by_role("tab", name="Folder on this machine")
        assert tab.get_attribute("aria-selected") == "true"
        assert page.get_by_role("button", name="Import from path").is_visible()
    finally:
        page.context.close()


def test_a_typed_path_imports_on_the_first_click(browser, ui_server, ui_workspace, tmp_path: Path) -> None:  # noqa: ANN001
    """The path buttons were disabled until the text input committed (Enter or blur): a user who typed a
    path and clicked the button saw nothing happen; the blur re-enabled it after the click was lost."""
    from workbench.services import projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    projects.create_project(ws, "Typed path")
    folder = tmp_path / "typed"
    folder.mkdir()
    (folder / "b.png").write_bytes(png_bytes((40, 30)))
    page = new_page(browser, ui_server.url)
    try:
        open_project(page, "Typed path")
        nav(page, "Import")
        page.get_by_role("tab", name="Folder on this machine").click()
        _idle(page)
        page.get_by_label("Folder or zip path on the machine running the workbench").click()
        page.keyboard.type(str(folder))  # no Enter: the user goes straight for the button
        box = page.get_by_role("button", name="Import from path").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.get_by_text("1 image imported").wait_for(timeout=10_000)
    finally:
        page.context.close()


def test_run_picker_does_not_keep_a_stale_status_after_cancel(browser, ui_server, ui_workspace, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.ui.test_pages_ml import _running_run

    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, num_images=4, name="Runs").slug
    _running_run(ws, slug, tmp_path)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{ui_server.url}/train?project={slug}")  # the project opens from the URL
        page.get_by_role("button", name="Cancel run").click()
        page.get_by_text(re.compile(r"^Cancelled\b")).wait_for()
        _idle(page)
        # the panel says cancelled; the picker above it must not still say running
        picker = page.locator('[data-testid="stSelectbox"]').last
        shown = picker.locator("input").input_value()  # the chosen option's label
        assert "busy run" in shown and "running" not in shown, shown
    finally:
        ctx.close()


def test_review_picker_counts_follow_an_accept_and_buttons_fit(browser, ui_server, ui_workspace) -> None:  # noqa: ANN001
    import numpy as np

    from tests.support.predictions import make_run
    from workbench.domain import Instance
    from workbench.geometry import mask_to_rle
    from workbench.services import annotate, review
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, name="Pending", num_images=2).slug
    image = min(annotate.list_images(ws, slug), key=lambda im: im.id)
    preds = []
    for x, score in ((20, 0.9), (120, 0.8)):
        mask = np.zeros((image.height, image.width), dtype=np.uint8)
        mask[20:60, x : x + 40] = 1
        preds.append(Instance("square", rle=mask_to_rle(mask), bbox_xywh=(x, 20, 40, 40), score=score, source="predicted"))
    run = make_run(ws, slug, "two preds")
    review.store_run_predictions(ws, slug, run, {image.id: preds})
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{ui_server.url}/review?project={slug}")
        picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Image (").locator("input")
        page.get_by_text("0.90 · pending").wait_for()
        _idle(page)
        assert "2 pending" in picker.input_value()
        accept = page.get_by_role("button", name="Accept", exact=True).first
        fits = accept.evaluate("b => [...b.querySelectorAll('*')].every(e => e.scrollWidth <= e.clientWidth + 1)")
        assert fits, "the Accept button's label is cut off"
        accept.click()
        page.get_by_text("Accepted as annotation").wait_for()
        # (until the rerun ends the old picker may still be in the page beside the new one)
        shown = wait_for(
            # one snapshot of every picker (a picker the rerun removes between all() and
            # input_value() left a locator waiting out its 20 s timeout)
            lambda: picker.evaluate_all("els => els.map(e => e.value)"),
            lambda vals: len(vals) == 1 and "2 pending" not in vals[0],
            what="one image picker with fresh counts",
        )
        assert "1 pending" in shown[0], shown
    finally:
        ctx.close()


def test_long_class_name_is_cut_with_an_ellipsis_and_keeps_the_delete_button(browser, ui_server, ui_workspace) -> None:  # noqa: ANN001
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
    annotate.save_image(ws, slug, image.id, [square], expected_version=annotate.load_image(ws, slug, image.id).version)
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
            assert box["width"] > 4 and side["x"] <= box["x"] and box["x"] + box["width"] <= side["x"] + side["width"]
        assert row.evaluate("li => li.scrollWidth <= li.clientWidth + 1")  # the row does not overflow
        # the class picker of the toolbar stays a sensible width too (the name is in its tooltip)
        picker = page.locator(".wb-annot select")
        assert picker.bounding_box()["width"] <= 320
        assert picker.get_attribute("title").startswith(long_name) or long_name in picker.evaluate(
            "s => s.selectedOptions[0].title"
        )
    finally:
        ctx.close()

