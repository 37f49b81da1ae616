from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO

from workbench.domain import Instance, ValidationError
from workbench.geometry import (
    covers_no_pixel,
    instance_bbox_area,
    instance_to_mask,
    instance_to_rle,
    mask_to_bbox_xywh,
    mask_to_polygons,
    mask_to_rle,
    polygons_may_cover_no_pixel,
    polygons_to_mask,
    polygons_to_rle,
    rle_area,
)

# pycocotools' annToMask (the reference here) trips NumPy 2's copy-keyword deprecation; harmless.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def coco_from_dict(data: dict) -> COCO:
    """pycocotools COCO over an in-memory dict (no file): what COCOeval and annToMask use."""
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco


coordinate = st.floats(min_value=-3, max_value=23, allow_nan=False).map(lambda v: round(v, 2))
polygon = st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=8).map(
    lambda pts: tuple(c for p in pts for c in p)
)


@settings(max_examples=120, deadline=None)
@given(parts=st.lists(polygon, min_size=1, max_size=3))
def test_polygons_to_mask_equals_pycocotools_ann_to_mask(parts):
    w, h = 20, 16
    coco = coco_from_dict(
        {
            "images": [{"id": 1, "width": w, "height": h, "file_name": "a.png"}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [
                {
                    "id": 1,
                    "image_id": 1,
                    "category_id": 1,
                    "segmentation": [list(p) for p in parts],
                    "area": 1.0,
                    "bbox": [0, 0, 1, 1],
                    "iscrowd": 0,
                }
            ],
        }
    )
    ours = polygons_to_mask(parts, (w, h))
    np.testing.assert_array_equal(ours, coco.annToMask(coco.anns[1]))
    assert ours.dtype == np.uint8 and ours.shape == (h, w)
    assert rle_area(polygons_to_rle(parts, (w, h))) == float(ours.sum())


def _blob_mask(seed: int, h: int = 24, w: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(1, 4)):
        cx, cy = rng.uniform(3, w - 3), rng.uniform(3, h - 3)
        rx, ry = rng.uniform(1.5, 7), rng.uniform(1.5, 7)
        mask |= (((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1).astype(np.uint8)
    return mask


@pytest.mark.parametrize("seed", range(12))
def test_mask_to_polygons_round_trips_closely(seed):
    mask = _blob_mask(seed)
    polys = mask_to_polygons(mask)
    assert polys
    back = polygons_to_mask(polys, (mask.shape[1], mask.shape[0]))
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou >= 0.95


def test_mask_to_polygons_recovers_a_square_exactly_and_simplifies():
    mask = np.zeros((10, 12), np.uint8)
    mask[2:6, 3:7] = 1
    (poly,) = mask_to_polygons(mask)
    assert len(poly) == 8  # four corners after simplification
    pts = np.asarray(poly).reshape(-1, 2)
    np.testing.assert_allclose(pts.min(axis=0), [3, 2], atol=0.1)
    np.testing.assert_allclose(pts.max(axis=0), [7, 6], atol=0.1)
    np.testing.assert_array_equal(polygons_to_mask([poly], (12, 10)), mask)


def test_mask_to_polygons_parts_min_area_and_empty():
    mask = np.zeros((10, 10), np.uint8)
    mask[1:4, 1:4] = 1
    mask[7, 7] = 1
    assert len(mask_to_polygons(mask)) == 2
    assert len(mask_to_polygons(mask, min_area=2.0)) == 1
    assert mask_to_polygons(np.zeros((5, 5), np.uint8)) == ()


def test_mask_to_bbox_xywh():
    mask = np.zeros((8, 9), np.uint8)
    mask[2:5, 3:8] = 1
    assert mask_to_bbox_xywh(mask) == (3.0, 2.0, 5.0, 3.0)
    assert mask_to_bbox_xywh(np.zeros((3, 3))) == (0.0, 0.0, 0.0, 0.0)


def test_instance_shapes_and_coco_bbox_area():
    size_wh = (10, 8)
    poly = (1.2, 1.0, 6.7, 1.0, 6.7, 5.5, 1.2, 5.5)
    inst = Instance("a", polygons=(poly,))
    bbox, area = instance_bbox_area(inst, size_wh)
    assert bbox == pytest.approx((1.2, 1.0, 5.5, 4.5))  # tight box of the points, floats
    assert area == float(polygons_to_mask([poly], size_wh).sum())  # mask area, not box area

    mask = np.zeros((8, 10), np.uint8)
    mask[2:5, 1:4] = 1
    mask[3, 2] = 0  # a hole: only RLE can carry it
    rle_inst = Instance("a", rle=mask_to_rle(mask))
    assert instance_bbox_area(rle_inst, size_wh) == ((1.0, 2.0, 3.0, 3.0), 8.0)
    np.testing.assert_array_equal(instance_to_mask(rle_inst, size_wh), mask)

    box_only = Instance("a", bbox_xywh=(1.0, 1.0, 2.0, 3.0))
    assert instance_to_rle(box_only, size_wh) is None
    assert instance_to_mask(box_only, size_wh).sum() == 0
    assert instance_to_mask(box_only, size_wh).shape == (8, 10)
    assert instance_bbox_area(box_only, size_wh) == ((1.0, 1.0, 2.0, 3.0), 6.0)

    kps = Instance("a", keypoints=(2.0, 3.0, 2, 0.0, 0.0, 0, 5.0, 7.0, 1))
    assert instance_bbox_area(kps, size_wh) == ((2.0, 3.0, 3.0, 4.0), 12.0)
    assert instance_bbox_area(Instance("a"), size_wh) == ((0.0, 0.0, 0.0, 0.0), 0.0)


def test_rle_of_another_size_is_refused():
    inst = Instance("a", rle=mask_to_rle(np.zeros((8, 10), np.uint8)))
    with pytest.raises(ValidationError, match="does not match"):
        instance_to_rle(inst, (8, 10))


SUB_PIXEL = (10.1, 10.1, 10.6, 10.2, 10.3, 10.7)  # a valid triangle inside pixel (10, 10)
SLIVER = (0.6, 0.6, 19.6, 19.4, 19.6, 19.6)  # 20 px long, thinner than the gap between pixel centres


@pytest.mark.parametrize(
    ("inst", "empty"),
    [
        (Instance("a", polygons=(SUB_PIXEL,)), True),
        (Instance("a", polygons=(SLIVER,)), True),
        (Instance("a", polygons=(SUB_PIXEL, (1.0, 1.0, 5.0, 1.0, 5.0, 5.0))), False),
        (Instance("a", rle=mask_to_rle(np.zeros((24, 32), dtype=np.uint8))), True),
        (Instance("a", polygons=((10.1, 10.1, 10.9, 10.1, 10.5, 10.9),)), False),  # holds a centre
        (Instance("a", bbox_xywh=(1.0, 1.0, 0.2, 0.2)), False),  # no shape: not concerned
        (Instance("a", keypoints=(3.0, 3.0, 2)), False),
    ],
)
def test_covers_no_pixel(inst: Instance, empty: bool) -> None:
    assert covers_no_pixel(inst, (32, 24)) is empty
    if inst.has_shape:
        assert (instance_bbox_area(inst, (32, 24))[1] == 0) is empty


def test_prefilter_flags_small_and_thin_polygons_only() -> None:
    big = (1.0, 1.0, 20.0, 1.0, 20.0, 20.0, 1.0, 20.0)
    flags = polygons_may_cover_no_pixel([SUB_PIXEL, big, SLIVER, (0.0, 0.0, 3.0, 0.0, 0.0, 3.0)])
    assert flags.tolist() == [True, False, True, True]
    assert polygons_may_cover_no_pixel([]).tolist() == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 12, allow_nan=False), st.floats(0, 12, allow_nan=False)), min_size=3, max_size=7
    )
)
def test_prefilter_never_passes_a_polygon_that_covers_no_pixel(points: list[tuple[float, float]]) -> None:
    """False from the pre-filter must mean 'covers a pixel': importers rasterise only what it flags."""
    poly = tuple(c for p in points for c in p)
    (may_be_empty,) = polygons_may_cover_no_pixel([poly])
    if not may_be_empty:
        assert not covers_no_pixel(Instance("a", polygons=(poly,)), (16, 16))
