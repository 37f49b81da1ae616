"""Annotation ids never come back after a delete; z_order and attribute values through store and COCO;
class attribute definitions through the classes service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.factories import add_images
from workbench.domain import AttributeDef, Category, Instance, ValidationError
from workbench.services import annotate, classes, export, imports, projects
from workbench.services.workspace import Workspace

SQUARE = (2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0)
COLOUR = AttributeDef("colour", "select", ("red", "green"))


def _save(ws: Workspace, slug: str, image_id: int, instances: list[Instance]) -> list[int]:
    version = annotate.load_image(ws, slug, image_id).version
    return annotate.save_image(ws, slug, image_id, instances, expected_version=version).ids


def test_the_newest_annotation_id_is_not_reused_after_a_delete(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project, 1)[0]
    box = Instance("box", polygons=(SQUARE,))
    first, newest = _save(ws, project, im.id, [box, box])
    (kept,) = _save(ws, project, im.id, [Instance("box", polygons=(SQUARE,), id=first)])
    assert kept == first
    new_ids = _save(ws, project, im.id, [Instance("box", polygons=(SQUARE,), id=first), box])
    assert new_ids[0] == first and new_ids[1] not in (first, newest)
    assert new_ids[1] > newest


def test_z_order_and_attributes_survive_store_and_coco(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    classes.add_category(
        ws, project, Category(name="car", attributes=(COLOUR, AttributeDef("plate", "text")))
    )
    im = add_images(ws, project, 1)[0]
    attrs = {"occluded": True, "truncated": False, "colour": "green", "plate": "AB 12", "from_cvat": [1, 2]}
    top = Instance("car", polygons=(SQUARE,), z_order=3, attributes=attrs)
    _save(ws, project, im.id, [top, Instance("car", polygons=(SQUARE,))])
    loaded = annotate.load_image(ws, project, im.id).instances
    assert [(i.z_order, i.attributes) for i in loaded] == [(3, attrs), (0, {})]

    (path,) = export.export_coco(ws, project, tmp_path / "out", copy_images=True)
    anns = json.loads(path.read_text())["annotations"]
    assert [a.get("z_order") for a in anns] == [3, None]  # written only where it is not 0
    assert anns[0]["attributes"] == attrs and "attributes" not in anns[1]

    slug2 = projects.create_project(ws, "Copy").slug
    imports.import_coco(ws, slug2, path)
    (im2,) = annotate.list_images(ws, slug2)
    again = annotate.load_image(ws, slug2, im2.id).instances
    assert [(i.z_order, i.attributes) for i in again] == [(3, attrs), (0, {})]


def test_attribute_values_are_checked_against_the_definitions(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="car", attributes=(COLOUR, AttributeDef("n", "number"))))
    im = add_images(ws, project, 1)[0]
    for bad, says in [
        ({"colour": "blue"}, r"'colour' must be one of \['red', 'green'\]"),
        ({"occluded": "yes"}, "'occluded' must be a checkbox value"),
        ({"n": "7"}, "'n' must be a number value"),
    ]:
        with pytest.raises(ValidationError, match=says):
            _save(ws, project, im.id, [Instance("car", polygons=(SQUARE,), attributes=bad)])
    (aid,) = _save(ws, project, im.id, [Instance("car", polygons=(SQUARE,), attributes={"n": 2.5, "x": "?"})])
    # a definition edited since: the stored value that no longer fits is kept while it is unchanged
    cat = classes.list_categories(ws, project)[0]
    classes.update_category(ws, project, cat.id, attributes=(AttributeDef("n", "text"),))
    kept = annotate.load_image(ws, project, im.id).instances[0]
    assert kept.attributes == {"n": 2.5, "x": "?"}
    _save(ws, project, im.id, [kept])
    with pytest.raises(ValidationError, match="'n' must be a text value"):
        _save(ws, project, im.id, [Instance("car", polygons=(SQUARE,), id=aid, attributes={"n": 3})])


def test_class_attribute_definitions_are_stored_and_edited(ws, project) -> None:  # noqa: ANN001
    defs = classes.parse_attributes("colour: select(red, green)\nparked\nnote: text\ncount: number")
    cat = classes.add_category(ws, project, Category(name="car", attributes=defs))
    assert classes.list_categories(ws, project)[0].attributes == defs == cat.attributes
    assert classes.parse_attributes(classes.attributes_text(defs)) == defs
    assert [a.name for a in cat.all_attributes] == [
        "occluded",
        "truncated",
        "colour",
        "parked",
        "note",
        "count",
    ]
    classes.update_category(ws, project, cat.id, attributes=())
    assert classes.list_categories(ws, project)[0].attributes == ()
    for text, says in [
        ("x: colour", "kind one of checkbox, select, text, number"),
        ("x: select", "select needs them"),
        ("occluded", "every class has it already"),
        ("a\na: text", "a line above has it"),
    ]:
        with pytest.raises(ValueError, match=says):
            classes.parse_attributes(text)
    with pytest.raises(ValidationError, match="two attributes are named"):
        classes.add_category(ws, project, Category(name="bus", attributes=(COLOUR, COLOUR)))
