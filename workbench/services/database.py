"""A workspace database's schema revision, moved up or down by hand (``workbench db``).

Opening a workspace already upgrades to the newest revision; these are for looking and for going
back (a downgrade before installing an older release).
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.store import engine


def _target(workspace: str | Path | None, database_url: str | None) -> tuple[Path, str]:
    """The workspace folder and the URL of its database, with the same defaults as opening it."""
    root = Path(workspace or os.environ.get("WORKBENCH_HOME") or "projects")
    url = database_url or os.environ.get("WORKBENCH_DATABASE_URL") or engine.sqlite_url(root / "workbench.db")
    return root, url


def revisions(workspace: str | Path | None = None, database_url: str | None = None) -> tuple[str | None, str | None]:
    """(the database's revision, None when it has none yet; the newest revision this release knows)."""
    _root, url = _target(workspace, database_url)
    return engine.current_revision(url), engine.head_revision()


def upgrade(
    workspace: str | Path | None = None, database_url: str | None = None, revision: str = "head"
) -> str | None:
    """Migrate up to ``revision``, creating the workspace folder; the revision reached."""
    root, url = _target(workspace, database_url)
    root.mkdir(parents=True, exist_ok=True)
    engine.upgrade(url, revision)
    return engine.current_revision(url)


def downgrade(
    workspace: str | Path | None = None, database_url: str | None = None, revision: str = "-1"
) -> str | None:
    """Migrate down to ``revision`` (default one step); the revision reached, None when empty."""
    _root, url = _target(workspace, database_url)
    engine.downgrade(url, revision)
    return engine.current_revision(url)
