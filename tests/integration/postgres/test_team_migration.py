"""Migration 0004 (team mode) up and down with data on a real PostgreSQL server."""

from __future__ import annotations

from tests.support.team import migration_round_trip


def test_0004_up_and_down_with_data_on_postgres(pg_url: str) -> None:
    migration_round_trip(pg_url)
