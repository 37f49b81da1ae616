"""Projects through the services: create, slugs, delete with its rows and files."""

from __future__ import annotations

import pytest

from tests.support.factories import add_images
from workbench.domain import (
    NotFoundError,
    ValidationError,
)
from workbench.services import projects


def test_project_lifecycle_removes_rows_and_files(ws) -> None:  # noqa: ANN001
    info = projects.create_project(ws, "Cats & Dogs")
    assert info.slug == "cats-dogs"
    with pytest.raises(ValidationError, match="already exists"):
        projects.create_project(ws, "Cats & Dogs")
    add_images(ws, info.slug)
    assert projects.get_project(ws, info.slug).num_images == 2
    folder = ws.project_dir(info.slug)
    assert any((folder / "images").rglob("*.png"))
    projects.delete_project(ws, info.slug)
    assert projects.list_projects(ws) == []
    assert not folder.exists()
    with pytest.raises(NotFoundError, match="no project 'cats-dogs'"):
        projects.get_project(ws, info.slug)
