"""The login gate (issue 15): once the store has an account, or the UI binds beyond loopback, every
page needs a signed-in user; before that only the login form runs.

A session's login lasts ``WORKBENCH_SESSION_HOURS`` (12) and ends after ``WORKBENCH_SESSION_IDLE_HOURS``
(2) without a page run; a disabled, deleted or re-roled account is read again on every run. Failed
logins are rate-limited per client address and lock the account after five (services/accounts.py).
``--no-auth`` (a proxy of the user's own does the login) turns the gate off and says so on every page.
"""

from __future__ import annotations

import os
import secrets
import threading
import time

import streamlit as st

from workbench.domain import Account, WorkbenchError
from workbench.services import accounts
from workbench.services.workspace import Workspace

SESSION_KEY = "wb_auth"
COOKIE = "wb_session"
"""A reload is a new Streamlit session: a random token in this cookie finds the login again
(SameSite=Strict; the token lives in this server process only, so a restart signs everyone out)."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _hours(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def no_auth() -> bool:
    return os.environ.get("WORKBENCH_NO_AUTH") == "1"


def ui_host() -> str:
    return os.environ.get("WORKBENCH_UI_HOST") or str(st.get_option("server.address") or "127.0.0.1")


@st.cache_resource(show_spinner=False)
def _limiter() -> accounts.LoginLimiter:
    return accounts.LoginLimiter()


class _Sessions:
    """Server-side logins by cookie token: token -> the session record (account, login time, last seen)."""

    def __init__(self) -> None:
        self.by_token: dict[str, dict] = {}
        self.lock = threading.Lock()

    def get(self, token: str) -> dict | None:
        with self.lock:
            return self.by_token.get(token)

    def put(self, token: str, record: dict) -> None:
        with self.lock:
            self.by_token[token] = record

    def drop(self, token: str | None = None, *, user_id: int | None = None) -> None:
        with self.lock:
            for key, rec in list(self.by_token.items()):
                if key == token or (user_id is not None and rec["account"].id == user_id):
                    del self.by_token[key]


@st.cache_resource(show_spinner=False)
def _sessions() -> _Sessions:
    return _Sessions()


def _set_cookie(token: str, max_age: int) -> None:
    """Written by a zero-height script (Streamlit cannot set cookies); the token is URL-safe base64."""
    st.html(
        f"<script>document.cookie = '{COOKIE}={token}; path=/; max-age={max_age}; SameSite=Strict';</script>",
        unsafe_allow_javascript=True,
    )


def _client() -> str:
    """Who is knocking: the address (a new session per try does not reset the wait), else the session."""
    ip = getattr(st.context, "ip_address", None)
    if ip:
        return f"ip:{ip}"
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return f"session:{ctx.session_id if ctx else '-'}"


def signed_in() -> Account | None:
    session = st.session_state.get(SESSION_KEY)
    return session["account"] if session else None


def logout(message: str | None = None) -> None:
    session = st.session_state.pop(SESSION_KEY, None)
    if session is not None:
        from workbench.ui.components.annotator.tile_server import revoke_user

        _sessions().drop(session.get("token"))
        revoke_user(session["account"].id)
        st.session_state["wb_cookie_clear"] = True
    if message:
        st.session_state["wb_auth_message"] = message


def _from_cookie() -> None:
    """A new session (a reload, a second tab) takes the login its cookie names, if it still holds."""
    if SESSION_KEY in st.session_state:
        return
    token = (getattr(st.context, "cookies", None) or {}).get(COOKIE)
    record = _sessions().get(token) if token else None
    if record is not None:
        st.session_state[SESSION_KEY] = record


def _current(ws: Workspace) -> Account | None:
    """The session's account if the login still holds (not expired, idle, disabled or deleted)."""
    _from_cookie()
    session = st.session_state.get(SESSION_KEY)
    if session is None:
        return None
    now = time.time()
    if now - session["at"] > _hours("WORKBENCH_SESSION_HOURS", 12) * 3600:
        logout("Your session expired; sign in again.")
        return None
    if now - session["seen"] > _hours("WORKBENCH_SESSION_IDLE_HOURS", 2) * 3600:
        logout("Signed out after a while without activity; sign in again.")
        return None
    account = accounts.current_account(ws, session["account"].name)
    if account is None or account.id != session["account"].id or account.disabled:
        logout("Your account was disabled or removed.")
        return None
    session["seen"] = now
    session["account"] = account
    return account


def gate(ws: Workspace) -> tuple[bool, Account | None]:
    """(may the pages run, the signed-in account or None); with False, the login page is to run."""
    if no_auth():
        return True, None
    team = accounts.has_accounts(ws)
    if not team and ui_host() in LOOPBACK:
        return True, None  # solo mode: as before
    account = _current(ws) if team else None
    return account is not None, account


def banner() -> None:
    if no_auth():
        st.warning(
            "**No login on this server** (`--no-auth`): whoever reaches it can change everything; "
            "a proxy in front must do the login.",
            icon=":material/lock_open:",
        )


def login_page() -> None:
    """The only page a visitor without a session gets, whatever the address asked for."""
    ws = _shared_workspace()
    st.title("Workbench · sign in")
    if not accounts.has_accounts(ws):
        st.error(
            "This UI is open beyond this machine and the workspace has no accounts yet. On the server, run "
            "`workbench users add NAME --role admin`, then reload."
        )
        return
    if st.session_state.pop("wb_cookie_clear", None):
        _set_cookie("", 0)
    message = st.session_state.pop("wb_auth_message", None)
    if message:
        st.info(message)
    with st.form("wb_login", clear_on_submit=False):
        name = st.text_input("User", key="wb_login_user", autocomplete="username")
        password = st.text_input("Password", type="password", key="wb_login_password",
                                 autocomplete="current-password")  # fmt: skip
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            account = accounts.login(ws, _limiter(), _client(), name.strip(), password)
        except WorkbenchError as exc:
            st.error(str(exc))
            return
        finally:
            st.session_state.pop("wb_login_password", None)  # the password leaves the session at once
        now = time.time()
        token = secrets.token_urlsafe(32)
        record = {"account": account, "at": now, "seen": now, "token": token}
        _sessions().put(token, record)
        st.session_state[SESSION_KEY] = record
        st.session_state["wb_cookie_set"] = token
        st.rerun()


def sidebar(account: Account) -> None:
    token = st.session_state.pop("wb_cookie_set", None)
    if token:
        _set_cookie(token, int(_hours("WORKBENCH_SESSION_HOURS", 12) * 3600))
    st.sidebar.caption(f"Signed in as **{account.name}** ({account.role})")
    if st.sidebar.button("Sign out", key="wb_logout", icon=":material/logout:"):
        logout("Signed out.")
        st.rerun()


def _shared_workspace() -> Workspace:
    from workbench.ui import context

    return context.shared_workspace()
