"""Mask -> editable shape: polygons for solid masks (tolerance and vertex budget), RLE for holes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from workbench.assist.shapes import has_holes, mask_iou, mask_to_shape, shape_to_mask
from workbench.domain import ValidationError
from workbench.geometry import rle_to_mask


def _disc(h: int = 120, w: int = 160, r: int = 40) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (80, 60), r, 1, -1)
    return m


def test_solid_mask_becomes_polygons_with_coco_area() -> None:
    m = _disc()
    shape = mask_to_shape(m, tolerance=0.5)
    assert shape.rle is None and len(shape.polygons) == 1
    assert mask_iou(shape_to_mask(shape), m) >= 0.97
    coco = shape.to_coco()
    assert coco["area"] == pytest.approx(shape_to_mask(shape).sum())
    x, y, w, h = coco["bbox"]
    assert x == pytest.approx(40, abs=1) and w == pytest.approx(81, abs=1.5)


def test_tolerance_and_vertex_budget_trade_vertices() -> None:
    m = _disc()
    fine = mask_to_shape(m, tolerance=0.25, max_vertices=10_000)
    coarse = mask_to_shape(m, tolerance=3.0, max_vertices=10_000)
    budget = mask_to_shape(m, tolerance=0.25, max_vertices=12)
    n = [len(s.polygons[0]) // 2 for s in (fine, coarse, budget)]
    assert n[0] > n[1] and n[2] <= 12
    assert mask_iou(shape_to_mask(budget), m) >= 0.85
    with pytest.raises(ValidationError, match="tolerance"):
        mask_to_shape(m, tolerance=-1)
    with pytest.raises(ValidationError, match="vertex budget"):
        mask_to_shape(m, max_vertices=2)


def test_a_hole_is_kept_as_rle() -> None:
    m = _disc()
    cv2.circle(m, (80, 60), 15, 0, -1)
    assert has_holes(m) and not has_holes(_disc())
    shape = mask_to_shape(m)
    assert shape.rle is not None and not shape.polygons
    assert np.array_equal(rle_to_mask(shape.rle), m)
    coco = shape.to_coco()
    assert coco["segmentation"]["size"] == [120, 160] and coco["area"] == float(m.sum())


def test_a_mask_touching_the_border_is_not_a_hole() -> None:
    m = np.zeros((50, 50), np.uint8)
    m[:, :20] = 1  # touches three borders
    assert not has_holes(m)
    assert mask_to_shape(m).polygons


def test_empty_mask_is_an_empty_shape() -> None:
    shape = mask_to_shape(np.zeros((10, 12), np.uint8))
    assert shape.empty and shape.to_coco()["segmentation"] == [] and shape.size_wh == (12, 10)
