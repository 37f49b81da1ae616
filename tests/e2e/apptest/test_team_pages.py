"""The team pages in AppTest (issue 15): solo mode's Users page adds the first admin and turns sign-in
on; signed in, a viewer gets no Import or Users page and a forged admin action on the Users page is
refused by the service; the admin's Team page hands out images; --no-auth shows its banner."""

from __future__ import annotations

import time

import pytest

from tests.support.apptest import app, button, make_project, texts
from tests.support.team import PASSWORD, team_of
from workbench.services import accounts, team


def _signed_in(at, account) -> None:  # noqa: ANN001
    now = time.time()
    at.session_state["wb_auth"] = {"account": account, "at": now, "seen": now, "token": "t"}


def test_the_first_admin_from_the_users_page_turns_sign_in_on(ws) -> None:  # noqa: ANN001
    make_project(ws)
    at = app("users")
    assert "solo mode" in texts(at)
    at.text_input[0].set_value("boss")
    at.text_input[1].set_value(PASSWORD)
    button(at, "Add admin and turn sign-in on").click().run()
    assert accounts.current_account(ws, "boss").role == "admin"
    at = app()  # a new session: only the sign-in form
    assert [t.value for t in at.title] == ["Workbench · sign in"]
    assert "Projects" not in texts(at)


def test_pages_follow_the_role_and_the_team_page_assigns(ws) -> None:  # noqa: ANN001
    slug = make_project(ws, n_images=3)
    users = team_of(ws, slug)
    at = app()
    _signed_in(at, users["viewer"].actor)
    at.run()
    assert not at.exception
    assert "Signed in as **vic** (viewer)" in texts(at)
    from streamlit.util import calc_hash

    for hidden in ("import", "users"):  # not in a viewer's navigation: asking for it opens no such page
        at._page_hash = calc_hash(hidden)
        at.run()
        assert not at.exception, at.exception
        assert not any(h.value.startswith(("Import", "Users")) for h in at.header), [h.value for h in at.header]
    at = app()
    _signed_in(at, users["admin"].actor)
    at.session_state["wb_project"] = slug
    at.run()
    at._page_hash = calc_hash("team")
    at.run()
    assert not at.exception, at.exception
    assert "Hand out images" in texts(at)
    button(at, "Assign").click().run()
    assert team.work_summary(users["admin"], slug)["ann"]["assigned"] == 3
    at._page_hash = calc_hash("users")  # the admin has the page the viewer was not given
    at.run()
    assert [h.value for h in at.header] == ["Users"]


def test_no_auth_says_so_on_every_page(ws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    make_project(ws)
    monkeypatch.setenv("WORKBENCH_NO_AUTH", "1")
    for page in (None, "annotate", "users"):
        at = app(page)
        assert any("No login on this server" in str(w.value) for w in at.warning)
