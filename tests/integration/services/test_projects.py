"""Projects through the services: create, slugs, delete with its rows and files."""

from __future__ import annotations

import logging

import pytest

from tests.support.factories import add_images
from workbench.domain import (
    NotFoundError,
    ValidationError,
)
from workbench.services import projects
from workbench.store.projects import slugify


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


@pytest.mark.parametrize("slug", ["../outside", "a/b", "My Birds", ".hidden", "", "x" * 101, "Upper"])
def test_a_slug_that_is_not_a_plain_folder_name_is_refused(ws, slug: str) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="project slug"):
        projects.create_project(ws, "Birds", slug=slug)
    assert projects.list_projects(ws) == []
    assert not (ws.root.parent / "outside").exists()


def test_a_plain_explicit_slug_is_kept(ws) -> None:  # noqa: ANN001
    assert projects.create_project(ws, "Birds", slug="birds_2024-v1").slug == "birds_2024-v1"


@pytest.mark.parametrize(
    ("name", "slug"),
    [("ÜniCödé Birds", "unicode-birds"), ("Café", "cafe"), ("Cats & Dogs", "cats-dogs"), ("鳥", "project")],
)
def test_slugify_keeps_the_letters_of_accented_names(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_different_names_with_one_slug_get_numbered_slugs_and_the_same_name_is_refused(ws) -> None:  # noqa: ANN001
    assert projects.create_project(ws, "鳥").slug == "project"
    assert projects.create_project(ws, "鳥類").slug == "project-2"
    assert projects.create_project(ws, "猫").slug == "project-3"
    with pytest.raises(ValidationError, match="already exists"):
        projects.create_project(ws, "鳥類")


def test_deleting_a_project_waits_for_its_running_import_and_says_so(
    ws, project: str, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    import fcntl
    import threading
    import time

    caplog.set_level(logging.WARNING)
    lock_path = ws.project_dir(project) / ".import.lock"
    with open(lock_path, "a+b") as held:  # another process's import holds the project's lock
        fcntl.flock(held, fcntl.LOCK_EX)
        errors: list[BaseException] = []

        def delete() -> None:
            try:
                projects.delete_project(ws, project)
            except BaseException as exc:  # pragma: no cover - shown by the assert below
                errors.append(exc)

        worker = threading.Thread(target=delete)
        worker.start()
        for _ in range(500):  # until the deletion reports that it waits (a sync, not a timing check)
            if any("waiting for another import" in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.01)
        assert any(f"project {project!r} to finish before deleting it" in r.getMessage() for r in caplog.records)
        assert [p.slug for p in projects.list_projects(ws)] == [project]  # nothing deleted while held
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=30)
    assert not worker.is_alive() and errors == []
    assert projects.list_projects(ws) == []
    assert not ws.project_dir(project).exists()
