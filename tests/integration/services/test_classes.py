"""Classes through the services: colours, names, keypoint schemas, renames and deletes."""

from __future__ import annotations

import pytest

from tests.support.factories import add_images
from workbench.domain import (
    Category,
    Instance,
    KeypointSchema,
    ValidationError,
    WorkbenchError,
)
from workbench.services import annotate, classes

SQUARE = (2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0)


def test_category_delete_needs_explicit_choice(ws, project) -> None:  # noqa: ANN001
    box = classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project)[0]
    annotate.save_image(
        ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))], expected_version=1
    )
    with pytest.raises(WorkbenchError, match="has 1 annotations"):
        classes.delete_category(ws, project, box.id)
    assert classes.category_annotation_counts(ws, project) == {box.id: 1}
    assert classes.delete_category(ws, project, box.id, delete_annotations=True) == 1
    assert classes.list_categories(ws, project) == []
    assert annotate.load_image(ws, project, im.id).instances == []


def test_keypoint_schema_and_rename(ws, project) -> None:  # noqa: ANN001
    names = ["nose", "left_eye", "right_eye"]
    schema = KeypointSchema(
        names=tuple(names),
        skeleton=classes.parse_pairs("nose-left_eye, 1-3", names),
        flip_pairs=classes.parse_pairs("left_eye-right_eye", names),
    )
    cat = classes.add_category(ws, project, Category(name="face", keypoints=schema))
    assert cat.keypoints.skeleton == ((0, 1), (0, 2)) and cat.keypoints.flip_permutation() == [0, 2, 1]
    renamed = classes.update_category(ws, project, cat.id, name="head", color="#00ff00")
    assert (renamed.name, renamed.color, renamed.keypoints) == ("head", "#00ff00", schema)
    with pytest.raises(ValidationError, match="colour"):
        classes.update_category(ws, project, cat.id, color="green")
    with pytest.raises(ValueError, match="'ear' is not one of the keypoints"):
        classes.parse_pairs("nose-ear", names)


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        ("left-eye-right-eye", ["left-eye", "right-eye"], ((0, 1),)),
        ("a-b, b:c", ["a", "b", "c"], ((0, 1), (1, 2))),
        ("1-left-wing", ["beak", "left-wing"], ((0, 1),)),
        (" tail - beak ", ["beak", "tail"], ((1, 0),)),
    ],
)
def test_parse_pairs_splits_where_both_sides_are_keypoints(text: str, names: list[str], expected) -> None:  # noqa: ANN001
    assert classes.parse_pairs(text, names) == expected


@pytest.mark.parametrize(
    ("text", "names", "message"),
    [
        ("a-b-c", ["a", "b", "c", "a-b", "b-c"], "more than one way"),
        ("left-eye-nose", ["left-eye", "right-eye"], "is not two of the keypoints"),
        ("ab", ["a", "b"], "a pair looks like"),
        ("a-z", ["a", "b"], "'z' is not one of the keypoints"),
    ],
)
def test_parse_pairs_refuses_what_it_cannot_split(text: str, names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classes.parse_pairs(text, names)


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
    """``workbench classes add P " pad "`` stores 'pad', as a rename to ' pad ' does: one class, not two that look alike."""
    cat = classes.add_category(ws, project, Category(name=typed))
    assert cat.name == "pad"
    assert [c.name for c in classes.list_categories(ws, project)] == ["pad"]
    with pytest.raises(ValidationError, match="'pad' already exists"):
        classes.add_category(ws, project, Category(name=" pad"))
    renamed = classes.update_category(ws, project, cat.id, name=" pad2 ")
    assert renamed.name == "pad2"
