from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from workbench.domain import Rle, ValidationError
from workbench.geometry import (
    coco_rle_to_rle,
    mask_to_bbox_xywh,
    mask_to_rle,
    merge_rles,
    polygons_to_rle,
    rle_area,
    rle_bbox_xywh,
    rle_iou,
    rle_to_mask,
)

small_masks = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda hw: arrays(np.uint8, hw, elements=st.integers(0, 1))
)


@settings(max_examples=200, deadline=None)
@given(mask=small_masks)
def test_mask_rle_round_trip_is_exact_and_area_bbox_agree(mask):
    rle = mask_to_rle(mask)
    assert rle.size_hw == mask.shape
    assert isinstance(rle.counts, str)
    back = rle_to_mask(rle)
    assert back.dtype == np.uint8 and back.shape == mask.shape
    np.testing.assert_array_equal(back, mask)
    assert rle_area(rle) == float(mask.sum())
    assert rle_bbox_xywh(rle) == mask_to_bbox_xywh(mask)


@settings(max_examples=100, deadline=None)
@given(mask=small_masks)
def test_uncompressed_counts_read_like_pycocotools(mask):
    flat = mask.flatten(order="F")
    counts, value, run = [], 0, 0
    for px in flat:
        if px != value:
            counts.append(run)
            value, run = px, 0
        run += 1
    counts.append(run)
    h, w = mask.shape
    rle = coco_rle_to_rle({"size": [h, w], "counts": counts})
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    # and the compressed form it produced reads back identically, as str and as bytes
    assert coco_rle_to_rle(rle.to_coco()) == rle
    assert coco_rle_to_rle({"size": [h, w], "counts": rle.counts.encode()}) == rle


def test_mask_to_rle_accepts_any_nonzero_dtype():
    mask = np.array([[0, 3], [True, 0]], dtype=np.int64)
    np.testing.assert_array_equal(rle_to_mask(mask_to_rle(mask)), [[0, 1], [1, 0]])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"size": [2, 2], "counts": [1, 2]}, "add up to 3"),
        ({"size": [2, 2], "counts": [1, -1, 4]}, "must not be negative"),
        ({"size": [2, 2], "counts": [1.5, 2.5]}, "list of integers"),
        ({"size": [2, 2], "counts": "1"}, "cover 1 pixels but size 2x2 has 4"),
        ({"size": [2, 2], "counts": "1 "}, "outside COCO's alphabet"),
        ({"size": [2, 2], "counts": "1o"}, "truncated"),
        ({"size": [2], "counts": "04"}, "size must be [height, width]"),
        ({"size": [0, 2], "counts": ""}, "size must be [height, width]"),
        ({"size": [2.0, 2], "counts": "04"}, "size must be [height, width]"),
        ({"counts": "04"}, "'size' [h, w] and 'counts'"),
        ({"size": [2, 2], "counts": 4}, "string or a list of integers"),
        ([1, 2], "'size' [h, w] and 'counts'"),
    ],
)
def test_bad_coco_rle_is_refused(obj, message):
    with pytest.raises(ValidationError) as err:
        coco_rle_to_rle(obj, where="x.json: annotation 3")
    assert str(err.value).startswith("x.json: annotation 3: ")
    assert message in str(err.value)


def test_polygons_to_rle_is_the_union_of_parts_like_pycocotools():
    parts = [(0.0, 0.0, 6.0, 0.0, 6.0, 6.0, 0.0, 6.0), (4.0, 4.0, 9.0, 4.0, 9.0, 9.0)]
    rle = polygons_to_rle(parts, (10, 12))
    assert rle.size_hw == (12, 10)
    ref = mask_utils.merge(mask_utils.frPyObjects([list(p) for p in parts], 12, 10))
    assert rle.counts == ref["counts"].decode()
    assert rle_area(rle) == float(mask_utils.area(ref))


def test_polygons_to_rle_without_parts_is_an_empty_mask():
    rle = polygons_to_rle([], (5, 3))
    assert rle.size_hw == (3, 5)
    assert rle_area(rle) == 0.0
    assert rle_bbox_xywh(rle) == (0.0, 0.0, 0.0, 0.0)


def test_six_number_polygon_is_a_polygon_not_a_box():
    # frPyObjects reads a 4-number list as a box; 6 numbers is a triangle.
    rle = polygons_to_rle([(0.0, 0.0, 8.0, 0.0, 0.0, 8.0)], (8, 8))
    assert 20 <= rle_area(rle) <= 44


def test_merge_and_iou():
    a = np.zeros((6, 6), np.uint8)
    a[:3, :3] = 1
    b = np.zeros((6, 6), np.uint8)
    b[1:4, 1:4] = 1
    ra, rb = mask_to_rle(a), mask_to_rle(b)
    merged = merge_rles([ra, rb])
    np.testing.assert_array_equal(rle_to_mask(merged), a | b)
    assert merge_rles([ra]) == ra
    iou = rle_iou([ra], [rb, ra], [False, False])
    assert iou.shape == (1, 2)
    assert iou[0, 0] == pytest.approx(4 / 14)
    assert iou[0, 1] == pytest.approx(1.0)
    crowd = rle_iou([ra], [rb], [True])  # crowd: intersection over the detection's area
    assert crowd[0, 0] == pytest.approx(4 / 9)
    assert rle_iou([], [rb], [False]).shape == (0, 1)
    assert rle_iou([ra], [], []).shape == (1, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: merge_rles([]),
        lambda: merge_rles([mask_to_rle(np.zeros((2, 2))), mask_to_rle(np.zeros((3, 2)))]),
        lambda: rle_iou([mask_to_rle(np.zeros((2, 2)))], [mask_to_rle(np.zeros((2, 3)))], [False]),
        lambda: rle_iou([mask_to_rle(np.zeros((2, 2)))], [mask_to_rle(np.zeros((2, 2)))], []),
        lambda: mask_to_rle(np.zeros((2, 2, 3))),
        lambda: polygons_to_rle([(0.0, 0.0, 1.0, 1.0)], (4, 4)),
    ],
)
def test_misuse_raises_validation_error(call):
    with pytest.raises(ValidationError):
        call()


def test_rle_record_to_coco_matches_size_order():
    rle = mask_to_rle(np.ones((2, 5), np.uint8))
    assert rle == Rle(size_hw=(2, 5), counts=rle.counts)
    assert rle.to_coco()["size"] == [2, 5]
