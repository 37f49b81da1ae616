"""The same store on PostgreSQL (WORKBENCH_DATABASE_URL): migrations, imports, saves, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.domain import ConflictError, Instance
from workbench.services import annotate, export, projects
from workbench.services.demo import create_demo_project
from workbench.services.workspace import open_workspace
from workbench.store import engine


def test_migrations_round_trip_on_postgres(pg_url: str) -> None:
    engine.upgrade(pg_url)
    assert engine.current_revision(pg_url) == engine.head_revision()
    engine.downgrade(pg_url, "base")
    assert engine.current_revision(pg_url) is None
    engine.upgrade(pg_url)
    assert engine.current_revision(pg_url) == engine.head_revision()


def test_postgres_store_gives_the_same_export_as_sqlite(pg_url: str, tmp_path: Path) -> None:
    exports = {}
    for name, url in (("sqlite", None), ("postgres", pg_url)):
        ws = open_workspace(tmp_path / name, database_url=url)
        slug = create_demo_project(ws, num_images=6).slug
        im = annotate.list_images(ws, slug)[0]
        loaded = annotate.load_image(ws, slug, im.id)
        extra = Instance(category="square", polygons=((2.0, 2.0, 30.0, 2.0, 30.0, 30.0, 2.0, 30.0),))
        annotate.save_image(ws, slug, im.id, [*loaded.instances, extra], expected_version=loaded.version)
        with pytest.raises(ConflictError):
            annotate.save_image(ws, slug, im.id, [], expected_version=loaded.version)
        paths = export.export_coco(ws, slug, tmp_path / f"out_{name}")
        exports[name] = {p.name: json.loads(p.read_text()) for p in paths}
        assert projects.get_project(ws, slug).num_annotations == sum(len(d["annotations"]) for d in exports[name].values())
        ws.close()
    for d in exports.values():
        for f in d.values():
            f.pop("info")
    assert exports["sqlite"] == exports["postgres"]
