"""Project use cases shared by the CLI and the UI."""

from __future__ import annotations

import shutil

from workbench.domain import ProjectInfo
from workbench.services.permissions import requires, visible_project_ids
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo


@requires("project.create")
def create_project(
    ws: Workspace, name: str, *, slug: str | None = None, description: str = ""
) -> ProjectInfo:
    with ws.store.transaction() as s:
        info = project_repo.create_project(s, name, slug=slug, description=description)
    for sub in ("images", "thumbs", "display", "runs", "exports"):
        (ws.project_dir(info.slug) / sub).mkdir(parents=True, exist_ok=True)
    return info


@requires("project.read")
def list_projects(ws: Workspace) -> list[ProjectInfo]:
    """Every project; in team mode, those the acting user belongs to (an admin's: every one)."""
    visible = visible_project_ids(ws)
    with ws.store.transaction() as s:
        infos = project_repo.list_projects(s)
    return infos if visible is None else [p for p in infos if p.id in visible]


@requires("project.read")
def get_project(ws: Workspace, slug: str) -> ProjectInfo:
    with ws.store.transaction() as s:
        return project_repo.get_project(s, slug)


@requires("project.delete")
def delete_project(ws: Workspace, slug: str) -> None:
    """Remove the rows (one transaction), then the project's folder.

    A running import is waited for (its lock): deleting under it failed the import with 'stored image
    file is missing' and left a folder its later files recreated.
    """
    from workbench.services.imports import project_write_lock

    with project_write_lock(ws, slug, "deleting it"):
        with ws.store.transaction() as s:
            project_repo.delete_project(s, slug)
        folder = ws.project_dir(slug)
        if folder.exists():
            trash = folder.with_name(f".{slug}.deleting")
            if trash.exists():
                shutil.rmtree(trash, ignore_errors=True)
            folder.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
