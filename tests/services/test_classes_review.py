"""Class colours a user can type on the CLI (review of the backend)."""

from __future__ import annotations

import pytest

from workbench.domain import Category, ValidationError
from workbench.services import classes


@pytest.mark.parametrize("color", ["red", "#fff", "e6194b", "#e6194bff"])
def test_add_refuses_colours_that_are_not_hex(ws, project, color: str) -> None:  # noqa: ANN001
    """update_category refuses them, and the Classes page's colour picker fails on them."""
    with pytest.raises(ValidationError, match="#rrggbb"):
        classes.add_category(ws, project, Category(name="c", color=color))
    assert classes.list_categories(ws, project) == []


def test_add_keeps_a_hex_colour(ws, project) -> None:  # noqa: ANN001
    assert classes.add_category(ws, project, Category(name="c", color="#A0b1C2")).color == "#A0b1C2"


@pytest.mark.parametrize("typed", [" pad ", "pad  ", "\tpad\n"])
def test_add_strips_the_name_as_rename_does(ws, project, typed: str) -> None:  # noqa: ANN001
    """``workbench classes add P " pad "`` gave a class ' pad ' that a rename to ' pad ' calls 'pad'."""
    cat = classes.add_category(ws, project, Category(name=typed))
    assert cat.name == "pad"
    assert [c.name for c in classes.list_categories(ws, project)] == ["pad"]
    with pytest.raises(ValidationError, match="'pad' already exists"):
        classes.add_category(ws, project, Category(name=" pad"))
    renamed = classes.update_category(ws, project, cat.id, name=" pad2 ")
    assert renamed.name == "pad2"


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
