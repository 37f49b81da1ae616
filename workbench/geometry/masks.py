"""Masks: polygons <-> H x W arrays, boxes, and an instance's shape as a mask with COCO semantics."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from workbench.domain import Instance, Polygon, Rle, ValidationError
from workbench.geometry.polygons import polygon_area, polygons_bbox_xywh
from workbench.geometry.rle import (
    polygons_to_rle,
    rle_area,
    rle_bbox_xywh,
    rle_to_mask,
)

__all__ = [
    "covers_no_pixel",
    "instance_bbox_area",
    "instance_to_mask",
    "instance_to_rle",
    "mask_to_bbox_xywh",
    "mask_to_polygons",
    "polygons_to_mask",
    "may_cover_no_pixel_points",
    "polygons_may_cover_no_pixel",
    "with_bbox_area",
]

_MAX_TRACE_PIXELS = 4_000_000
"""Budget for the upsampled crop that ``mask_to_polygons`` traces (bounds memory on big masks)."""


def polygons_to_mask(polys: Sequence[Sequence[float]], size_wh: tuple[int, int]) -> np.ndarray:
    """H x W uint8 0/1 mask of the union of the parts, equal to pycocotools' ``annToMask``."""
    return rle_to_mask(polygons_to_rle(polys, size_wh))


def mask_to_bbox_xywh(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight box of the nonzero pixels in COCO coordinates (equals ``toBbox``); zeros when empty."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValidationError(f"a mask must be a 2-D H x W array, got shape {arr.shape}")
    rows = np.flatnonzero(arr.any(axis=1))
    if rows.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    cols = np.flatnonzero(arr.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1))


def mask_to_polygons(
    mask: np.ndarray, *, tolerance: float = 0.5, min_area: float = 1.0
) -> tuple[Polygon, ...]:
    """Outer contours of a mask as editable polygons (holes are dropped: polygons cannot carry them).

    OpenCV traces pixel centres, which would shrink every shape by half a pixel on each side (a 4 x 4
    square would come back 3 x 3). So the tight crop is upsampled by k first and the centres mapped
    back, which leaves the contour within 0.5 / k of the pixel edges; Douglas-Peucker with
    ``tolerance`` (in image pixels) then drops vertices. Parts whose area (in pixels, estimated from
    the outline) is below ``min_area`` are left out.
    """
    import cv2  # lazily: OpenCV is heavy and only this function needs it

    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValidationError(f"a mask must be a 2-D H x W array, got shape {arr.shape}")
    rows = np.flatnonzero(arr.any(axis=1))
    if rows.size == 0:
        return ()
    cols = np.flatnonzero(arr.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = (arr[y0:y1, x0:x1] != 0).astype(np.uint8)
    k = int(max(1, min(8, math.isqrt(_MAX_TRACE_PIXELS // max(crop.size, 1)))))
    big = np.pad(crop.repeat(k, axis=0).repeat(k, axis=1), 1)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polys: list[Polygon] = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, tolerance * k, True)
        pts = contour.reshape(-1, 2).astype(np.float64)
        if len(pts) < 3:
            continue
        # Undo the 1-pixel pad, then map upsampled pixel centres back to image coordinates.
        pts = (pts - 1 + 0.5) / k
        pts[:, 0] += x0
        pts[:, 1] += y0
        flat = tuple(float(round(v, 4)) for v in pts.ravel())
        # The traced outline sits d = 0.5 / k inside the pixel edges; adding that strip back makes the
        # estimate exact for axis-aligned rectangles, so a single pixel counts as area 1.
        d = 0.5 / k
        perimeter = float(np.linalg.norm(np.diff(pts, axis=0, append=pts[:1]), axis=1).sum())
        shoelace = polygon_area(flat)
        if shoelace <= 1e-9 or shoelace + d * perimeter + 4 * d * d < min_area - 1e-6:
            continue
        polys.append(flat)
    return tuple(polys)


def instance_to_rle(inst: Instance, size_wh: tuple[int, int]) -> Rle | None:
    """The instance's mask as an RLE of the image size; None when it has no shape (keypoints or box only)."""
    if inst.rle is not None:
        w, h = int(size_wh[0]), int(size_wh[1])
        if tuple(inst.rle.size_hw) != (h, w):
            raise ValidationError(
                f"instance of {inst.category!r}: RLE size {list(inst.rle.size_hw)} (h, w) does not match "
                f"the image {w}x{h} (w x h)"
            )
        return inst.rle
    if inst.polygons:
        return polygons_to_rle(inst.polygons, size_wh)
    return None


def instance_to_mask(inst: Instance, size_wh: tuple[int, int]) -> np.ndarray:
    """H x W uint8 0/1 mask of the instance; all zeros when it has no shape."""
    rle = instance_to_rle(inst, size_wh)
    if rle is None:
        return np.zeros((int(size_wh[1]), int(size_wh[0])), dtype=np.uint8)
    return rle_to_mask(rle)


def instance_bbox_area(
    inst: Instance, size_wh: tuple[int, int]
) -> tuple[tuple[float, float, float, float], float]:
    """COCO's ``bbox`` and ``area`` for an instance.

    area is the mask's pixel count (not the box area); bbox is the tight box of the polygon points for
    polygons (what COCO files carry), ``toBbox`` for RLE. Without a shape: the instance's own box (its
    ``area`` if set, else the box area), else the box of its visible keypoints, else zeros.
    """
    rle = instance_to_rle(inst, size_wh)
    if rle is not None:
        area = rle_area(rle)
        bbox = polygons_bbox_xywh(inst.polygons) if inst.polygons else rle_bbox_xywh(rle)
        return bbox, area
    if inst.bbox_xywh is not None:
        bbox = tuple(float(v) for v in inst.bbox_xywh)
        area = float(inst.area) if inst.area is not None else bbox[2] * bbox[3]
        return (bbox[0], bbox[1], bbox[2], bbox[3]), area
    if inst.keypoints:
        kp = np.asarray(inst.keypoints, dtype=np.float64).reshape(-1, 3)
        vis = kp[kp[:, 2] > 0, :2]
        if len(vis):
            x0, y0 = vis.min(axis=0)
            x1, y1 = vis.max(axis=0)
            bbox = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            return bbox, bbox[2] * bbox[3]
    return (0.0, 0.0, 0.0, 0.0), 0.0


def with_bbox_area(inst: Instance, size_wh: tuple[int, int], *, from_shape: bool = False) -> Instance:
    """``inst`` with COCO's ``bbox`` and ``area`` filled in: the one place an instance gets them.

    Values the instance carries are kept (a COCO file's box, a box-only instance's area) and only
    the missing ones are computed, as :func:`instance_bbox_area` defines them. With ``from_shape``
    both are recomputed, for shapes just drawn, clipped or traced whose old box would be stale,
    except on a box-only instance, whose box is its shape. They live here and not in ``Instance``
    itself because the area is the rasterised pixel count (pycocotools), which the domain does not
    import.
    """
    if from_shape and (inst.has_shape or inst.bbox_xywh is None):
        bbox, area = instance_bbox_area(inst, size_wh)
        return replace(inst, bbox_xywh=bbox, area=area)
    if inst.bbox_xywh is not None and inst.area is not None:
        return inst
    bbox, area = instance_bbox_area(inst, size_wh)
    return replace(
        inst,
        bbox_xywh=inst.bbox_xywh if inst.bbox_xywh is not None else bbox,
        area=inst.area if inst.area is not None else area,
    )


def covers_no_pixel(inst: Instance, size_wh: tuple[int, int]) -> bool:
    """True when the instance has a shape (polygons or RLE) whose mask is empty.

    A valid polygon inside one pixel, or a thin sliver between pixel centres, rasterises (as
    pycocotools and so COCOeval and training do) to no pixel: stored, it would be an invisible
    instance with area 0. Instances without a shape (box or keypoints only) are not concerned.
    """
    rle = instance_to_rle(inst, size_wh)
    return rle is not None and rle_area(rle) == 0


def polygons_may_cover_no_pixel(polys: Sequence[Sequence[float]]) -> np.ndarray:
    """Bulk pre-filter for ``covers_no_pixel``: a bool per polygon, False where it surely covers a pixel.

    A polygon whose shoelace area is at least its perimeter is about 2 pixels thick or more (a disc of
    radius r has area/perimeter r/2), so it holds a pixel centre; only the rest (small or thin) need
    rasterising. One numpy pass over all points: cheap next to rasterising every polygon of a file.
    """
    n = len(polys)
    if n == 0:
        return np.zeros(0, dtype=bool)
    lens = np.fromiter(map(len, polys), dtype=np.int64, count=n)
    flat = np.fromiter(itertools.chain.from_iterable(polys), dtype=np.float64, count=int(lens.sum()))
    x, y = flat[0::2], flat[1::2]
    ends = np.cumsum(lens // 2)
    starts = ends - lens // 2
    xn = np.empty_like(x)
    yn = np.empty_like(y)
    xn[:-1], yn[:-1] = x[1:], y[1:]
    xn[ends - 1], yn[ends - 1] = x[starts], y[starts]  # each polygon closes on its first point
    return may_cover_no_pixel_points(x, y, xn, yn, starts)


def may_cover_no_pixel_points(
    x: np.ndarray, y: np.ndarray, xn: np.ndarray, yn: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """:func:`polygons_may_cover_no_pixel` on points already laid out: every polygon's points in
    ``x, y``, each point's successor (the first after the last) in ``xn, yn``, polygon k starting at
    ``starts[k]``; for a caller that has these arrays for its own checks (the COCO reader's bulk pass)."""
    area = np.abs(np.add.reduceat(x * yn - y * xn, starts)) / 2.0
    dx, dy = xn - x, yn - y
    perimeter = np.add.reduceat(np.sqrt(dx * dx + dy * dy), starts)
    return (area < perimeter) | (area == 0)
