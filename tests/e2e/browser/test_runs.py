"""In Chromium: the Train page's runs table follows the store without a click.

A module of its own so that its workspace holds only its runs: the scheduler's claim takes the
oldest queued run of any project (other modules leave queued runs behind).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.browser import needs_chromium, wait_for, wait_idle

pytestmark = [pytest.mark.browser, needs_chromium]


def _grid_text(page) -> str:  # noqa: ANN001
    """The cells of the page's first st.dataframe (glide-data-grid keeps an accessible table of them)."""
    return " | ".join(page.locator('[data-testid="stDataFrame"]').first.locator("td").all_inner_texts())


def _train_page(browser, base_url: str, slug: str):  # noqa: ANN001, ANN202
    """The project's Train page in a context of its own."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base_url}/train?project={slug}")
    return page


def test_runs_table_follows_a_run_that_starts_and_one_that_ends_without_a_click(browser, ui_server, ui_workspace) -> None:  # noqa: ANN001
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace
    from workbench.store import projects as project_repo
    from workbench.store import runs as run_repo

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, num_images=2, name="Live runs").slug
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        first = run_repo.create_run(s, pid, "first run", {}, "", device="cpu").id
        assert run_repo.claim_next_queued_run(s, "cpu").id == first  # type: ignore[union-attr]  # running on the cpu ...
        run_repo.create_run(s, pid, "second run", {}, "", device="cpu")  # ... so this one waits
    page = _train_page(browser, ui_server.url, slug)
    try:
        page.get_by_role("button", name="Cancel run").wait_for()  # the panel of an active run
        wait_idle(page)
        page.get_by_text("Queued: it starts when").wait_for()  # the picker opens on the newest active run
        wait_for(lambda: _grid_text(page), lambda t: "queued" in t and "running" in t, what="queued + running")
        # the worker of the first run finishes and the scheduler starts the second: no click
        with ws.store.transaction() as s:
            run_repo.finish_run(s, first, "succeeded")
            started = run_repo.claim_next_queued_run(s, "cpu")
            assert started is not None and started.name == "second run"
        text = wait_for(
            lambda: _grid_text(page),
            lambda t: "succeeded" in t and "running" in t and "queued" not in t,
            what="the table to show succeeded + running",
        )
        assert "first run" in text and "second run" in text
    finally:
        page.context.close()


def test_a_run_started_elsewhere_appears_while_the_page_is_idle(browser, ui_server, ui_workspace) -> None:  # noqa: ANN001
    """No run active: the table still looks every few seconds (a run started by the CLI shows up)."""
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace
    from workbench.store import projects as project_repo
    from workbench.store import runs as run_repo

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, num_images=2, name="Idle runs").slug
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        done = run_repo.create_run(s, pid, "old run", {}, "", device="cpu").id
        run_repo.claim_next_queued_run(s, "cpu")
        run_repo.finish_run(s, done, "succeeded")
    page = _train_page(browser, ui_server.url, slug)
    try:
        wait_for(lambda: _grid_text(page), lambda t: "old run" in t, what="the finished run")
        wait_idle(page)
        with ws.store.transaction() as s:  # as `workbench train` in a terminal would
            run_repo.create_run(s, pid, "cli run", {}, "", device="cpu")
        wait_for(lambda: _grid_text(page), lambda t: "cli run" in t, what="the new run without a click", timeout_s=30)
    finally:
        page.context.close()


def test_run_picker_does_not_keep_a_stale_status_after_cancel(browser, ui_server, ui_workspace, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.support.apptest import running_run
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, num_images=4, name="Runs").slug
    running_run(ws, slug, tmp_path)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{ui_server.url}/train?project={slug}")  # the project opens from the URL
        page.get_by_role("button", name="Cancel run").click()
        page.get_by_text(re.compile(r"^Cancelled\b")).wait_for()
        wait_idle(page)
        # the panel says cancelled; the picker above it must not still say running
        picker = page.locator('[data-testid="stSelectbox"]').last
        shown = picker.locator("input").input_value()  # the chosen option's label
        assert "busy run" in shown and "running" not in shown, shown
    finally:
        ctx.close()
