"""The annotator's Python side carries attribute definitions out and attribute values both ways."""

from __future__ import annotations

import pytest

from workbench.domain import AttributeDef, Category, Instance, ValidationError
from workbench.ui.components.annotator import (
    category_to_payload,
    instance_to_payload,
    payload_to_indexed_instances,
)

TRI = (1.0, 1.0, 9.0, 1.0, 5.0, 6.0)


def test_definitions_and_values_go_to_the_browser() -> None:
    cat = Category(name="car", attributes=(AttributeDef("colour", "select", ("red", "green")),))
    assert category_to_payload(cat)["attributes"] == [
        {"name": "occluded", "kind": "checkbox", "options": []},
        {"name": "truncated", "kind": "checkbox", "options": []},
        {"name": "colour", "kind": "select", "options": ["red", "green"]},
    ]
    inst = Instance("car", polygons=(TRI,), attributes={"colour": "red", "cvat_track": 3})
    assert instance_to_payload(inst)["attributes"] == {"colour": "red", "cvat_track": 3}


def test_values_from_the_browser_replace_the_stored_ones_unknown_keys_included() -> None:
    old = Instance("car", polygons=(TRI,), id=4, attributes={"colour": "red", "cvat_track": 3})
    item = {"id": 4, "category": "car", "polygons": [list(TRI)], "attributes": {"colour": "green",
            "cvat_track": 3, "note": None}}  # fmt: skip
    [(_, inst)] = payload_to_indexed_instances([item], [old])
    assert inst.attributes == {"colour": "green", "cvat_track": 3}  # None unsets
    # an item without the key (an older browser tab) keeps what was stored
    [(_, kept)] = payload_to_indexed_instances([{k: v for k, v in item.items() if k != "attributes"}], [old])
    assert kept.attributes == old.attributes
    with pytest.raises(ValidationError, match="not an object"):
        payload_to_indexed_instances([{**item, "attributes": ["occluded"]}], [old])
