"""The three-way merge of an image's shapes: what one side touched wins, only a shape both changed clashes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workbench.domain import Instance
from workbench.services.shape_merge import merge_shapes, same_shape

TRI = (10.0, 10.0, 50.0, 10.0, 30.0, 40.0)
SQ = (60.0, 60.0, 90.0, 60.0, 90.0, 90.0, 60.0, 90.0)


def _base() -> list[Instance]:
    return [
        Instance(category="a", polygons=(TRI,), id=1, version=1),
        Instance(category="a", polygons=(SQ,), id=2, version=1),
    ]


def _moved(inst: Instance, dx: float, version: int | None = None) -> Instance:
    poly = tuple(v + dx if k % 2 == 0 else v for k, v in enumerate(inst.polygons[0]))
    return replace(inst, polygons=(poly,), version=version or inst.version)


def test_edits_to_different_shapes_both_go_through() -> None:
    base = _base()
    mine = [_moved(base[0], 5), base[1]]
    theirs = [base[0], replace(base[1], category="b", version=2)]
    merged = merge_shapes(base, mine, theirs)
    assert merged.clashes == []
    by_id = {i.id: i for i in merged.instances}
    assert by_id[1].polygons[0][0] == 15.0 and by_id[2].category == "b"


def test_new_shapes_of_both_sides_are_kept_and_deletions_of_untouched_shapes_apply() -> None:
    base = _base()
    new_mine = Instance(category="a", polygons=(TRI,))
    new_theirs = Instance(category="b", polygons=(SQ,), id=3, version=1)
    mine = [base[0], new_mine]  # I deleted the square
    theirs = [base[1], new_theirs]  # they deleted the triangle
    merged = merge_shapes(base, mine, theirs)
    assert merged.clashes == []
    assert [(i.id, i.category) for i in merged.instances] == [(None, "a"), (3, "b")]


@pytest.mark.parametrize(
    ("mine_edit", "theirs_edit", "clash"),
    [
        ("move", "relabel", True),  # both changed the same shape
        ("move", "move", False),  # the same change on both sides is no clash
        ("delete", "relabel", True),  # I deleted what they changed
        ("relabel", "delete", True),  # they deleted what I changed
        ("none", "delete", False),
        ("delete", "none", False),
    ],
)
def test_the_same_shape_changed_on_both_sides(mine_edit: str, theirs_edit: str, clash: bool) -> None:
    base = _base()
    edits = {
        "move": lambda i: _moved(i, 5, version=2),
        "relabel": lambda i: replace(i, category="b", version=2),
        "none": lambda i: i,
    }

    def side(edit: str) -> list[Instance]:
        return [base[1]] if edit == "delete" else [edits[edit](base[0]), base[1]]

    merged = merge_shapes(base, side(mine_edit), side(theirs_edit))
    assert bool(merged.clashes) is clash
    if clash:
        (c,) = merged.clashes
        assert c.id == 1
        mine_ids = {i.id for i in merged.instances}
        theirs_ids = {i.id for i in merged.taking_theirs()}
        assert (1 in mine_ids) is (mine_edit != "delete")
        assert (1 in theirs_ids) is (theirs_edit != "delete")


def test_coordinates_within_the_browsers_rounding_are_unchanged() -> None:
    a = Instance(category="a", polygons=((10.004, 10.0, 50.0, 10.0, 30.0, 40.0),), id=1)
    assert same_shape(a, Instance(category="a", polygons=(TRI,), id=1))
    assert not same_shape(a, _moved(a, 0.1))


def test_a_box_only_instance_with_another_box_is_a_change() -> None:
    a = Instance(category="a", bbox_xywh=(10.0, 10.0, 30.0, 20.0), id=1)
    assert same_shape(a, replace(a))
    assert not same_shape(a, replace(a, bbox_xywh=(10.0, 10.0, 60.0, 20.0)))
