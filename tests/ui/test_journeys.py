"""Problems found by following whole user journeys across pages (import -> annotate -> export -> train)."""

from __future__ import annotations

import pytest

from workbench.domain import Instance
from workbench.ui.components.annotator import instance_to_payload, payload_to_instances

SQUARE = (6.0, 1.0, 9.0, 1.0, 9.0, 4.0)


def _box_only(keypoints: tuple[float, ...] | None = None) -> Instance:
    """What a CVAT or datumaro COCO file's ``segmentation: []`` annotation becomes on import."""
    return Instance(
        category="b", bbox_xywh=(2.0, 2.0, 3.0, 1.0), area=3.0, keypoints=keypoints, source="imported", id=15
    )


@pytest.mark.parametrize("keypoints", [None, (0.0, 0.0, 0, 0.0, 2.0, 1, 4.0, 1.0, 2)])
def test_saving_an_image_keeps_its_imported_box_only_annotation(keypoints: tuple[float, ...] | None) -> None:
    # Drawing a polygon beside an imported box sent both back; the box (no polygon, no visible
    # keypoints) was dropped, so the save deleted it from the store.
    box = _box_only(keypoints)
    items = [instance_to_payload(box), {"id": None, "category": "a", "polygons": [list(SQUARE)]}]
    out = payload_to_instances(items, [box])
    assert len(out) == 2
    kept = out[0]
    assert kept.id == 15 and kept.bbox_xywh == (2.0, 2.0, 3.0, 1.0) and kept.area == 3.0
    assert kept.keypoints == keypoints


def test_a_box_only_annotation_keeps_its_box_when_its_keypoints_move_or_its_class_changes() -> None:
    box = _box_only((0.0, 0.0, 0, 0.0, 2.0, 1, 4.0, 1.0, 2))
    item = instance_to_payload(box) | {"category": "a", "keypoints": [1.0, 1.0, 2, 0.0, 2.0, 1, 4.0, 1.0, 2]}
    (kept,) = payload_to_instances([item], [box])
    assert kept.category == "a" and kept.bbox_xywh == (2.0, 2.0, 3.0, 1.0)
    assert kept.keypoints == (1.0, 1.0, 2, 0.0, 2.0, 1, 4.0, 1.0, 2)


def test_a_keypoint_only_instance_still_gets_the_box_of_its_moved_keypoints() -> None:
    # its stored box is the box of its keypoints (what the save computed): moving them recomputes it
    kp = (1.0, 1.0, 2, 5.0, 3.0, 2)
    inst = Instance(category="a", keypoints=kp, bbox_xywh=(1.0, 1.0, 4.0, 2.0), area=8.0, id=3)
    moved = [1.0, 1.0, 2, 7.0, 4.0, 2]
    (out,) = payload_to_instances([instance_to_payload(inst) | {"keypoints": moved}], [inst])
    assert out.bbox_xywh is None and out.area is None
    # with every keypoint removed it has nothing left to save
    gone = [0.0, 0.0, 0, 0.0, 0.0, 0]
    assert payload_to_instances([instance_to_payload(inst) | {"keypoints": gone}], [inst]) == []
