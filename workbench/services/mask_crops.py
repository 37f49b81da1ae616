"""Masks as the annotator's brush and eraser edit them: a crop of the image, both ways to a stored Rle.

The browser paints at natural resolution, but a 6000 x 4000 image is 24 MB per mask at full size,
so it keeps each mask as a crop: ``{"size": [H, W], "x", "y", "w", "h", "counts"}``, where
``counts`` are COCO's uncompressed runs over the w x h crop (column-major, starting with a run of
zeros) and (x, y) is the crop's corner in the H x W image. Both directions are a few numpy passes
over the crop, never over the whole image; the stored side is the usual compressed Rle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from workbench.domain import Rle, ValidationError
from workbench.geometry import coco_rle_to_rle, rle_to_mask

__all__ = ["crop_to_rle", "rle_to_crop"]


def _runs(flat: np.ndarray) -> list[int]:
    """COCO uncompressed counts of a 0/1 vector: alternating runs, the first one of zeros."""
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return [int(r) for r in runs]


def rle_to_crop(rle: Rle) -> dict[str, Any]:
    """The browser's crop of a stored mask: its tight box and the runs inside it (w = h = 0 if empty)."""
    mask = rle_to_mask(rle)
    h_img, w_img = (int(v) for v in rle.size_hw)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return {"size": [h_img, w_img], "x": 0, "y": 0, "w": 0, "h": 0, "counts": []}
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = mask[y0:y1, x0:x1]
    return {
        "size": [h_img, w_img],
        "x": x0,
        "y": y0,
        "w": x1 - x0,
        "h": y1 - y0,
        "counts": _runs(crop.ravel(order="F")),
    }


def _int(obj: Mapping[str, Any], name: str, where: str) -> int:
    v = obj.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValidationError(f"{where}: '{name}' must be a non-negative integer, got {v!r}")
    return v


def crop_to_rle(obj: Any, *, where: str = "annotator mask") -> Rle | None:
    """The stored Rle of a crop the browser sent; None when it has no pixel (everything was erased).

    The crop must lie inside its image and its runs must cover it exactly: one line says what is wrong.
    """
    if not isinstance(obj, Mapping):
        raise ValidationError(f"{where}: a mask must be an object with size, x, y, w, h and counts")
    size = obj.get("size")
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ValidationError(
            f"{where}: 'size' must be [height, width] with two positive integers, got {size!r}"
        )
    h_img, w_img = int(size[0]), int(size[1])
    x, y, w, h = (_int(obj, k, where) for k in ("x", "y", "w", "h"))
    if x + w > w_img or y + h > h_img:
        raise ValidationError(f"{where}: the crop {w}x{h} at ({x}, {y}) leaves the {w_img}x{h_img} image")
    counts = obj.get("counts")
    if not isinstance(counts, (list, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts
    ):
        raise ValidationError(f"{where}: 'counts' must be a list of non-negative integers")
    if sum(counts) != w * h:
        raise ValidationError(
            f"{where}: the runs cover {sum(counts)} pixels but the {w}x{h} crop has {w * h}"
        )
    if w * h == 0 or len(counts) < 2:
        return None
    values = np.arange(len(counts), dtype=np.uint8) & 1
    crop = np.repeat(values, np.asarray(counts, dtype=np.int64)).reshape(w, h)  # one row per image column
    # A zero above and below every column keeps a run from spilling into the next column, so each
    # run's start and end map straight to column-major offsets in the whole image.
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = crop
    step = np.diff(padded.ravel())
    starts, ends = np.flatnonzero(step == 1) + 1, np.flatnonzero(step == -1) + 1
    if starts.size == 0:
        return None
    pitch = h + 2

    def offset(i: np.ndarray) -> np.ndarray:
        return (x + i // pitch) * h_img + y + i % pitch - 1

    first, last = offset(starts), offset(ends)
    gaps = first[1:] - last[:-1]
    keep = gaps > 0  # a run reaching the image's bottom row goes on at the top of the next column
    first = first[np.concatenate(([True], keep))]
    last = last[np.concatenate((keep, [True]))]
    runs = np.empty(2 * first.size + 1, dtype=np.int64)
    runs[0] = first[0]
    runs[1:-1:2] = last - first
    runs[2:-1:2] = first[1:] - last[:-1]
    runs[-1] = h_img * w_img - last[-1]
    if runs[-1] == 0:
        runs = runs[:-1]  # as pycocotools writes a mask that ends on a foreground pixel
    return coco_rle_to_rle({"size": [h_img, w_img], "counts": [int(r) for r in runs]}, where=where)
