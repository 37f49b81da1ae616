"""In Chromium: no page of the workbench fetches anything from outside 127.0.0.1 (fonts, icons,
scripts, images). The browser tab's icon was Streamlit's ``:material/...:`` favicon, which its
frontend loads from fonts.gstatic.com on every page load: offline, or behind a firewall, every load
waited on it, and it told a third party each time the workbench was opened.

Every page of the sidebar is loaded (a full load, then a click through the sidebar) with a project
that has images, classes, shapes and a finished run, so that each page draws what it can.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.support.browser import needs_chromium, wait_idle

pytestmark = [pytest.mark.browser, needs_chromium]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LOCAL_SCHEMES = {"data", "blob", "about"}
PAGES = {  # url path -> the sidebar title (the heading starts with it)
    "": "Projects",
    "import": "Import",
    "classes": "Classes",
    "annotate": "Annotate",
    "dataset": "Dataset",
    "export": "Export",
    "augment": "Augment",
    "train": "Train",
    "evaluate": "Evaluate",
    "review": "Review",
}


def finished_run(ws: Any, slug: str, run_dir: Path) -> int:  # noqa: ANN401
    """A succeeded run whose folder holds what the Train page charts: losses and validation AP."""
    from workbench.store import projects as project_repo
    from workbench.store import runs as run_repo

    rows = [{"type": "train", "epoch": e, "iter": 1, "step": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    rows += [
        {"type": "val", "epoch": e, "step": e, "segm_ap": 0.1 * e, "bbox_ap": 0.2 * e} for e in (1, 2, 3)
    ]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    status = {"epoch": 3, "epochs": 3, "iter": 0, "iters_per_epoch": 1, "step": 3, "total_steps": 3}
    (run_dir / "status.json").write_text(json.dumps(status))
    with ws.store.transaction() as s:
        run = run_repo.create_run(s, project_repo.project_id(s, slug), "finished", {}, "", device="cpu").id
        run_repo.set_run_dir(s, run, str(run_dir))
        assert run_repo.claim_next_queued_run(s, "cpu").id == run  # type: ignore[union-attr]
        run_repo.finish_run(s, run, "succeeded")
    return run


def _outside(url: str) -> bool:
    parts = urlparse(url)
    return parts.scheme not in LOCAL_SCHEMES and parts.hostname not in LOCAL_HOSTS


def test_no_page_fetches_anything_from_outside_127_0_0_1(browser, ui_server, ui_workspace) -> None:  # noqa: ANN001
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, num_images=3, name="Offline").slug
    finished_run(ws, slug, ui_workspace.parent / "offline-run")
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    requested: list[str] = []
    ctx.on("request", lambda r: requested.append(r.url))
    page = ctx.new_page()
    page.set_default_timeout(60_000)  # the first Train page imports torch; a loaded machine is slow
    try:
        for path, title in PAGES.items():  # a full load of every page (a reload, a bookmark)
            page.goto(f"{ui_server.url}/{path}?project={slug}")
            page.get_by_role("heading", name=title).first.wait_for()
            wait_idle(page)
            page.wait_for_timeout(500)  # the favicon and lazy images follow the first paint
        for title in PAGES.values():  # and a click through the sidebar
            page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()
            page.get_by_role("heading", name=title).first.wait_for()
            wait_idle(page)
        page.wait_for_timeout(500)
        icon = page.locator("link[rel='shortcut icon']").get_attribute("href") or ""
    finally:
        ctx.close()
    assert any(urlparse(u).hostname == "127.0.0.1" for u in requested)  # the listener did listen
    assert sorted({u for u in requested if _outside(u)}) == []
    assert icon.startswith("data:image/svg+xml")  # the tab still has the workbench's icon
