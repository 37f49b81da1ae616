"""The bulk polygon pass flags every polygon the one-by-one checks would refuse, clip or drop."""

from __future__ import annotations

import math

import numpy as np

from workbench.domain import ValidationError
from workbench.formats.coco.bulk import suspect_polygons
from workbench.formats.coco.fields import outside
from workbench.geometry import validate_polygon


def _careful_verdict(poly: list[float], w: int, h: int) -> bool:
    """True where the reader's full checks would do anything but keep the polygon as it is."""
    try:
        validate_polygon(poly)
    except ValidationError:
        return True
    return outside(tuple(poly), w, h)


def test_suspects_cover_everything_the_careful_checks_catch() -> None:
    rng = np.random.default_rng(7)
    polys, sizes, wanted = [], [], []
    for k in range(3000):
        n = int(rng.integers(3, 9))
        w, h = int(rng.integers(20, 200)), int(rng.integers(20, 200))
        pts = rng.uniform(-10, max(w, h) + 10, (n, 2)).round(int(rng.integers(0, 3)))
        kind = k % 6
        if kind == 1:  # points on one line (FiftyOne's flat contours)
            t = rng.uniform(0, 1, n)
            pts = np.stack([5 + t * (w - 10), 5 + t * (h - 10) * 0.5], 1)
        elif kind == 2:  # inside the image
            pts = np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n)], 1)
        elif kind == 3:
            pts[0, 0] = math.nan if k % 12 == 3 else math.inf
        poly = pts.ravel().tolist()
        polys.append(poly)
        sizes.append((w, h))
        wanted.append(_careful_verdict(poly, w, h))
    got = suspect_polygons(polys, np.array(sizes, dtype=np.float64))
    wanted_arr = np.array(wanted)
    assert not np.any(wanted_arr & ~got)  # nothing the careful checks catch slips through
    assert got.sum() - wanted_arr.sum() <= 0.01 * len(polys)  # and few are read twice for nothing
    assert wanted_arr.sum() > 1000 and (~wanted_arr).sum() > 500  # both kinds were exercised
