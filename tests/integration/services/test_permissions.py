"""Team mode's permissions (issue 15): the role x action matrix, and every checked service function
refusing every role the matrix refuses, in one clear line naming the user, the role and the action."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import workbench.services as services_pkg
from tests.support.factories import add_images
from tests.support.team import PASSWORD, team_of
from workbench.domain import ROLES, Category, Instance, PermissionDenied
from workbench.services import accounts, annotate, classes, permissions, projects, team
from workbench.services.workspace import Workspace, open_workspace

EXPECTED = {
    "project.read": {"admin", "reviewer", "annotator", "viewer"},
    "project.create": {"admin"},
    "project.delete": {"admin"},
    "classes.edit": {"admin"},
    "import": {"admin"},
    "export": {"admin", "reviewer"},
    "dataset.edit": {"admin"},
    "augment.edit": {"admin"},
    "train": {"admin"},
    "annotate": {"admin", "annotator"},
    "review": {"admin", "reviewer"},
    "assign": {"admin"},
    "users": {"admin"},
    "audit.read": {"admin"},
}
"""The matrix as the issue words it, written out here so a change to permissions.py must change it too."""

EXEMPT = {
    # context managers the checked calls hold themselves
    "imports.project_write_lock", "imports.import_lock",
    # signing in, and what a session needs before it has a user
    "accounts.authenticate", "accounts.login", "accounts.current_account", "accounts.cli_workspace",
    "accounts.has_accounts", "accounts.change_own_password",
    # calls one checked function with nothing of its own
    "team.assign_ids",
}  # fmt: skip


def _service_functions() -> Iterator[tuple[str, object]]:
    for m in pkgutil.iter_modules(services_pkg.__path__):
        if m.name == "permissions":  # the check itself
            continue
        mod = importlib.import_module(f"workbench.services.{m.name}")
        for name, fn in vars(mod).items():
            if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != mod.__name__:
                continue
            params = list(inspect.signature(fn).parameters)
            if params and params[0] == "ws":
                yield f"{m.name}.{name}", fn


def test_the_matrix_is_the_issues() -> None:
    assert {a: set(roles) for a, (_, roles) in permissions.ACTIONS.items()} == EXPECTED


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_matrix_cell(role: str, action: str) -> None:
    assert permissions.allowed(role, action) == (role in EXPECTED[action])


def test_every_service_function_on_a_workspace_checks_a_permission() -> None:
    unchecked = [n for n, fn in _service_functions() if not hasattr(fn, "__wb_action__") and n not in EXEMPT]
    assert unchecked == []


@pytest.fixture(scope="module")
def team_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, dict[str, Workspace], str]]:
    ws = open_workspace(tmp_path_factory.mktemp("team") / "ws")
    slug = projects.create_project(ws, "Team").slug
    classes.add_category(ws, slug, Category(name="a"))
    add_images(ws, slug, 3)
    yield ws, team_of(ws, slug), slug
    ws.close()


def _dummy_call(fn, ws: Workspace, slug: str) -> None:  # noqa: ANN001
    """Call with the acting workspace, the project, and placeholders for the rest: the check comes
    before the function reads any of them."""
    args = []
    for i, (name, p) in enumerate(inspect.signature(fn).parameters.items()):
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        if i == 0:
            args.append(ws)
        elif name == "slug":
            args.append(slug)
        elif p.default is inspect.Parameter.empty:
            args.append(1)
    kwargs = {
        n: 1
        for n, p in inspect.signature(fn).parameters.items()
        if p.kind is p.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    }
    fn(*args, **kwargs)


REFUSED = [
    (name, role)
    for name, fn in _service_functions()
    if hasattr(fn, "__wb_action__")
    for role in ROLES
    if role not in EXPECTED[fn.__wb_action__]
]


@pytest.mark.parametrize(("name", "role"), REFUSED, ids=[f"{n}-{r}" for n, r in REFUSED])
def test_a_forged_call_is_refused_by_the_service(team_ws, name: str, role: str) -> None:  # noqa: ANN001
    _ws, users, slug = team_ws
    module, func = name.split(".")
    fn = getattr(importlib.import_module(f"workbench.services.{module}"), func)
    acting = users[role]
    with pytest.raises(PermissionDenied) as err:
        _dummy_call(fn, acting, slug)
    msg = str(err.value)
    assert f"user {acting.actor.name!r} (role {role})" in msg and f"({fn.__wb_action__})" in msg


def test_allowed_roles_pass_the_check(team_ws) -> None:  # noqa: ANN001
    _ws, users, slug = team_ws
    for action, roles in EXPECTED.items():
        for role in roles:
            image = None
            if action == "annotate" and role == "annotator":
                image = annotate.list_images(users["admin"], slug)[0].id
                team.assign_images(users["admin"], slug, "ann", image_ids=[image], only_unassigned=False)
            permissions.check(users[role], action, slug=slug, image_id=image)


def test_no_user_in_a_workspace_with_accounts_is_refused(team_ws) -> None:  # noqa: ANN001
    ws, _users, slug = team_ws
    with pytest.raises(PermissionDenied, match="has user accounts.*--as USER"):
        annotate.list_images(ws, slug)
    with pytest.raises(PermissionDenied, match="has user accounts"):
        projects.list_projects(ws)


def test_members_see_their_projects_only(team_ws) -> None:  # noqa: ANN001
    ws, users, slug = team_ws
    other = projects.create_project(users["admin"], "Secret").slug
    assert {p.slug for p in projects.list_projects(users["admin"])} >= {slug, other}
    assert [p.slug for p in projects.list_projects(users["viewer"])] == [slug]
    with pytest.raises(PermissionDenied, match=r"user 'vic' \(role viewer\) may not read this project.*not a member"):
        annotate.list_images(users["viewer"], other)
    with pytest.raises(PermissionDenied, match="not a member"):
        classes.list_categories(users["reviewer"], other)
    projects.delete_project(users["admin"], other)


def test_an_annotator_edits_only_the_images_assigned_to_them(team_ws) -> None:  # noqa: ANN001
    _ws, users, slug = team_ws
    admin, ann = users["admin"], users["annotator"]
    first, second, _ = annotate.list_images(admin, slug)
    team.assign_images(admin, slug, "ann", image_ids=[first.id], only_unassigned=False)
    team.assign_images(admin, slug, None, image_ids=[second.id])
    version = annotate.image_version(ann, slug, first.id)
    square = Instance("a", polygons=((1.0, 1.0, 9.0, 1.0, 9.0, 9.0),))
    annotate.save_image(ann, slug, first.id, [square], expected_version=version)
    with pytest.raises(PermissionDenied, match=rf"user 'ann' \(role annotator\) may not edit annotations \(annotate\): image {second.id} is not assigned"):
        annotate.save_image(ann, slug, second.id, [square], expected_version=1)
    assert annotate.load_image(admin, slug, second.id).instances == []
    assert team.my_image_ids(ann, slug) == [first.id]


def test_disabling_or_demoting_a_user_holds_at_once(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    slug = projects.create_project(ws, "P").slug
    users = team_of(ws, slug)
    annotate.list_images(users["viewer"], slug)
    accounts.set_disabled(users["admin"], "vic")
    with pytest.raises(PermissionDenied, match="'vic' is disabled"):
        annotate.list_images(users["viewer"], slug)
    accounts.set_role(users["admin"], "rita", "viewer")
    with pytest.raises(PermissionDenied, match=r"'rita' \(role viewer\) may not export"):
        permissions.check(users["reviewer"], "export", slug=slug)
    with pytest.raises(ValueError, match="last admin"):
        accounts.set_disabled(users["admin"], "boss")
    ws.close()


def test_five_wrong_passwords_lock_the_account(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    slug = projects.create_project(ws, "P").slug
    users = team_of(ws, slug)
    assert accounts.authenticate(ws, "ann", PASSWORD).name == "ann"
    for _ in range(accounts.MAX_FAILED_LOGINS - 1):
        with pytest.raises(PermissionDenied, match="wrong user name or password"):
            accounts.authenticate(ws, "ann", "not it at all")
    with pytest.raises(PermissionDenied, match="'ann' is locked for 15 minutes"):
        accounts.authenticate(ws, "ann", "not it at all")
    with pytest.raises(PermissionDenied, match="locked .* until"):
        accounts.authenticate(ws, "ann", PASSWORD)  # the right password does not open it early
    accounts.set_password(users["admin"], "ann", "a new long password")
    assert accounts.authenticate(ws, "ann", "a new long password").failed_logins == 0
    with pytest.raises(PermissionDenied, match="wrong user name or password"):
        accounts.authenticate(ws, "nobody", PASSWORD)
    log = team.audit_log(users["admin"])
    assert any(e["action"] == "login.failed" and e["detail"] == "locked" for e in log)
    assert all(PASSWORD not in e["detail"] and "not it" not in e["detail"] for e in log)
    ws.close()


def test_the_login_limiter_slows_repeated_failures() -> None:
    limiter = accounts.LoginLimiter(interval=60.0)
    assert limiter.wait_left("s1") == 0
    limiter.attempt("s1", ok=False)
    assert limiter.wait_left("s1") > 50 and limiter.wait_left("s2") == 0
    limiter.attempt("s1", ok=True)
    assert limiter.wait_left("s1") == 0


def test_the_first_user_must_be_an_admin_and_passwords_are_argon2id(ws) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="first user must be an admin"):
        accounts.add_user(ws, "ann", PASSWORD, "annotator")
    with pytest.raises(ValueError, match="at least 8 characters"):
        accounts.add_user(ws, "boss", "short", "admin")
    accounts.add_user(ws, "boss", PASSWORD, "admin")
    from workbench.store import team as team_repo

    with ws.store.transaction() as s:
        assert team_repo.password_hash(s, "boss").startswith("$argon2id$")
