"""Migration 0003: annotation ids are never reused (SQLite AUTOINCREMENT), z_order and attribute columns."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from workbench.store import engine
from workbench.store.engine import sqlite_url

NOW = "'2026-01-01'"


def _seed_0002(url: str) -> None:
    """A project at revision 0002 with annotations 3, 7 and 9 (9 accepted from a prediction)."""
    engine.upgrade(url, "0002")
    eng = engine.make_engine(url)
    with eng.begin() as c:
        c.execute(text(f"INSERT INTO projects VALUES (1, 'p', 'P', '', '{{}}', {NOW}, {NOW})"))
        c.execute(
            text(
                "INSERT INTO categories (id, project_id, name, color, supercategory, position, created_at) "
                f"VALUES (1, 1, 'c', '#000000', '', 0, {NOW})"
            )
        )
        c.execute(
            text(
                "INSERT INTO images (id, project_id, sha256, path, original_name, width, height, status, "
                f"version, created_at, updated_at) VALUES (1, 1, 'x', 'a', 'a', 10, 10, 'done', 1, {NOW}, {NOW})"
            )
        )
        for i in (3, 7, 9):
            c.execute(
                text(
                    "INSERT INTO annotations (id, image_id, category_id, iscrowd, source, version, created_at, "
                    f"updated_at, attributes) VALUES ({i}, 1, 1, 0, 'manual', 1, {NOW}, {NOW}, '{{\"n\": {i}}}')"
                )
            )
        c.execute(
            text(
                "INSERT INTO runs (id, project_id, name, kind, status, config, run_dir, created_at) "
                f"VALUES (1, 1, 'r', 'train', 'succeeded', '{{}}', '', {NOW})"
            )
        )
        c.execute(
            text(
                "INSERT INTO predictions (id, run_id, image_id, category_id, score, status, annotation_id, "
                f"created_at) VALUES (1, 1, 1, 1, 0.5, 'accepted', 9, {NOW})"
            )
        )
    eng.dispose()


def _insert_annotation(c) -> int:  # noqa: ANN001
    c.execute(
        text(
            "INSERT INTO annotations (image_id, category_id, iscrowd, source, version, created_at, updated_at) "
            f"VALUES (1, 1, 0, 'manual', 1, {NOW}, {NOW})"
        )
    )
    return int(c.execute(text("SELECT last_insert_rowid()")).scalar())


def test_0003_keeps_rows_and_links_and_never_reuses_a_deleted_id(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "w.db")
    _seed_0002(url)
    engine.upgrade(url, "0003")
    eng = engine.make_engine(url)
    with eng.begin() as c:
        rows = c.execute(text("SELECT id, z_order, attributes FROM annotations ORDER BY id")).all()
        assert rows == [(3, 0, '{"n": 3}'), (7, 0, '{"n": 7}'), (9, 0, '{"n": 9}')]
        # dropping the old table set the prediction's link to NULL; the migration put it back
        assert c.execute(text("SELECT annotation_id FROM predictions")).scalar() == 9
        assert c.execute(text("PRAGMA foreign_key_check")).all() == []
        c.execute(text("DELETE FROM annotations WHERE id = 9"))
        assert _insert_annotation(c) == 10  # before 0003 it was 9 again
    insp = inspect(eng)
    assert {ix["name"] for ix in insp.get_indexes("annotations")} == {
        "ix_annotations_image",
        "ix_annotations_category",
    }
    assert "attributes" in {col["name"] for col in insp.get_columns("categories")}
    eng.dispose()

    engine.downgrade(url, "0002")
    eng = engine.make_engine(url)
    with eng.connect() as c:
        assert c.execute(text("SELECT id FROM annotations ORDER BY id")).scalars().all() == [3, 7, 10]
        assert "z_order" not in {col["name"] for col in inspect(eng).get_columns("annotations")}
    eng.dispose()
    engine.upgrade(url)
    assert engine.current_revision(url) == engine.head_revision()


def test_a_fresh_store_never_reuses_the_newest_id(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "w.db")
    _seed_0002(url)
    eng = engine.make_engine(url)
    with eng.begin() as c:
        c.execute(text("DELETE FROM predictions"))
        c.execute(text("DELETE FROM annotations"))
    eng.dispose()
    engine.upgrade(url)
    eng = engine.make_engine(url)
    with eng.begin() as c:
        first = _insert_annotation(c)
        c.execute(text(f"DELETE FROM annotations WHERE id = {first}"))
        assert _insert_annotation(c) == first + 1
    eng.dispose()


def test_migrated_annotations_and_categories_match_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from workbench.store.models import Base

    url = sqlite_url(tmp_path / "w.db")
    engine.upgrade(url)
    eng = engine.make_engine(url)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    eng.dispose()
    assert [d for d in diff if "annotations" in repr(d) or "categories" in repr(d)] == []
