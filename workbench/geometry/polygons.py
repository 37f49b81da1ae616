"""Flat COCO polygons: validation, area, bounding box and clipping to the image (numpy only).

A polygon is ``(x1, y1, x2, y2, ...)`` in COCO pixel coordinates: (0, 0) is the top-left corner of
the top-left pixel, so an image of size (w, h) spans ``[0, w] x [0, h]``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence

import numpy as np

from workbench.domain import Polygon, ValidationError

__all__ = ["clip_polygon", "polygon_area", "polygons_bbox_xywh", "validate_polygon"]


_SEQUENCES = (list, tuple)
_PLAIN = {int, float}


def _plain_numbers(values: Sequence[object]) -> bool:
    """int/float only (no bool, str, numpy scalar): one set look-up instead of a check per value."""
    return set(map(type, values)) <= _PLAIN


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def validate_polygon(coords: Sequence[float], *, where: str = "") -> Polygon:
    """Check one flat polygon and return it as a tuple of floats.

    Refused, with ``where`` (e.g. ``"file.json: annotation 7"``) leading the message: values that are not
    numbers, an odd count, fewer than 3 points (a 4-number list is what pycocotools' ``frPyObjects``
    reads as a box, so it is named), non-finite numbers, and polygons whose points are all on one line
    (zero area: they rasterise to nothing and break box and area maths downstream).
    """
    if type(coords) in _SEQUENCES and len(coords) >= 6 and not len(coords) % 2 and _plain_numbers(coords):
        # fast path for what JSON parsing gives (lists of int/float): same checks, no numpy per polygon
        poly = tuple(map(float, coords))
        if math.isfinite(sum(poly)):
            xs, ys = poly[0::2], poly[1::2]
            twice_area = sum(map(operator.mul, xs, ys[1:] + ys[:1])) - sum(map(operator.mul, ys, xs[1:] + xs[:1]))
            span = max(max(xs) - min(xs), max(ys) - min(ys), 1.0)
            if abs(twice_area) > 1e-6 * span * span:
                return poly
    p = _prefix(where)
    if isinstance(coords, (str, bytes)) or not isinstance(coords, Iterable):
        raise ValidationError(f"{p}a polygon must be a list of numbers [x1, y1, x2, y2, ...], got {coords!r}")
    values = list(coords)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValidationError(f"{p}polygon coordinates must be numbers, got {v!r}")
    n = len(values)
    if n == 4:
        raise ValidationError(
            f"{p}a polygon of 4 numbers (2 points) is not a polygon; COCO tools read it as a box. "
            "A polygon needs at least 3 points (6 numbers)"
        )
    if n % 2:
        raise ValidationError(
            f"{p}a polygon needs an even number of coordinates (x, y pairs), got {n} numbers"
        )
    if n < 6:
        raise ValidationError(f"{p}a polygon needs at least 3 points (6 numbers), got {n // 2} point(s)")
    poly = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in poly):
        raise ValidationError(f"{p}polygon coordinates must be finite numbers (no NaN or infinity)")
    if _is_degenerate(poly):
        raise ValidationError(f"{p}polygon has zero area: all its {n // 2} points lie on one line")
    return poly


def _is_degenerate(poly: Polygon) -> bool:
    """True when every point lies on one line (or coincides): no area under any rasterisation."""
    pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    d = pts - pts[0]
    far = d[int(np.argmax(np.abs(d).sum(axis=1)))]
    # Every point is on the line through pts[0] and the farthest point iff all cross products vanish.
    cross = d[:, 0] * far[1] - d[:, 1] * far[0]
    scale = max(float(np.abs(far).max()), 1.0)
    return bool(np.abs(cross).max() <= 1e-9 * scale * scale)


def polygon_area(poly: Sequence[float]) -> float:
    """Shoelace area of one flat polygon (absolute value; not the rasterised pixel count)."""
    pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    x, y = pts[:, 0], pts[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygons_bbox_xywh(polys: Iterable[Sequence[float]]) -> tuple[float, float, float, float]:
    """Tight ``[x, y, w, h]`` box around all points of all parts; zeros when there are none."""
    arrays = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys if len(p)]
    if not arrays:
        return (0.0, 0.0, 0.0, 0.0)
    pts = np.concatenate(arrays)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def clip_polygon(poly: Sequence[float], size_wh: tuple[int, int]) -> Polygon | None:
    """Clip a polygon to the image ``[0, w] x [0, h]`` (Sutherland-Hodgman).

    Returns None when nothing with area is left (the polygon lies outside the image or along an edge).
    A polygon already inside comes back unchanged, so clipping is safe to apply on every import.
    """
    w, h = float(size_wh[0]), float(size_wh[1])
    pts = [(float(poly[i]), float(poly[i + 1])) for i in range(0, len(poly) - 1, 2)]
    if len(pts) < 3:
        return None
    if all(0.0 <= x <= w and 0.0 <= y <= h for x, y in pts):
        out = pts
    else:
        # (axis, bound, keep_if_greater): each edge of the image box in turn.
        for axis, bound, keep_ge in ((0, 0.0, True), (0, w, False), (1, 0.0, True), (1, h, False)):
            out = []
            if not pts:
                break
            prev = pts[-1]
            prev_in = prev[axis] >= bound if keep_ge else prev[axis] <= bound
            for cur in pts:
                cur_in = cur[axis] >= bound if keep_ge else cur[axis] <= bound
                if cur_in != prev_in:
                    t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                    other = 1 - axis
                    cross = prev[other] + t * (cur[other] - prev[other])
                    out.append((bound, cross) if axis == 0 else (cross, bound))
                if cur_in:
                    out.append(cur)
                prev, prev_in = cur, cur_in
            pts = out
        out = pts
    # Drop consecutive duplicates that clipping creates at the corners.
    dedup: list[tuple[float, float]] = []
    for pt in out:
        if not dedup or pt != dedup[-1]:
            dedup.append(pt)
    if len(dedup) > 1 and dedup[0] == dedup[-1]:
        dedup.pop()
    if len(dedup) < 3:
        return None
    flat = tuple(c for pt in dedup for c in pt)
    if _is_degenerate(flat):
        return None
    return flat
