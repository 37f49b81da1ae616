"""Checks of single COCO field values (sizes, boxes, keypoints, index pairs).

They raise bare :class:`~workbench.domain.ValidationError` messages; the reader's one wrap site
leads them with the file and the entry they belong to.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.domain import KeypointSchema, ValidationError

__all__ = [
    "is_finite_number",
    "is_int",
    "is_number",
    "outside",
    "parse_bbox",
    "parse_keypoints",
    "parse_pairs",
    "size_int",
]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    kind = type(value)  # exact types first: this runs for every bbox/keypoint number of a file
    if kind is int:
        return True
    if kind is float:
        return math.isfinite(value)
    return is_number(value) and math.isfinite(value)


def size_int(value: Any, what: str) -> int:
    """An image width/height: a positive integer (``500.0`` is accepted, ``10.5``, NaN, -1 are not)."""
    if not is_number(value):
        raise ValidationError(f"{what} must be a positive integer, got {value!r}")
    if not math.isfinite(value):
        raise ValidationError(f"{what} must be a positive integer, got {value!r} (not finite)")
    if value != int(value):
        raise ValidationError(f"{what} must be a positive integer, got non-integer {value!r}")
    if value <= 0:
        raise ValidationError(f"{what} must be a positive integer, got {value!r} (not positive)")
    return int(value)


def parse_pairs(value: Any, what: str) -> list[tuple[int, int]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{what} must be a list of [a, b] pairs, got {value!r}")
    pairs = []
    for pair in value:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(is_int(i) for i in pair)):
            raise ValidationError(f"{what} entry {pair!r} is not a pair of integer indices")
        pairs.append((int(pair[0]), int(pair[1])))
    return pairs


def parse_bbox(value: Any) -> tuple[float, float, float, float]:
    if not (isinstance(value, list | tuple) and len(value) == 4):
        raise ValidationError(f"bbox must be [x, y, w, h] (4 numbers), got {value!r}")
    if not (all(type(c) in (int, float) for c in value) and math.isfinite(sum(value))) and not all(
        is_finite_number(c) for c in value
    ):
        raise ValidationError(f"bbox must hold 4 finite numbers, got {value!r}")
    x, y, w, h = (float(c) for c in value)
    if w < 0 or h < 0:
        raise ValidationError(f"bbox [x, y, w, h] has a negative width or height: {value!r}")
    return (x, y, w, h)


def parse_keypoints(value: Any, schema: KeypointSchema | None, category: str) -> tuple[float, ...]:
    if schema is None:
        raise ValidationError(f"has keypoints but category {category!r} declares no keypoint names")
    k = schema.num_keypoints
    if not isinstance(value, list) or len(value) != 3 * k:
        n = len(value) if isinstance(value, list) else value
        raise ValidationError(
            f"keypoints length is {n}, expected 3*K = {3 * k} for the {k} keypoints of {category!r}"
        )
    if not (all(type(c) in (int, float) for c in value) and math.isfinite(sum(value))) and not all(
        is_finite_number(c) for c in value
    ):
        raise ValidationError(f"keypoints must be finite numbers, got {value!r}")
    out: list[float] = []
    for i in range(k):
        x, y, v = value[3 * i : 3 * i + 3]
        if v not in (0, 1, 2):
            raise ValidationError(f"keypoint {i + 1} has visibility v={v!r}; v must be 0, 1 or 2")
        if v == 0:
            x = y = 0  # COCO: x = y = 0 where v = 0
        out.extend((float(x), float(y), int(v)))
    return tuple(out)


def outside(poly: tuple[float, ...], width: int, height: int) -> bool:
    xs, ys = poly[0::2], poly[1::2]
    return min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height
