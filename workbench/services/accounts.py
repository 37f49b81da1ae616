"""Accounts (issue 15): users and their roles, passwords (argon2id), logins with lockout, project members.

A password is hashed here and nowhere else, never logged nor put in an error or the audit log.
Five wrong passwords in a row lock the account for 15 minutes; a login attempt of a browser session
also waits out a short rate limit (see :class:`LoginLimiter`).
"""

from __future__ import annotations

import getpass
import threading
import time
from datetime import timedelta

from workbench.domain import ROLES, Account, PermissionDenied, ValidationError
from workbench.services.permissions import requires, team_mode
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo
from workbench.store import team as team_repo
from workbench.store.models import utcnow

MIN_PASSWORD_CHARS = 8
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


def _hasher():  # noqa: ANN202 - argon2's type, imported where it is needed
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, the library's (RFC 9106) parameters


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher().hash(password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def has_accounts(ws: Workspace) -> bool:
    with ws.store.transaction() as s:
        return team_repo.has_accounts(s)


@requires("users")
def add_user(ws: Workspace, name: str, password: str, role: str) -> Account:
    """A new account; the first one must be an admin (or nobody could manage the others)."""
    check_role(role)
    hashed = hash_password(password)
    with ws.store.transaction() as s:
        if not team_repo.has_accounts(s) and role != "admin":
            raise ValidationError("the first user must be an admin (--role admin): nobody else could add users")
        return team_repo.add_account(s, name, hashed, role)


@requires("users")
def list_users(ws: Workspace) -> list[Account]:
    with ws.store.transaction() as s:
        return team_repo.list_accounts(s)


def _keep_an_admin(s, name: str) -> None:  # noqa: ANN001
    user = team_repo.get_account(s, name)
    if user.role == "admin" and not user.disabled and team_repo.count_admins(s) <= 1:
        raise ValidationError(f"{name!r} is the last admin that is not disabled; make another admin first")


@requires("users")
def set_password(ws: Workspace, name: str, password: str) -> Account:
    """A new password (also what clears a lockout)."""
    hashed = hash_password(password)
    with ws.store.transaction() as s:
        return team_repo.update_account(s, name, password_hash=hashed, failed_logins=0, locked_until=None)


def change_own_password(ws: Workspace, old: str, new: str) -> Account:
    """A user changing their own password proves the old one first (no admin role needed)."""
    if ws.actor is None:
        raise PermissionDenied("no one is signed in")
    authenticate(ws, ws.actor.name, old)
    hashed = hash_password(new)
    with ws.store.transaction() as s:
        return team_repo.update_account(s, ws.actor.name, password_hash=hashed)


@requires("users")
def set_role(ws: Workspace, name: str, role: str) -> Account:
    check_role(role)
    with ws.store.transaction() as s:
        if role != "admin":
            _keep_an_admin(s, name)
        return team_repo.update_account(s, name, role=role)


@requires("users")
def set_disabled(ws: Workspace, name: str, disabled: bool = True) -> Account:
    with ws.store.transaction() as s:
        if disabled:
            _keep_an_admin(s, name)
        return team_repo.update_account(s, name, disabled=disabled, failed_logins=0, locked_until=None)


@requires("users")
def delete_user(ws: Workspace, name: str) -> None:
    """Remove an account; what they saved keeps their name in the history."""
    with ws.store.transaction() as s:
        _keep_an_admin(s, name)
        team_repo.delete_account(s, name)


def authenticate(ws: Workspace, name: str, password: str) -> Account:
    """The account whose password this is, or PermissionDenied in one line (no hint which was wrong).

    Wrong passwords count; at MAX_FAILED_LOGINS the account is locked for LOCKOUT (a right password
    does not open it early). A disabled account is refused.
    """
    wrong = PermissionDenied("wrong user name or password")
    from argon2.exceptions import InvalidHashError, VerificationError

    with ws.store.transaction() as s:
        user = team_repo.find_account(s, name)
        stored = team_repo.password_hash(s, name) if user is not None else ""
    now = utcnow()
    if user is None or not stored:
        _hasher().hash("not-a-user-padding")  # the same work as a real check: no user-name probing by time
        raise wrong
    if user.locked_until is not None and user.locked_until > now:
        raise PermissionDenied(
            f"user {name!r} is locked after {MAX_FAILED_LOGINS} wrong passwords until "
            f"{user.locked_until:%H:%M} UTC (an admin can reset it with a new password)"
        )
    try:
        _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        with ws.store.transaction() as s:
            failed = user.failed_logins + 1
            locked = now + LOCKOUT if failed >= MAX_FAILED_LOGINS else None
            team_repo.update_account(s, name, failed_logins=0 if locked else failed, locked_until=locked)
            team_repo.audit(s, name, "login.failed", "locked" if locked else f"attempt {failed}")
        if locked:
            raise PermissionDenied(
                f"user {name!r} is locked for {int(LOCKOUT.total_seconds() // 60)} minutes after "
                f"{MAX_FAILED_LOGINS} wrong passwords"
            ) from None
        raise wrong from None
    if user.disabled:
        raise PermissionDenied(f"user {name!r} is disabled")
    with ws.store.transaction() as s:
        return team_repo.update_account(s, name, failed_logins=0, locked_until=None, last_login_at=now)


def current_account(ws: Workspace, name: str) -> Account | None:
    """The account as stored now (a session re-reads it: a disable or delete ends the session)."""
    with ws.store.transaction() as s:
        return team_repo.find_account(s, name)


def cli_workspace(ws: Workspace, as_user: str | None) -> Workspace:
    """The workspace acted on by the command line's user: ``--as USER``, else the account named as the
    OS user, when the store has accounts; solo mode unchanged. Whoever holds the database file can
    name any user: the CLI trusts its caller as an admin would (README)."""
    if not team_mode(ws) and as_user is None:
        return ws
    name = as_user or getpass.getuser()
    with ws.store.transaction() as s:
        user = team_repo.find_account(s, name)
    if user is None:
        how = f"--as {name}: no such user" if as_user else f"the OS user {name!r} has no account"
        raise PermissionDenied(f"this workspace has user accounts; {how} (name one with --as USER)")
    if user.disabled:
        raise PermissionDenied(f"user {name!r} is disabled")
    return ws.as_user(user)


# ---------------------------------------------------------------- members


@requires("users")
def add_member(ws: Workspace, slug: str, name: str) -> bool:
    with ws.store.transaction() as s:
        return team_repo.add_member(s, project_repo.project_id(s, slug), team_repo.get_account(s, name).id)


@requires("users")
def remove_member(ws: Workspace, slug: str, name: str) -> bool:
    with ws.store.transaction() as s:
        return team_repo.remove_member(s, project_repo.project_id(s, slug), team_repo.get_account(s, name).id)


@requires("project.read")
def members(ws: Workspace, slug: str) -> list[Account]:
    with ws.store.transaction() as s:
        return team_repo.members(s, project_repo.project_id(s, slug))


class LoginLimiter:
    """Login attempts per client (a browser session, an address): at most one per ``interval`` seconds,
    doubling after each failure up to ``cap``. In memory: a server restart forgets it, the account's
    lockout (in the store) does not."""

    def __init__(self, interval: float = 1.0, cap: float = 30.0) -> None:
        self.interval, self.cap = interval, cap
        self._next: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_left(self, key: str) -> float:
        with self._lock:
            at, _ = self._next.get(key, (0.0, self.interval))
        return max(0.0, at - time.monotonic())

    def attempt(self, key: str, ok: bool) -> None:
        with self._lock:
            _, delay = self._next.get(key, (0.0, self.interval))
            if ok:
                self._next.pop(key, None)
            else:
                self._next[key] = (time.monotonic() + delay, min(self.cap, delay * 2))


def login(ws: Workspace, limiter: LoginLimiter, client: str, name: str, password: str) -> Account:
    """Authenticate through the client's rate limit: too soon after a failure is refused unchecked."""
    left = limiter.wait_left(client)
    if left > 0:
        raise PermissionDenied(f"too many login attempts: wait {left:.0f} s")
    try:
        user = authenticate(ws, name, password)
    except PermissionDenied:
        limiter.attempt(client, ok=False)
        raise
    limiter.attempt(client, ok=True)
    return user

