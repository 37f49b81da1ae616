"""Streamlit entry point: `workbench ui` runs this file. Pages are listed in PAGES (add new ones there)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from workbench.domain import Account
from workbench.services import projects
from workbench.services.permissions import allowed
from workbench.ui import auth, context
from workbench.ui.app_pages import annotate, classes, dataset, export, imports
from workbench.ui.app_pages import augment as augment_page
from workbench.ui.app_pages import evaluate as evaluate_page
from workbench.ui.app_pages import projects as projects_page
from workbench.ui.app_pages import review as review_page
from workbench.ui.app_pages import team as team_page
from workbench.ui.app_pages import train as train_page
from workbench.ui.app_pages import users as users_page


@dataclass(frozen=True)
class PageSpec:
    name: str  # URL path and the key pages link with (context.PAGE_PATHS[name]); the first page is "/"
    title: str
    icon: str
    render: Callable[[], None]


# Navigation order. Train, Evaluate and Review pages append themselves here.
# (No bare string literals at module level: Streamlit's magic would print them.)
PAGES: list[PageSpec] = [
    PageSpec("projects", "Projects", ":material/folder:", projects_page.render),
    PageSpec("import", "Import", ":material/upload:", imports.render),
    PageSpec("classes", "Classes", ":material/label:", classes.render),
    PageSpec("annotate", "Annotate", ":material/draw:", annotate.render),
    PageSpec("dataset", "Dataset", ":material/grid_view:", dataset.render),
    PageSpec("export", "Export", ":material/download:", export.render),
    PageSpec("augment", "Augment", ":material/auto_awesome_mosaic:", augment_page.render),
    PageSpec("train", "Train", ":material/model_training:", train_page.render),
    PageSpec("evaluate", "Evaluate", ":material/analytics:", evaluate_page.render),
    PageSpec("review", "Review", ":material/fact_check:", review_page.render),
    PageSpec("team", "Team", ":material/groups:", team_page.render),
    PageSpec("users", "Users", ":material/manage_accounts:", users_page.render),
]

PAGE_ACTIONS = {"import": "import", "export": "export", "train": "train", "users": "users"}
"""Team mode: a page shows only to the roles that may do its action (the services refuse the rest anyway)."""


def _shown(spec: PageSpec, account: Account | None) -> bool:
    if account is None:
        return spec.name != "team"  # solo mode: every page as before (Users adds the first admin)
    return allowed(account.role, PAGE_ACTIONS.get(spec.name, "project.read"))


# The browser tab's icon, inline (Streamlit sends it as a data: URL). A ``:material/...:`` page icon
# makes Streamlit's frontend fetch the icon from fonts.gstatic.com on every page load; nothing the
# UI shows may come from outside 127.0.0.1. (The sidebar's material icons use Streamlit's bundled font.)
TAB_ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
    '<polyline points="4,18 9,6 15,14 20,5" fill="none" stroke="#ff4b4b" stroke-width="2.5" '
    'stroke-linecap="round" stroke-linejoin="round"/>'
    '<g fill="#31333f"><circle cx="4" cy="18" r="2.5"/><circle cx="9" cy="6" r="2.5"/>'
    '<circle cx="15" cy="14" r="2.5"/><circle cx="20" cy="5" r="2.5"/></g></svg>'
)


def _project_picker() -> None:
    ws = context.get_workspace()
    infos = projects.list_projects(ws)
    slugs = [p.slug for p in infos]
    names = {p.slug: p.name for p in infos}
    current = context.current_slug()
    if current not in slugs:
        current = slugs[0] if len(slugs) == 1 else None  # the only project opens by itself
        context.set_current_project(current)
    if not slugs:
        st.sidebar.caption("No projects yet")
        return

    def _changed() -> None:
        context.set_current_project(st.session_state["wb_project_picker"])

    st.session_state["wb_project_picker"] = current
    st.sidebar.selectbox(
        "Project",
        slugs,
        index=None,
        key="wb_project_picker",
        on_change=_changed,
        format_func=lambda s: names.get(s, s),
        placeholder="Open a project",
    )
    st.sidebar.caption(f"Workspace: {ws.root}")


def main() -> None:
    st.set_page_config(page_title="Workbench", page_icon=TAB_ICON_SVG, layout="wide")
    may_run, account = auth.gate(context.shared_workspace())
    if not may_run:  # team mode without a login: whatever page was asked for, only the form runs
        st.navigation([st.Page(auth.login_page, title="Sign in", url_path="login", default=True)],
                      position="hidden").run()  # fmt: skip
        return
    auth.banner()
    specs = [p for p in PAGES if _shown(p, account)]
    pages = [
        st.Page(p.render, title=p.title, icon=p.icon, url_path=p.name, default=(i == 0))
        for i, p in enumerate(specs)
    ]
    context.PAGE_PATHS.update({p.name: page for p, page in zip(specs, pages, strict=True)})
    nav = st.navigation(pages)
    context.note_page(nav.url_path)
    if account is not None:
        auth.sidebar(account)
    _project_picker()
    context.sync_url()
    nav.run()


main()
