"""The annotator's Python side with painted masks: what goes to the browser and what comes back.

A mask goes out as its crop; a painted one comes back as a crop and becomes the instance's Rle, also
for a polygon the brush or eraser turned into a mask, and back (undo) to polygons.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.domain import Instance, ValidationError
from workbench.geometry import mask_to_rle, rle_to_mask
from workbench.services.mask_crops import rle_to_crop
from workbench.ui.components.annotator import instance_to_payload, payload_to_indexed_instances

H, W = 40, 60


def _ring() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[5:30, 10:40] = 1
    m[12:20, 20:30] = 0
    return m


def _item(inst_id: int | None, mask: np.ndarray | None, **kw: object) -> dict[str, object]:
    crop = rle_to_crop(mask_to_rle(mask)) if mask is not None else None
    return {"id": inst_id, "category": "a", "polygons": [], "keypoints": None, "rle": mask is not None,
            "mask": crop, "source": "manual", "score": None, **kw}  # fmt: skip


def test_a_stored_mask_goes_to_the_browser_as_its_crop() -> None:
    inst = Instance(category="a", rle=mask_to_rle(_ring()), id=3)
    payload = instance_to_payload(inst)
    assert payload["rle"] is True
    assert payload["mask"] == rle_to_crop(inst.rle)
    assert (payload["mask"]["x"], payload["mask"]["y"], payload["mask"]["w"], payload["mask"]["h"]) == (
        10,
        5,
        30,
        25,
    )
    assert instance_to_payload(Instance(category="a", polygons=((1, 1, 9, 1, 5, 6),)))["mask"] is None


def test_a_painted_mask_becomes_the_instance_rle() -> None:
    ring = _ring()
    [(n, new)] = payload_to_indexed_instances([_item(None, ring)], [])
    assert n == 0 and new.id is None and not new.polygons
    assert np.array_equal(rle_to_mask(new.rle), ring)
    # a polygon painted on (or erased into) keeps its id and becomes the mask
    old = Instance(
        category="a", polygons=((10, 5, 40, 5, 40, 30, 10, 30),), id=7, bbox_xywh=(10, 5, 30, 25), area=750
    )
    [(_, inst)] = payload_to_indexed_instances([_item(7, ring, category="b")], [old])
    assert inst.id == 7 and inst.category == "b" and not inst.polygons
    assert np.array_equal(rle_to_mask(inst.rle), ring)
    assert inst.bbox_xywh is None and inst.area is None  # filled again from the mask when saved


def test_undo_back_to_polygons_drops_the_stored_mask() -> None:
    stored = Instance(category="a", rle=mask_to_rle(_ring()), id=7)
    item = {**_item(7, None), "polygons": [[10, 5, 40, 5, 40, 30]]}
    [(_, inst)] = payload_to_indexed_instances([item], [stored])
    assert inst.rle is None and inst.polygons == ((10, 5, 40, 5, 40, 30),)


def test_an_unpainted_mask_is_taken_from_the_loaded_instance() -> None:
    stored = Instance(category="a", rle=mask_to_rle(_ring()), id=7)
    item = {**_item(7, None), "rle": True, "category": "b"}
    [(_, inst)] = payload_to_indexed_instances([item], [stored])
    assert inst.rle == stored.rle and inst.category == "b"


def test_a_fully_erased_mask_is_dropped_and_a_bad_one_refused() -> None:
    empty = {"size": [H, W], "x": 0, "y": 0, "w": 2, "h": 2, "counts": [4]}
    assert payload_to_indexed_instances([{**_item(None, None), "rle": True, "mask": empty}], []) == []
    bad = {"size": [H, W], "x": 59, "y": 0, "w": 2, "h": 1, "counts": [0, 2]}
    with pytest.raises(ValidationError, match=r"annotator mask \(id 4\): the crop 2x1 at \(59, 0\) leaves"):
        payload_to_indexed_instances([{**_item(4, None), "rle": True, "mask": bad}], [])
