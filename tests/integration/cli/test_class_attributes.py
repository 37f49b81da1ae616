"""`workbench classes add/edit --attribute`: attribute definitions from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run
from workbench.domain import AttributeDef


def test_attributes_are_added_listed_replaced_and_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.services import classes
    from workbench.services.workspace import open_workspace

    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    args = ["--attribute", "colour: select(red, green)", "--attribute", "parked"]
    assert run(ws, "classes", "add", "p", "car", *args) == 0
    capsys.readouterr()
    assert run(ws, "classes", "list", "p") == 0
    assert "attributes=colour: select(red, green); parked: checkbox" in capsys.readouterr().out
    assert run(ws, "classes", "edit", "p", "car", "--attribute", "occluded") == 1
    assert "every class has it already" in capsys.readouterr().err
    assert run(ws, "classes", "edit", "p", "car", "--attribute", "seats: number") == 0
    w = open_workspace(ws)
    try:
        assert classes.list_categories(w, "p")[0].attributes == (AttributeDef("seats", "number"),)
        assert run(ws, "classes", "edit", "p", "car", "--no-attributes") == 0
        assert classes.list_categories(w, "p")[0].attributes == ()
    finally:
        w.close()
