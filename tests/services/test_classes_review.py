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
