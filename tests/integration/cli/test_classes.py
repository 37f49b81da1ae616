"""`workbench classes`: add, list, rename, edit and delete on a real workspace; errors change nothing."""

from __future__ import annotations

from workbench.services import classes


def test_add_refuses_a_name_of_only_spaces_via_the_cli(ws, project, capsys) -> None:  # noqa: ANN001
    from workbench.cli import main

    rc = main(["--workspace", str(ws.root), "classes", "add", project, "   "])
    assert rc != 0
    assert "empty" in capsys.readouterr().err
    assert classes.list_categories(ws, project) == []

def test_cli_add_strips_the_name(ws, project) -> None:  # noqa: ANN001
    from workbench.cli import main

    assert main(["--workspace", str(ws.root), "classes", "add", project, " pad "]) == 0
    assert [c.name for c in classes.list_categories(ws, project)] == ["pad"]
