"""In Chromium: problems found by walking the UI as a new user, each checked where only a browser shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.browser_helpers import nav, new_page, open_project
from tests.ui.conftest import needs_chromium, png_bytes

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
        page.get_by_text("1 images imported").wait_for()
        # The report appears above the tabs: the user stays on the tab they used.
        tab = page.get_by_role("tab", name="Folder on this machine")
        assert tab.get_attribute("aria-selected") == "true"
        assert page.get_by_role("button", name="Import from path").is_visible()
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
        page.get_by_text("Cancelled.").wait_for()
        _idle(page)
        # the panel says cancelled; the picker above it must not still say running
        picker = page.locator('[data-testid="stSelectbox"]').last
        shown = picker.locator("input").input_value()  # the chosen option's label
        assert "busy run" in shown and "running" not in shown, shown
    finally:
        ctx.close()
