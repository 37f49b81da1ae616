"""Team-mode helpers for tests: a migration round trip with data, accounts and workspaces acting as them."""

from __future__ import annotations

from sqlalchemy import inspect, text

from workbench.store import engine

NOW = "'2026-01-01 00:00:00'"
TEAM_TABLES = {"users", "project_members", "image_work", "review_comments", "annotation_versions", "audit_log"}


def seed_0003(url: str) -> None:
    """A project with a class, an image and an annotation at revision 0003."""
    engine.upgrade(url, "0003")
    eng = engine.make_engine(url)
    with eng.begin() as c:
        c.execute(text(f"INSERT INTO projects VALUES (1, 'p', 'P', '', '{{}}', {NOW}, {NOW})"))
        c.execute(text("INSERT INTO categories (id, project_id, name, color, supercategory, position, created_at) "
                       f"VALUES (1, 1, 'c', '#000000', '', 0, {NOW})"))
        c.execute(text("INSERT INTO images (id, project_id, sha256, path, original_name, width, height, status, "
                       f"version, created_at, updated_at) VALUES (1, 1, 'x', 'a', 'a', 10, 10, 'done', 3, {NOW}, {NOW})"))
        c.execute(text("INSERT INTO annotations (id, image_id, category_id, iscrowd, source, version, created_at, "
                       f"updated_at, z_order) VALUES (5, 1, 1, false, 'manual', 2, {NOW}, {NOW}, 0)"))
    eng.dispose()


def migration_round_trip(url: str) -> None:
    """0003 with data -> 0004 (team rows added) -> 0003 (team tables gone, the rest kept) -> head."""
    seed_0003(url)
    engine.upgrade(url, "0004")
    eng = engine.make_engine(url)
    assert TEAM_TABLES <= set(inspect(eng).get_table_names())
    with eng.begin() as c:
        c.execute(text("INSERT INTO users (id, name, password_hash, role, disabled, failed_logins, created_at) "
                       f"VALUES (1, 'ann', 'h', 'annotator', false, 0, {NOW})"))
        c.execute(text(f"INSERT INTO project_members VALUES (1, 1, {NOW})"))
        c.execute(text("INSERT INTO image_work (image_id, project_id, assignee_id, review, assigned_at, updated_at) "
                       f"VALUES (1, 1, 1, 'in_review', {NOW}, {NOW})"))
        c.execute(text("INSERT INTO annotation_versions (image_id, image_version, annotation_id, action, user_id, "
                       f"user_name, created_at) VALUES (1, 3, 5, 'saved', 1, 'ann', {NOW})"))
        c.execute(text("INSERT INTO review_comments (image_id, user_id, verdict, text, created_at) "
                       f"VALUES (1, 1, 'rejected', 'fix it', {NOW})"))
        c.execute(text("INSERT INTO audit_log (project_id, project_slug, user_name, action, detail, created_at) "
                       f"VALUES (1, 'p', 'ann', 'import', 'x', {NOW})"))
        # deleting the user keeps the history's name and frees the job (SET NULL), the membership goes
        c.execute(text("DELETE FROM users WHERE id = 1"))
        assert c.execute(text("SELECT assignee_id, review FROM image_work")).one() == (None, "in_review")
        assert c.execute(text("SELECT user_id, user_name FROM annotation_versions")).one() == (None, "ann")
        assert c.execute(text("SELECT count(*) FROM project_members")).scalar() == 0
        c.execute(text("INSERT INTO users (id, name, password_hash, role, disabled, failed_logins, created_at) "
                       f"VALUES (2, 'boss', 'h', 'admin', false, 0, {NOW})"))
    eng.dispose()
    engine.downgrade(url, "0003")
    assert engine.current_revision(url) == "0003"
    eng = engine.make_engine(url)
    assert not (TEAM_TABLES & set(inspect(eng).get_table_names()))
    with eng.begin() as c:
        assert c.execute(text("SELECT id, version, status FROM images")).one() == (1, 3, "done")
        assert c.execute(text("SELECT id, version FROM annotations")).one() == (5, 2)
        assert c.execute(text("SELECT slug FROM projects")).scalar() == "p"
    eng.dispose()
    engine.upgrade(url)
    assert engine.current_revision(url) == engine.head_revision()
    eng = engine.make_engine(url)
    with eng.begin() as c:
        assert c.execute(text("SELECT count(*) FROM users")).scalar() == 0
        assert c.execute(text("SELECT id FROM annotations")).scalar() == 5
    eng.dispose()


PASSWORD = "correct horse battery"


def team_of(ws, slug: str) -> dict:  # noqa: ANN001 - a Workspace; returns role -> workspace acting as that user
    """Accounts boss (admin), rita (reviewer), ann (annotator), vic (viewer), all members of ``slug``;
    role -> the workspace acting as that user."""
    from workbench.services import accounts

    names = {"admin": "boss", "reviewer": "rita", "annotator": "ann", "viewer": "vic"}
    accounts.add_user(ws, "boss", PASSWORD, "admin")
    admin = ws.as_user(accounts.current_account(ws, "boss"))
    out = {"admin": admin}
    for role, name in names.items():
        if role != "admin":
            accounts.add_user(admin, name, PASSWORD, role)
            accounts.add_member(admin, slug, name)
            out[role] = ws.as_user(accounts.current_account(ws, name))
    return out
