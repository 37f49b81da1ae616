"""Users page (admins): accounts and roles, passwords, disable and delete, the open project's members.

In solo mode it offers only the first admin, which turns sign-in on for every page.
"""

from __future__ import annotations

import streamlit as st

from workbench.domain import ROLES, WorkbenchError
from workbench.services import accounts
from workbench.ui import context

FLASH_KEY = "users_flash"


def _flash(text: str) -> None:
    st.session_state[FLASH_KEY] = text
    st.rerun()


def _first_admin(ws) -> None:  # noqa: ANN001
    st.info("No accounts: this workspace is in solo mode (no sign-in, on this machine only). Adding the "
            "first admin turns sign-in on for every page.")  # fmt: skip
    with st.form("wb_first_admin"):
        name = st.text_input("Admin user name")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Add admin and turn sign-in on", type="primary"):
            try:
                accounts.add_user(ws, name, password, "admin")
            except WorkbenchError as exc:
                st.error(str(exc))
            else:
                _flash(f"Added admin {name}: sign in.")


def _add_user(ws) -> None:  # noqa: ANN001
    with st.form("wb_add_user", clear_on_submit=True):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("New user")
        role = c2.selectbox("Role", ROLES, index=ROLES.index("annotator"))
        password = c3.text_input("Password", type="password")
        if st.form_submit_button("Add user", type="primary"):
            try:
                accounts.add_user(ws, name, password, role)
            except WorkbenchError as exc:
                st.error(str(exc))
            else:
                _flash(f"Added {name} ({role}).")


def _edit_user(ws, users) -> None:  # noqa: ANN001
    names = [u.name for u in users]
    name = st.selectbox("User", names, key="wb_edit_user")
    user = next(u for u in users if u.name == name)
    c1, c2, c3, c4 = st.columns(4)
    role = c1.selectbox("Role", ROLES, index=ROLES.index(user.role), key=f"wb_role_{name}")
    try:
        if c1.button("Change role", key=f"wb_set_role_{name}", disabled=role == user.role):
            accounts.set_role(ws, name, role)
            _flash(f"{name} is now {role}.")
        if c2.button("Enable" if user.disabled else "Disable", key=f"wb_disable_{name}"):
            accounts.set_disabled(ws, name, not user.disabled)
            _flash(f"{name} {'enabled' if user.disabled else 'disabled'}.")
        password = c3.text_input("New password", type="password", key=f"wb_pw_{name}")
        if c3.button("Set password", key=f"wb_set_pw_{name}", disabled=not password):
            accounts.set_password(ws, name, password)
            _flash(f"Password of {name} changed.")
        sure = c4.checkbox("Really delete", key=f"wb_sure_{name}")
        if c4.button("Delete user", key=f"wb_delete_{name}", disabled=not sure):
            accounts.delete_user(ws, name)
            _flash(f"Deleted {name}.")
    except WorkbenchError as exc:
        st.error(str(exc))


def _members(ws, users) -> None:  # noqa: ANN001
    slug = context.current_slug()
    if not slug:
        st.caption("Open a project to choose its members.")
        return
    st.subheader(f"Members of {slug}")
    have = {u.name for u in accounts.members(ws, slug)}
    chosen = st.multiselect("Members (admins see every project)", [u.name for u in users], default=sorted(have),
                            key=f"wb_members_{slug}")  # fmt: skip
    if st.button("Save members", key="wb_save_members", disabled=set(chosen) == have):
        try:
            for name in set(chosen) - have:
                accounts.add_member(ws, slug, name)
            for name in have - set(chosen):
                accounts.remove_member(ws, slug, name)
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            _flash("Members saved.")


def render() -> None:
    ws = context.get_workspace()
    st.header("Users")
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)
    if not accounts.has_accounts(ws):
        _first_admin(ws)
        return
    try:
        users = accounts.list_users(ws)
    except WorkbenchError as exc:
        st.error(str(exc))
        return
    st.dataframe(
        [{"user": u.name, "role": u.role, "disabled": u.disabled,
          "locked until": f"{u.locked_until:%H:%M} UTC" if u.locked_until else "",
          "last login": f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"} for u in users],
        hide_index=True,
    )  # fmt: skip
    _add_user(ws)
    st.subheader("Change a user")
    _edit_user(ws, users)
    _members(ws, users)
