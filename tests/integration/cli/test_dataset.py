"""`workbench split` and `workbench stats` on a real workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run


def test_stats_of_an_empty_project_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    capsys.readouterr()
    assert run(ws, "stats", "p") == 0
    out = capsys.readouterr().out
    assert "status: (no images)" in out and "splits: (no images)" in out
