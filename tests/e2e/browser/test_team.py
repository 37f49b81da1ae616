"""Team mode in Chromium on one `workbench ui` over a real PostgreSQL server (issue 15): every page
asks a visitor without a session to sign in; an admin and an annotator in two browsers go through
assign, annotate, done, review, reject with a comment, fix, accept; a locked-out login is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.postgres.conftest import pg_server, pg_url  # noqa: F401 - fixtures used here
from tests.support.browser import REPO, UiServer, free_port, needs_chromium, wait_for, wait_idle
from tests.support.images import png_bytes
from tests.support.team import PASSWORD

pytestmark = [pytest.mark.browser, needs_chromium]

PAGE_PATHS = ["", "import", "classes", "annotate", "dataset", "export", "augment", "train", "evaluate",
              "review", "team", "users", "login", "no-such-page"]  # fmt: skip


class TeamUiServer(UiServer):
    """`workbench ui` on a database URL (UiServer keeps to the workspace's SQLite file)."""

    def __init__(self, workspace: Path, database_url: str) -> None:
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, WORKBENCH_HOME=str(workspace), PYTHONUNBUFFERED="1", WORKBENCH_DATABASE_URL=database_url)
        self.log_path = workspace.parent / f"ui-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "ui", "--workspace", str(workspace), "--host", "127.0.0.1",
             "--port", str(self.port)],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._wait()


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, pg_server: str) -> Iterator[tuple]:  # noqa: F811
    import psycopg

    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import accounts, classes, imports, projects
    from workbench.services.workspace import open_workspace

    name = f"wb_team_{os.getpid()}"
    with psycopg.connect(pg_server.replace("+psycopg", "") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{pg_server}/{name}"
    root = tmp_path_factory.mktemp("team") / "ws"
    ws = open_workspace(root, database_url=url)
    slug = projects.create_project(ws, "Birds").slug
    classes.add_category(ws, slug, Category(name="bird"))
    imports.import_images(ws, slug, [ImageSource(name=f"b{i}.png", data=png_bytes((160, 120), (40 * i, 90, 120)))
                                     for i in range(3)])  # fmt: skip
    accounts.add_user(ws, "boss", PASSWORD, "admin")
    boss = ws.as_user(accounts.current_account(ws, "boss"))
    for user, role in (("ann", "annotator"), ("vic", "viewer")):
        accounts.add_user(boss, user, PASSWORD, role)
        accounts.add_member(boss, slug, user)
    server = TeamUiServer(root, url)
    try:
        yield server, ws, boss, slug
    finally:
        server.stop()
        ws.close()


def _context(browser):  # noqa: ANN001, ANN202
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    return page


def _sign_in(page, url: str, user: str, password: str = PASSWORD) -> None:  # noqa: ANN001
    page.goto(url)
    page.get_by_role("heading", name="Workbench · sign in").wait_for()
    page.get_by_role("textbox", name="User", exact=True).fill(user)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def _nav(page, title: str) -> None:  # noqa: ANN001
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).first.wait_for()


def test_every_page_asks_a_visitor_to_sign_in(browser, team) -> None:  # noqa: ANN001
    server, _ws, _boss, slug = team
    page = _context(browser)
    for path in PAGE_PATHS:
        page.goto(f"{server.url}/{path}?project={slug}")
        page.get_by_role("heading", name="Workbench · sign in").wait_for()
        wait_idle(page)
        assert page.get_by_role("heading", name="Annotate").count() == 0
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0  # no page links either
        assert page.get_by_text("b0.png").count() == 0 and page.locator("img[src*='/media/']").count() == 0
    page.context.close()


def test_a_locked_out_login_is_refused(browser, team) -> None:  # noqa: ANN001
    from workbench.domain import PermissionDenied
    from workbench.services import accounts

    server, ws, _boss, _slug = team
    for _ in range(accounts.MAX_FAILED_LOGINS - 1):
        with pytest.raises(PermissionDenied):
            accounts.authenticate(ws, "vic", "wrong password")
    page = _context(browser)
    _sign_in(page, server.url, "vic", "still the wrong one")
    page.get_by_text("'vic' is locked for 15 minutes").wait_for()
    page.wait_for_timeout(1500)  # the client's rate limit after a failure
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)  # now the right password: still locked
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("'vic' is locked after 5 wrong passwords until").wait_for()
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    assert accounts.current_account(ws, "vic").locked_until is not None
    page.context.close()


def _draw_and_finish(page, dx: float) -> None:  # noqa: ANN001
    box = page.locator(".wb-svg").bounding_box()
    x, y = box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2
    page.keyboard.press("p")
    for px, py in [(x, y), (x + 60, y), (x + 30, y + 50)]:
        page.mouse.click(px, py)
    page.keyboard.press("Enter")


def test_two_users_assign_annotate_review_reject_fix_accept(browser, team) -> None:  # noqa: ANN001
    from workbench.services import annotate
    from workbench.services import team as team_svc

    server, _ws, boss_ws, slug = team
    boss, ann = _context(browser), _context(browser)
    _sign_in(boss, server.url, "boss")
    boss.get_by_text("Signed in as").wait_for()
    _nav(boss, "Team")
    boss.get_by_text("Hand out images").wait_for()  # "To" offers ann first (annotators and admins by name)
    boss.get_by_role("spinbutton", name="How many").fill("1")
    boss.get_by_role("button", name="Assign").click()
    boss.get_by_text("Assigned 1 image to ann").wait_for()
    images = {im.file_name: im for im in annotate.list_images(boss_ws, slug)}
    job = wait_for(lambda: team_svc.jobs(boss_ws, slug, [im.id for im in images.values()]), lambda j: len(j) == 1,
                   what="the job")  # fmt: skip
    (image_id,) = job
    assert job[image_id].assignee == "ann"

    _sign_in(ann, server.url, "ann")
    ann.get_by_text("Signed in as").wait_for()
    assert ann.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Import").count() == 0
    _nav(ann, "Annotate")
    ann.locator(f'.wb-annot[data-loaded-image="{image_id}"]').wait_for()  # her job first
    _draw_and_finish(ann, -40)
    wait_for(lambda: annotate.load_image(boss_ws, slug, image_id).instances, lambda v: len(v) == 1, what="save")
    ann.keyboard.press("Control+Enter")  # done and next
    wait_for(lambda: team_svc.jobs(boss_ws, slug, [image_id])[image_id].review, lambda r: r == "in_review",
             what="in review")  # fmt: skip

    _nav(boss, "Team")
    boss.get_by_text("In review (1)").wait_for()
    boss.get_by_placeholder("what to fix").fill("the wing is missing")
    boss.get_by_role("button", name="Reject").click()
    boss.get_by_text("back to its annotator").wait_for()
    assert team_svc.jobs(boss_ws, slug, [image_id])[image_id].review == "rejected"
    assert annotate.image_record(boss_ws, slug, image_id).status == "in_progress"

    ann.goto(f"{server.url}/annotate?project={slug}&image={image_id}")
    ann.locator(f'.wb-annot[data-loaded-image="{image_id}"]').wait_for()
    ann.get_by_text("the wing is missing").wait_for()  # the reviewer's comment under the canvas
    _draw_and_finish(ann, 40)
    wait_for(lambda: annotate.load_image(boss_ws, slug, image_id).instances, lambda v: len(v) == 2, what="fix")
    ann.keyboard.press("Control+Enter")
    wait_for(lambda: team_svc.jobs(boss_ws, slug, [image_id])[image_id].review, lambda r: r == "in_review",
             what="back in review")  # fmt: skip

    _nav(boss, "Team")
    boss.get_by_text("In review (1)").wait_for()
    boss.get_by_role("button", name="Accept").click()
    boss.get_by_text("Accepted").first.wait_for()
    assert team_svc.jobs(boss_ws, slug, [image_id])[image_id].review == "accepted"
    saves = [v for v in team_svc.history(boss_ws, slug, image_id) if not v["baseline"]]
    assert {v["user"] for v in saves} == {"ann"} and len(saves) >= 2
    verdicts = [c["verdict"] for c in team_svc.comments(boss_ws, slug, image_id)]
    assert verdicts == ["rejected", "accepted"]
    assert any(r["user"] == "ann" and r["objects"] >= 2 for r in team_svc.activity(boss_ws, slug))
    # a forged save of an image that is not hers is refused by the service, whatever the page shows
    other = next(im.id for im in images.values() if im.id != image_id)
    from workbench.domain import PermissionDenied
    from workbench.services import accounts

    ann_ws = boss_ws.as_user(accounts.current_account(boss_ws, "ann"))
    with pytest.raises(PermissionDenied, match="not assigned to them"):
        annotate.save_image(ann_ws, slug, other, [], expected_version=1)
    # signing out ends the login for this browser: a reload (its cookie) asks again
    ann.get_by_role("button", name="Sign out").click()
    ann.get_by_role("heading", name="Workbench · sign in").wait_for()
    ann.goto(f"{server.url}/annotate?project={slug}")
    ann.get_by_role("heading", name="Workbench · sign in").wait_for()
    assert ann.locator('[data-testid="stSidebarNav"]').count() == 0
    boss.context.close()
    ann.context.close()
