"""One numpy pass over every polygon of a COCO file: which need the careful, one-by-one reading.

The reader takes plain polygons (lists of ints and floats) as they come and leaves three checks to
this pass, which costs about what parsing the JSON did instead of ~10 us per polygon in Python:
non-finite numbers, zero area (points on one line) and points beyond the image. A polygon flagged
here sends its annotation back through the reader's full checks, which decide and say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from workbench.geometry.masks import may_cover_no_pixel_points

__all__ = ["check_polygons", "suspect_polygons"]

_DEGENERATE = 2e-6
"""Twice validate_polygon's zero-area tolerance: borderline polygons get its exact verdict."""


def suspect_polygons(polys: Sequence[Sequence[float]], sizes_wh: np.ndarray) -> np.ndarray:
    """A bool per polygon (flat ``x1, y1, ...`` of even length >= 6): True where it may hold a
    non-finite number, may have zero area, or has a point outside its image ``sizes_wh[i]``."""
    return check_polygons(polys, sizes_wh)[0]


def check_polygons(polys: Sequence[Sequence[float]], sizes_wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(suspect, may_cover_no_pixel)``, a bool each per polygon: :func:`suspect_polygons`, and
    :func:`workbench.geometry.polygons_may_cover_no_pixel` from the same arrays (one pass over the
    points for both; its value is meaningless where the polygon is suspect)."""
    n = len(polys)
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    lens = np.fromiter(map(len, polys), dtype=np.int64, count=n)
    flat = np.fromiter(chain.from_iterable(polys), dtype=np.float64, count=int(lens.sum()))
    bad = ~np.isfinite(flat)
    npts = lens // 2
    ends = np.cumsum(npts)
    starts = ends - npts
    nonfinite = np.add.reduceat(bad[0::2] | bad[1::2], starts) > 0
    flat[bad] = 0.0
    x, y = flat[0::2], flat[1::2]
    xn, yn = np.empty_like(x), np.empty_like(y)
    xn[:-1], yn[:-1] = x[1:], y[1:]
    xn[ends - 1], yn[ends - 1] = x[starts], y[starts]  # each polygon closes on its first point
    twice_area = np.abs(np.add.reduceat(x * yn - y * xn, starts))
    x0, x1 = np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts)
    y0, y1 = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    span = np.maximum(np.maximum(x1 - x0, y1 - y0), 1.0)
    flat_area = twice_area <= _DEGENERATE * span * span
    outside = (x0 < 0) | (y0 < 0) | (x1 > sizes_wh[:, 0]) | (y1 > sizes_wh[:, 1])
    return nonfinite | flat_area | outside, may_cover_no_pixel_points(x, y, xn, yn, starts)
