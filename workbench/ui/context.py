"""What every page needs: the workspace (opened once per server process) and the current project.

The workspace comes from ``--workspace DIR`` after ``--`` on the streamlit command line (what
``workbench ui`` passes), else ``WORKBENCH_HOME``, else ``./projects``; ``WORKBENCH_DATABASE_URL``
points the store elsewhere.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import (
    ProjectInfo,
    WorkbenchError,
    plural,  # noqa: F401 - the pages say context.plural
)
from workbench.services import projects
from workbench.services.workspace import Workspace, open_workspace

PROJECT_KEY = "wb_project"
URL_PARAM = "project"


def workspace_args(argv: list[str] | None = None) -> tuple[Path, str | None]:
    """(workspace root, database URL) from argv and the environment."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workspace")
    parser.add_argument("--database-url")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    root = args.workspace or os.environ.get("WORKBENCH_HOME") or "projects"
    url = args.database_url or os.environ.get("WORKBENCH_DATABASE_URL") or None
    return Path(root).resolve(), url


@st.cache_resource(show_spinner=False)
def _open(root: str, url: str | None) -> Workspace:
    return open_workspace(Path(root), database_url=url)


def shared_workspace() -> Workspace:
    """The process's workspace (one store for every session), acted on by no one."""
    root, url = workspace_args()
    return _open(str(root), url)


def get_workspace() -> Workspace:
    """The workspace acted on by this session's signed-in user (team mode; nobody in solo mode)."""
    from workbench.ui.auth import signed_in

    return shared_workspace().as_user(signed_in())


def current_slug() -> str | None:
    """The open project; a new session (a reload, a bookmarked page) takes it from the URL."""
    if PROJECT_KEY not in st.session_state:
        st.session_state[PROJECT_KEY] = st.query_params.get(URL_PARAM) or None
    return st.session_state.get(PROJECT_KEY)


def set_current_project(slug: str | None) -> None:
    st.session_state[PROJECT_KEY] = slug
    sync_url()


def sync_url() -> None:
    """Keep ``?project=`` in the address bar equal to the open project (page links drop it), so that a
    reload or a copied link opens the same project instead of asking again."""
    slug = st.session_state.get(PROJECT_KEY)
    if slug and st.query_params.get(URL_PARAM) != slug:
        st.query_params[URL_PARAM] = slug
    elif not slug and URL_PARAM in st.query_params:
        del st.query_params[URL_PARAM]


def current_project(ws: Workspace) -> ProjectInfo | None:
    """The open project (the only one, when the workspace has one), or None after an info box
    telling the user how to open one."""
    slug = current_slug()
    if slug:
        try:
            return projects.get_project(ws, slug)
        except WorkbenchError:
            set_current_project(None)
    only = projects.list_projects(ws)
    if len(only) == 1:  # a workspace with one project (the demo on first run) opens it
        set_current_project(only[0].slug)
        return only[0]
    st.info("No project is open. Create or open one on the **Projects** page.")
    st.page_link(PAGE_PATHS["projects"], label="Go to Projects", icon=":material/folder:")
    return None


def project_page(title: str) -> tuple[Workspace, ProjectInfo] | None:
    """How every project page starts: the workspace, the open project (or how to open one), a header."""
    ws = get_workspace()
    info = current_project(ws)
    if info is None:
        return None
    st.header(f"{title} · {info.name}")
    return ws, info


VISIT_KEY = "wb_page_visit"


def note_page(url_path: str) -> None:
    """Count arrivals on a page: a run of the same page as the last run is the same visit."""
    last, visit = st.session_state.get(VISIT_KEY, ("", 0))
    if url_path != last:
        st.session_state[VISIT_KEY] = (url_path, visit + 1)


def page_visit() -> int:
    """The current visit's number: state made for one visit (a prepared download) goes with it."""
    return st.session_state.get(VISIT_KEY, ("", 0))[1]


PAGE_PATHS: dict[str, Any] = {}
"""Page name -> st.Page object, filled by streamlit_app.py so pages can link to each other."""


def show_error(exc: Exception) -> None:
    """Errors meant for users (WorkbenchError, ValueError) as a red box; others propagate."""
    st.error(str(exc))


_MD_SPECIAL = "\\`*_{}[]()#+-.!|<>~$"


def as_sentence(text: str) -> str:
    """A service's lower-case phrase ('cancelled by the user') shown as a sentence: 'Cancelled by the user.'"""
    text = text.strip()
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def md_escape(text: str) -> str:
    """User text (class and file names) shown literally inside markdown."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)
