"""Alembic migrations of the store; installed as the ``workbench.migrations`` package."""
