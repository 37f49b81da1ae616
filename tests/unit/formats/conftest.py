"""Shared pieces of the format tests: where the golden fixtures of other tools live, small factories."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from workbench.domain import (
    IGNORE_LABEL,
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
)
from workbench.geometry import mask_to_rle

_BASE_COCO: dict[str, Any] = {
    "images": [{"id": 1, "file_name": "img.png", "width": 20, "height": 10}],
    "categories": [
        {"id": 1, "name": "shape", "supercategory": "thing"},
        {"id": 2, "name": "person", "supercategory": "", "keypoints": ["l", "r"], "skeleton": [[1, 2]]},
    ],
    "annotations": [
        {
            "id": 7,
            "image_id": 1,
            "category_id": 1,
            "segmentation": [[1, 1, 8, 1, 8, 6, 1, 6]],
            "area": 35.0,
            "bbox": [1.0, 1.0, 7.0, 5.0],
            "iscrowd": 0,
        },
        {
            "id": 8,
            "image_id": 1,
            "category_id": 2,
            "segmentation": [[10, 2, 15, 2, 15, 8]],
            "bbox": [10.0, 2.0, 5.0, 6.0],
            "iscrowd": 0,
            "keypoints": [11, 3, 2, 0, 0, 0],
            "num_keypoints": 1,
        },
    ],
}


@pytest.fixture
def coco_dict() -> Callable[[], dict[str, Any]]:
    """A fresh small valid COCO dict: one 20x10 image, a polygon and a keypoint annotation."""
    return lambda: copy.deepcopy(_BASE_COCO)


def make_dataset() -> Dataset:
    """A dataset touching every export path: multi-part polygons, an RLE with a hole, keypoints,
    a box-only instance, an ignore region, and no ids anywhere (so exports number them)."""
    import numpy as np

    hole = np.zeros((12, 16), dtype=np.uint8)
    hole[2:10, 3:13] = 1
    hole[4:8, 6:10] = 0
    person = KeypointSchema(("head", "left", "right"), skeleton=((0, 1), (0, 2)), flip_pairs=((1, 2),))
    cats = [
        Category("shape", color="#ff0000", supercategory="thing"),
        Category("person", keypoints=person),
        Category(IGNORE_LABEL),
    ]
    img1 = AnnotatedImage(
        ImageRecord("a.png", 16, 12),
        (
            Instance("shape", polygons=((1, 1, 6, 1, 6, 5), (8, 8, 12, 8, 12, 11, 8, 11))),
            Instance("shape", rle=mask_to_rle(hole), attributes={"note": "hole"}),
            Instance("person", polygons=((2, 2, 9, 2, 9, 10, 2, 10),), keypoints=(3, 3, 2, 0, 0, 0, 8, 4, 1)),
            Instance(IGNORE_LABEL, polygons=((0, 0, 3, 0, 3, 3),)),
        ),
    )
    img2 = AnnotatedImage(
        ImageRecord("b.png", 10, 8),
        (
            Instance("shape", bbox_xywh=(1.0, 1.0, 3.0, 2.0)),
            Instance("person", polygons=((1, 1, 9, 1, 5, 7),), iscrowd=True),
        ),
    )
    img3 = AnnotatedImage(ImageRecord("empty.png", 8, 8))
    return Dataset(categories=cats, items=[img1, img2, img3])


@pytest.fixture
def dataset() -> Dataset:
    return make_dataset()
