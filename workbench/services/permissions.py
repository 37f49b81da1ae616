"""Who may do what (issue 15): the one role x action matrix, and the check every service call makes.

Solo mode (no accounts in the store, no acting user) allows everything, as before. Once an account
exists, a service call needs an acting user (``ws.actor``: the browser session's login, the CLI's
``--as``) whose role allows the action, who belongs to the project (admins belong to every one) and,
for an annotator's edits, to whom the image is assigned. The check is here, in the service layer,
so a forged request from a browser is refused the same as a hidden button.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from workbench.domain import ROLES, Account, NotFoundError, PermissionDenied
from workbench.services.workspace import Workspace
from workbench.store import team as team_repo

ALL = frozenset(ROLES)
ADMIN = frozenset({"admin"})

ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "project.read": ("read this project", ALL),
    "project.create": ("create projects", ADMIN),
    "project.delete": ("delete projects", ADMIN),
    "classes.edit": ("change classes", ADMIN),
    "import": ("import images or annotations", ADMIN),
    "export": ("export datasets", frozenset({"admin", "reviewer"})),
    "dataset.edit": ("change splits or delete images", ADMIN),
    "augment.edit": ("change the augmentation pipeline", ADMIN),
    "train": ("train, evaluate or predict", ADMIN),
    "annotate": ("edit annotations", frozenset({"admin", "annotator"})),
    "review": ("review images (accept, reject, comment)", frozenset({"admin", "reviewer"})),
    "assign": ("hand out images as jobs", ADMIN),
    "users": ("manage users and project members", ADMIN),
    "audit.read": ("read the audit log", ADMIN),
}
"""action -> (what it is in words, the roles allowed). The matrix; nothing else decides."""

AUDITED = frozenset({
    "project.create", "project.delete", "classes.edit", "import", "export", "dataset.edit", "augment.edit",
    "train", "assign", "users",
})  # fmt: skip
"""Project-level actions written to the audit log when they succeed."""

REGISTRY: dict[str, str] = {}
"""'module.function' -> action, for every service function that checks (the matrix test walks it)."""

F = TypeVar("F", bound=Callable[..., Any])

_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("wb_inside_service", default=False)
"""True inside a checked service call: the calls it makes itself are part of the action checked."""


def allowed(role: str, action: str) -> bool:
    return role in ACTIONS[action][1]


def denied(user: Account, action: str, why: str = "") -> PermissionDenied:
    words = ACTIONS[action][0]
    return PermissionDenied(
        f"user {user.name!r} (role {user.role}) may not {words} ({action}){': ' + why if why else ''}"
    )


def team_mode(ws: Workspace) -> bool:
    """Whether the store has accounts (then every call needs a user)."""
    if ws.actor is not None:
        return True
    with ws.store.transaction() as s:
        return team_repo.has_accounts(s)


def check(
    ws: Workspace,
    action: str,
    *,
    slug: str | None = None,
    image_id: int | None = None,
    run_id: int | None = None,
    prediction_id: int | None = None,
) -> None:
    """Raise PermissionDenied unless ``ws.actor`` may do ``action`` (on this project, this image)."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    if ws.actor is None:
        if team_mode(ws):
            raise PermissionDenied(
                f"this workspace has user accounts: sign in, or name a user with --as USER, to {ACTIONS[action][0]} "
                f"({action})"
            )
        return
    with ws.store.transaction() as s:
        user = team_repo.account_by_id(s, ws.actor.id)  # read again: a disable or a role change holds at once
        if user is None or user.name != ws.actor.name:
            raise PermissionDenied(f"user {ws.actor.name!r} no longer exists")
        if user.disabled:
            raise PermissionDenied(f"user {user.name!r} is disabled")
        if not allowed(user.role, action):
            raise denied(user, action)
        if user.role == "admin":
            return
        pid = _project_id(s, slug=slug, image_id=image_id, run_id=run_id, prediction_id=prediction_id)
        if pid is not None and not team_repo.is_member(s, pid, user.id):
            raise denied(user, action, f"not a member of project {slug or pid!r}")
        if action == "annotate" and user.role == "annotator":
            image = image_id if image_id is not None else _prediction_image(s, prediction_id)
            if image is not None and team_repo.assignee_of(s, int(image)) != user.id:
                raise denied(user, action, f"image {image} is not assigned to them")


def _project_id(s: Any, *, slug: str | None, image_id: int | None, run_id: int | None,
                prediction_id: int | None) -> int | None:  # fmt: skip
    from workbench.store.runs import get_run

    if slug is not None:
        pid = team_repo.project_id_of(s, slug)
        if pid is None:
            raise NotFoundError(f"no project {slug!r}")  # a non-member learns no other names
        return pid
    if run_id is not None:
        return get_run(s, int(run_id)).project_id
    if image_id is not None:
        return team_repo.project_of_image(s, int(image_id))
    if prediction_id is not None:
        image = _prediction_image(s, prediction_id)
        return None if image is None else team_repo.project_of_image(s, image)
    return None


def _prediction_image(s: Any, prediction_id: int | None) -> int | None:
    if prediction_id is None:
        return None
    from workbench.store.models import PredictionRow

    row = s.get(PredictionRow, int(prediction_id))
    return None if row is None else row.image_id


def actor_name(ws: Workspace) -> str:
    return ws.actor.name if ws.actor is not None else ""


def audit(ws: Workspace, action: str, detail: str = "", *, slug: str | None = None) -> None:
    with ws.store.transaction() as s:
        team_repo.audit(s, actor_name(ws), action, detail, project_slug=slug)


def _detail(fn: Callable[..., Any], arguments: dict[str, Any]) -> str:
    """The call in a line for the audit log: scalar arguments only (never a password or a file's bytes)."""
    parts = [fn.__name__]
    for key, value in arguments.items():
        if key in ("ws", "slug", "password", "progress", "files", "f", "data", "predict_fn") or value is None:
            continue
        if isinstance(value, (str, int, float, bool)) or hasattr(value, "__fspath__"):
            parts.append(f"{key}={str(value)[:120]}")
    return " ".join(parts)


def requires(
    action: str, *, image: str | None = None, run: str | None = None, prediction: str | None = None
) -> Callable[[F], F]:
    """Check ``action`` before the service function runs (its ``ws`` and ``slug`` arguments; ``image``,
    ``run``, ``prediction`` name the arguments holding those ids), and audit it when it succeeds."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _INSIDE.get():
                return fn(*args, **kwargs)
            ws = args[0] if args else kwargs["ws"]
            arguments: dict[str, Any] | None = None
            if ws.actor is not None or team_mode(ws):
                arguments = sig.bind_partial(*args, **kwargs).arguments
                check(
                    ws, action, slug=arguments.get("slug"),
                    image_id=arguments.get(image) if image else None,
                    run_id=arguments.get(run) if run else None,
                    prediction_id=arguments.get(prediction) if prediction else None,
                )  # fmt: skip
            token = _INSIDE.set(True)
            try:
                result = fn(*args, **kwargs)
            finally:
                _INSIDE.reset(token)
            if action in AUDITED:
                arguments = arguments or sig.bind_partial(*args, **kwargs).arguments
                slug = arguments.get("slug")
                audit(ws, action, _detail(fn, arguments), slug=slug if isinstance(slug, str) else None)
            return result

        wrapper.__wb_action__ = action  # type: ignore[attr-defined]
        REGISTRY[f"{fn.__module__}.{fn.__qualname__}"] = action
        return wrapper  # type: ignore[return-value]

    return decorate


def visible_project_ids(ws: Workspace) -> set[int] | None:
    """The projects the acting user may see (None: all of them: solo mode or an admin)."""
    if ws.actor is None or ws.actor.role == "admin":
        return None
    with ws.store.transaction() as s:
        return team_repo.member_project_ids(s, ws.actor.id)
