"""The annotator's Python side carries the drawing order (z_order) both ways."""

from __future__ import annotations

import pytest

from workbench.domain import Instance, ValidationError
from workbench.ui.components.annotator import instance_to_payload, payload_to_indexed_instances

TRI = (1.0, 1.0, 9.0, 1.0, 5.0, 6.0)


def test_z_order_goes_out_and_comes_back() -> None:
    old = Instance("car", polygons=(TRI,), id=4, z_order=2)
    item = instance_to_payload(old)
    assert item["z_order"] == 2
    [(_, same)] = payload_to_indexed_instances([item], [old])
    assert same.z_order == 2
    [(_, moved)] = payload_to_indexed_instances([{**item, "z_order": -3}], [old])
    assert moved.z_order == -3
    [(_, new)] = payload_to_indexed_instances([{**item, "id": None, "z_order": 5.0}], [])
    assert new.z_order == 5 and isinstance(new.z_order, int)


def test_an_item_without_z_order_keeps_the_stored_one_and_a_bad_one_is_refused() -> None:
    old = Instance("car", polygons=(TRI,), id=4, z_order=7)
    item = {"id": 4, "category": "car", "polygons": [list(TRI)]}  # an older tab sends no z_order
    [(_, kept)] = payload_to_indexed_instances([item], [old])
    assert kept.z_order == 7
    for bad in (1.5, "2", True):
        with pytest.raises(ValidationError, match="z_order"):
            payload_to_indexed_instances([{**item, "z_order": bad}], [old])
