"""Migrations: empty -> head, a downgrade/upgrade round trip, and the SQLite settings every connection gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from workbench.store import engine
from workbench.store.engine import open_store, sqlite_url
from workbench.store.models import Base


def test_empty_to_head_creates_every_table(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "w.db")
    assert engine.current_revision(url) is None
    engine.upgrade(url)
    assert engine.current_revision(url) == engine.head_revision()
    eng = engine.make_engine(url)
    tables = set(inspect(eng).get_table_names())
    eng.dispose()
    assert {"projects", "categories", "images", "annotations", "runs", "alembic_version"} <= tables


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "w.db")
    engine.upgrade(url)
    engine.downgrade(url, "base")
    assert engine.current_revision(url) is None
    eng = engine.make_engine(url)
    assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    eng.dispose()
    engine.upgrade(url)
    assert engine.current_revision(url) == engine.head_revision()


def test_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    store = open_store(workspace=tmp_path)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == engine.BUSY_TIMEOUT_MS
    store.dispose()


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    store = open_store(workspace=tmp_path)
    with pytest.raises(IntegrityError), store.transaction() as s:
        s.execute(
            text(
                "INSERT INTO categories (project_id, name, color, supercategory, position, created_at) "
                "VALUES (999, 'x', '#000000', '', 0, '2026-01-01')"
            )
        )
    store.dispose()


def test_database_url_env_overrides_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", sqlite_url(other))
    store = open_store(workspace=tmp_path / "ws")
    store.dispose()
    assert other.exists()
    assert not (tmp_path / "ws" / "workbench.db").exists()


def _tables(url: str) -> set[str]:
    eng = engine.make_engine(url)
    try:
        return set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_0001_to_0002_and_back_keeps_other_data(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "w.db")
    engine.upgrade(url, "0001")
    assert "predictions" not in _tables(url)
    eng = engine.make_engine(url)
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (slug, name, description, settings, created_at, updated_at) "
                "VALUES ('p', 'P', '', '{}', '2026-01-01', '2026-01-01')"
            )
        )
    eng.dispose()

    engine.upgrade(url, "0002")
    assert engine.current_revision(url) == "0002"
    eng = engine.make_engine(url)
    insp = inspect(eng)
    cols = {c["name"] for c in insp.get_columns("predictions")}
    assert {
        "id",
        "run_id",
        "image_id",
        "category_id",
        "segmentation",
        "bbox",
        "keypoints",
        "score",
        "status",
    } <= cols
    assert {"annotation_id", "created_at"} <= cols
    fks = {fk["referred_table"]: fk["options"].get("ondelete") for fk in insp.get_foreign_keys("predictions")}
    assert fks == {"runs": "CASCADE", "images": "CASCADE", "categories": "CASCADE", "annotations": "SET NULL"}
    indexes = {ix["name"]: ix["column_names"] for ix in insp.get_indexes("predictions")}
    assert indexes == {
        "ix_predictions_run_image": ["run_id", "image_id"],
        "ix_predictions_image": ["image_id"],
    }
    eng.dispose()

    engine.downgrade(url, "0001")
    assert engine.current_revision(url) == "0001"
    assert "predictions" not in _tables(url)
    eng = engine.make_engine(url)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT slug FROM projects")).scalars().all() == ["p"]
    eng.dispose()
    engine.upgrade(url)
    assert "predictions" in _tables(url)


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    """Autogenerate finds nothing to add: the migration and PredictionRow agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = sqlite_url(tmp_path / "w.db")
    engine.upgrade(url)
    eng = engine.make_engine(url)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    eng.dispose()
    assert [d for d in diff if "predictions" in repr(d)] == []
