"""Migration 0004 (team mode) up and down with data on SQLite (PostgreSQL: tests/integration/postgres)."""

from __future__ import annotations

from pathlib import Path

from tests.support.team import migration_round_trip
from workbench.store import engine
from workbench.store.engine import sqlite_url


def test_0004_up_and_down_with_data_keeps_the_rest(tmp_path: Path) -> None:
    migration_round_trip(sqlite_url(tmp_path / "w.db"))


def test_one_head() -> None:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(engine.alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, heads


def test_team_tables_match_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tests.support.team import TEAM_TABLES
    from workbench.store.models import Base

    url = sqlite_url(tmp_path / "w.db")
    engine.upgrade(url)
    eng = engine.make_engine(url)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    eng.dispose()
    assert [d for d in diff if any(t in repr(d) for t in TEAM_TABLES)] == []
