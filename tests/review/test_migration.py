"""Migration 0002: the predictions table comes and goes without touching the rest, and matches the model."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from workbench.store import engine
from workbench.store.engine import sqlite_url
from workbench.store.models import Base


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
