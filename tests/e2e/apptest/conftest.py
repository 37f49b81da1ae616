"""AppTest runs the app in this process: its workspace comes from WORKBENCH_HOME, never a database URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.services.workspace import Workspace, open_workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    root = tmp_path / "ws"
    monkeypatch.setenv("WORKBENCH_HOME", str(root))
    monkeypatch.delenv("WORKBENCH_DATABASE_URL", raising=False)
    return open_workspace(root)
