"""`workbench demo` and `workbench db`: the demo project and the migrations from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run


@pytest.mark.parametrize("n", ["0", "-5"])
def test_demo_with_no_images_is_refused_and_makes_no_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n: str
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", n) == 1
    assert f"at least 1 image, got {n}" in capsys.readouterr().err
    assert run(ws, "project", "list") == 0
    assert "no projects" in capsys.readouterr().out
    assert not (ws / "demo-shapes").exists()


def test_db_commands_and_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "db", "upgrade") == 0
    assert run(ws, "db", "current") == 0
    from workbench.store.engine import head_revision

    assert f"current: {head_revision()}; head: {head_revision()}" in capsys.readouterr().out
    assert run(ws, "demo", "--images", "6") == 0
    assert "6 images" in capsys.readouterr().out
    assert run(ws, "db", "downgrade", "base") == 0
    assert run(ws, "db", "upgrade") == 0
