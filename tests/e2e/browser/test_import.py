"""In Chromium: the Import page's path tab keeps its place after an import and imports on the first click."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser import nav, needs_chromium, new_page, open_project, wait_idle
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]


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
        wait_idle(page)  # switching tabs reruns the page (the tabs remember the open one)
        page.get_by_label("Folder or zip path on the machine running the workbench").fill(str(folder))
        page.keyboard.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Import from path").click()
        page.get_by_text("1 image imported").wait_for()
        # The report appears above the tabs: the user stays on the tab they used.
        tab = page.get_by_role("tab", name="Folder on this machine")
        assert tab.get_attribute("aria-selected") == "true"
        assert page.get_by_role("button", name="Import from path").is_visible()
    finally:
        page.context.close()


def test_a_typed_path_imports_on_the_first_click(browser, ui_server, ui_workspace, tmp_path: Path) -> None:  # noqa: ANN001
    """The path buttons are enabled while the path is typed, before the text input commits (Enter or
    blur): a user who types a path and goes straight for the button imports on that first click."""
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
        wait_idle(page)
        page.get_by_label("Folder or zip path on the machine running the workbench").click()
        page.keyboard.type(str(folder))  # no Enter: the user goes straight for the button
        box = page.get_by_role("button", name="Import from path").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.get_by_text("1 image imported").wait_for(timeout=10_000)
    finally:
        page.context.close()
