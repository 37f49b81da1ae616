"""`workbench project create|list|delete` on a real workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run


def test_project_delete_without_yes_names_a_wrong_project_and_counts_a_right_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    assert run(ws, "project", "delete", "typo") == 1
    assert "no project 'typo'; projects: p" in capsys.readouterr().err
    assert run(ws, "project", "delete", "p") == 1
    assert "removes its 0 images and 0 annotations; add --yes" in capsys.readouterr().err
