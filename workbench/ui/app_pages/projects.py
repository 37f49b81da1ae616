"""Projects page: create, open and delete (with confirmation) projects; counts at a glance."""

from __future__ import annotations

import streamlit as st

from workbench.domain import ProjectInfo, WorkbenchError
from workbench.services import projects as svc
from workbench.ui import context

FLASH_KEY = "projects_flash"


def _create(ws) -> None:
    with st.form("create_project", clear_on_submit=True):
        name = st.text_input("New project name", placeholder="e.g. Kitchen objects")
        if st.form_submit_button("Create project", type="primary"):
            try:
                info = svc.create_project(ws, name)
            except (WorkbenchError, ValueError) as exc:
                st.error(str(exc))
            else:
                context.set_current_project(info.slug)
                # run again, so that the sidebar (drawn before this page) offers the new project
                st.session_state[FLASH_KEY] = (
                    f"Created and opened project {info.name!r}. Next: import images."
                )
                st.rerun()
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)


def _row(ws, info: ProjectInfo, is_open: bool) -> None:
    with st.container(border=True):
        c1, c2, c3 = st.columns([4, 1, 1])
        c1.markdown(f"**{'▶ ' if is_open else ''}{context.md_escape(info.name)}**  \n`{info.slug}`")
        status = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(info.status_counts.items()) if v)
        c1.caption(
            f"{context.plural(info.num_images, 'image')} · {context.plural(info.num_annotations, 'annotation')} · "
            f"{context.plural(info.num_categories, 'class')}" + (f" · {status}" if status else "")
        )
        if c2.button("Open", key=f"open_{info.slug}", disabled=is_open):
            context.set_current_project(info.slug)
            st.rerun()
        confirm_key = f"confirm_delete_{info.slug}"
        if c3.button("Delete…", key=f"delete_{info.slug}"):
            st.session_state[confirm_key] = True
        if st.session_state.get(confirm_key):
            st.warning(
                f"Delete project {info.name!r} with its {context.plural(info.num_images, 'image')} and "
                f"{context.plural(info.num_annotations, 'annotation')}? This cannot be undone."
            )
            d1, d2, _ = st.columns([1, 1, 4])
            if d1.button("Yes, delete", key=f"really_delete_{info.slug}", type="primary"):
                try:
                    svc.delete_project(ws, info.slug)
                except WorkbenchError as exc:
                    st.error(str(exc))
                else:
                    st.session_state.pop(confirm_key, None)
                    if context.current_slug() == info.slug:
                        context.set_current_project(None)
                    st.rerun()
            if d2.button("Cancel", key=f"cancel_delete_{info.slug}"):
                st.session_state.pop(confirm_key, None)
                st.rerun()


def render() -> None:
    ws = context.get_workspace()
    st.header("Projects")
    _create(ws)
    infos = svc.list_projects(ws)
    if not infos:
        st.info(
            "No projects yet. Name one above and press **Create project**; then import images, "
            "add classes and start annotating. (`workbench ui --demo-if-empty` starts with a demo project.)"
        )
        return
    current = context.current_slug()
    for info in infos:
        _row(ws, info, info.slug == current)
