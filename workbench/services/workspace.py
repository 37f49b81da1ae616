"""The workspace: a folder with ``workbench.db`` and one folder per project (or a database URL)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from workbench.domain import Account
from workbench.store.engine import Store, open_store

DEFAULT_WORKSPACE = Path("projects")


def default_root() -> Path:
    return Path(os.environ.get("WORKBENCH_HOME") or DEFAULT_WORKSPACE)


@dataclass
class Workspace:
    root: Path
    store: Store
    actor: Account | None = None
    """Who acts (team mode, issue 15): every service call checks this user's role and membership.
    None with no accounts in the store is solo mode; None with accounts is refused."""

    def as_user(self, actor: Account | None) -> Workspace:
        """The same workspace (one store) acted on by ``actor``: one per browser session or command."""
        return replace(self, actor=actor)

    def project_dir(self, slug: str) -> Path:
        return self.root / slug

    def close(self) -> None:
        self.store.dispose()


def open_workspace(root: Path | str | None = None, *, database_url: str | None = None) -> Workspace:
    """Open a workspace, creating it and applying migrations as needed."""
    root = Path(root) if root is not None else default_root()
    root.mkdir(parents=True, exist_ok=True)
    return Workspace(root=root.resolve(), store=open_store(database_url, workspace=root))
