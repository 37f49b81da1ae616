from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain import ValidationError
from workbench.geometry import clip_polygon, polygon_area, polygons_bbox_xywh, validate_polygon

WHERE = "file.json: annotation 7"


@pytest.mark.parametrize(
    ("coords", "message"),
    [
        ([0, 0, 10, 0, 10], "even number of coordinates"),
        ([0, 0, 10, 0], "read it as a box"),
        ([0, 0], "at least 3 points"),
        ([], "at least 3 points"),
        ([0, 0, 10, float("nan"), 5, 5], "finite"),
        ([0, 0, 10, float("inf"), 5, 5], "finite"),
        ([0, 0, 5, 5, 10, 10], "zero area"),
        ([3, 3, 3, 3, 3, 3, 3, 3], "zero area"),
        ([0, 0, "a", 1, 2, 2], "must be numbers"),
        ([0, 0, True, 1, 2, 2], "must be numbers"),
        ("0,0,1,1,2,2", "list of numbers"),
        (None, "list of numbers"),
    ],
)
def test_bad_polygons_are_refused_with_where_and_reason(coords, message):
    with pytest.raises(ValidationError) as err:
        validate_polygon(coords, where=WHERE)
    text = str(err.value)
    assert text.startswith(WHERE + ": ")
    assert message in text


def test_valid_polygon_comes_back_as_floats():
    poly = validate_polygon([0, 0, 4, 0, np.float32(4), 4])
    assert poly == (0.0, 0.0, 4.0, 0.0, 4.0, 4.0)
    assert all(type(v) is float for v in poly)


def test_self_touching_but_not_collinear_polygon_is_accepted():
    # A bowtie has zero signed area but rasterises to two triangles, so it is not "zero area".
    assert validate_polygon([0, 0, 4, 4, 4, 0, 0, 4])


def test_area_and_bbox():
    square = (1.0, 2.0, 5.0, 2.0, 5.0, 6.0, 1.0, 6.0)
    assert polygon_area(square) == 16.0
    assert polygon_area(tuple(reversed(square))) == 16.0
    assert polygons_bbox_xywh([square, (10.0, 0.0, 12.0, 1.0, 11.0, 3.0)]) == (1.0, 0.0, 11.0, 6.0)
    assert polygons_bbox_xywh([]) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("poly", "expected"),
    [
        ((1, 1, 3, 1, 3, 3), (1.0, 1.0, 3.0, 1.0, 3.0, 3.0)),  # inside: unchanged
        ((-2, -2, 12, -2, 12, 4, -2, 4), (0.0, 0.0, 10.0, 0.0, 10.0, 4.0, 0.0, 4.0)),
        ((20, 20, 30, 20, 30, 30), None),  # fully outside
        ((-5, 0, 0, 0, 0, 5, -5, 5), None),  # touches the left edge only: no area left
    ],
)
def test_clip_polygon_cases(poly, expected):
    assert clip_polygon(poly, (10, 8)) == expected


coord = st.floats(min_value=-50, max_value=80, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(pts=st.lists(st.tuples(coord, coord), min_size=3, max_size=10))
def test_clip_keeps_points_inside_and_never_grows_area(pts):
    poly = tuple(c for p in pts for c in p)
    w, h = 40, 30
    clipped = clip_polygon(poly, (w, h))
    if clipped is None:
        return
    arr = np.asarray(clipped).reshape(-1, 2)
    assert len(arr) >= 3
    assert (arr[:, 0] >= 0).all() and (arr[:, 0] <= w).all()
    assert (arr[:, 1] >= 0).all() and (arr[:, 1] <= h).all()
    # Clipping a simple polygon never adds area; self-intersecting input gets a small tolerance.
    assert polygon_area(clipped) <= polygon_area(poly) + 1e-6 or not _is_simple(pts)
    assert validate_polygon(clipped) == clipped


@settings(max_examples=100, deadline=None)
@given(
    x=st.floats(0, 30),
    y=st.floats(0, 20),
    w=st.floats(0.5, 10),
    h=st.floats(0.5, 10),
)
def test_clip_rectangle_equals_box_intersection(x, y, w, h):
    rect = (x, y, x + w, y, x + w, y + h, x, y + h)
    clipped = clip_polygon(rect, (25, 15))
    iw = max(0.0, min(x + w, 25) - max(x, 0))
    ih = max(0.0, min(y + h, 15) - max(y, 0))
    if clipped is None:
        assert iw * ih < 1e-6
    else:
        assert math.isclose(polygon_area(clipped), iw * ih, rel_tol=1e-9, abs_tol=1e-9)


def _is_simple(pts) -> bool:
    """Rough check used only to excuse self-intersecting inputs from the area bound."""
    n = len(pts)

    def ccw(a, b, c):
        return (c[1] - a[1]) * (b[0] - a[0]) - (b[1] - a[1]) * (c[0] - a[0])

    for i in range(n):
        a, b = pts[i], pts[(i + 1) % n]
        for j in range(i + 2, n):
            if (j + 1) % n == i:
                continue
            c, d = pts[j], pts[(j + 1) % n]
            if (ccw(a, c, d) > 0) != (ccw(b, c, d) > 0) and (ccw(a, b, c) > 0) != (ccw(a, b, d) > 0):
                return False
    return True
