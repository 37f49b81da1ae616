"""Masks as the annotator's brush and eraser edit them: a crop of the image, both ways to a stored Rle.

The browser paints at natural resolution, but a 6000 x 4000 image is 24 MB per mask at full size,
so it keeps each mask as a crop: ``{"size": [H, W], "x", "y", "w", "h", "counts"}``, where
``counts`` are COCO's uncompressed runs over the w x h crop (column-major, starting with a run of
zeros) and (x, y) is the crop's corner in the H x W image. Both directions are a few numpy passes
over the crop's runs (never its pixels, let alone the whole image's); the stored side is the usual
compressed Rle.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from workbench.domain import Rle, ValidationError
from workbench.geometry import coco_rle_to_rle
from workbench.geometry.rle import _string_to_counts  # COCO's counts string decoder, in Python

__all__ = ["crop_to_rle", "rle_to_crop"]


def _interleave(starts: np.ndarray, ends: np.ndarray, total: int) -> list[int]:
    """COCO uncompressed counts of a vector of ``total`` pixels whose ones are [starts, ends).

    The runs are sorted and disjoint; touching ones (a run reaching the bottom of a column that goes on
    at the top of the next) are merged, and no zero-length run is written, as pycocotools writes.
    """
    if starts.size == 0:
        return [total] if total else []
    gaps = starts[1:] - ends[:-1]
    keep = gaps > 0
    starts = starts[np.concatenate(([True], keep))]
    ends = ends[np.concatenate((keep, [True]))]
    runs = np.empty(2 * starts.size + 1, dtype=np.int64)
    runs[0] = starts[0]
    runs[1:-1:2] = ends - starts
    runs[2:-1:2] = starts[1:] - ends[:-1]
    runs[-1] = total - ends[-1]
    if runs[-1] == 0:
        runs = runs[:-1]
    return runs.tolist()  # Python ints


def rle_to_crop(rle: Rle) -> dict[str, Any]:
    """The browser's crop of a stored mask: its tight box and the runs inside it (w = h = 0 if empty).

    Read from the runs themselves, never decoding the whole image (a 24-megapixel decode, transposed
    and scanned for the box, took 0.6 s a mask; this takes milliseconds). The page sends every shape
    on every rerun, so crops are remembered by their Rle (a value: equal masks share a crop).
    """
    x, y, w, h, counts = _crop(rle)
    return {
        "size": [int(rle.size_hw[0]), int(rle.size_hw[1])],
        "x": x,
        "y": y,
        "w": w,
        "h": h,
        "counts": list(counts),
    }


@functools.lru_cache(maxsize=512)
def _crop(rle: Rle) -> tuple[int, int, int, int, tuple[int, ...]]:
    h_img, w_img = (int(v) for v in rle.size_hw)
    runs = np.asarray(_string_to_counts(rle.counts, "stored mask"), dtype=np.int64)
    bounds = np.cumsum(runs)
    starts, ends = bounds[0:-1:2], bounds[1::2]  # the ones, [start, end) in column-major offsets
    nonempty = ends > starts
    starts, ends = starts[nonempty], ends[nonempty]
    if starts.size == 0:
        return (0, 0, 0, 0, ())
    col, top, bottom = _column_pieces(starts, ends, h_img)
    x0, x1 = int(col[0]), int(col[-1]) + 1
    y0, y1 = int(top.min()), int(bottom.max())
    h = y1 - y0
    at = (col - x0) * h - y0
    counts = _interleave(at + top, at + bottom, (x1 - x0) * h)
    return (x0, y0, x1 - x0, h, tuple(counts))


def _column_pieces(starts: np.ndarray, ends: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of ones ``[start, end)`` at column-major offsets over columns of ``h`` pixels, split at
    the column boundaries: the column, top row and bottom row (exclusive) of each piece, in order."""
    # piece k of run i lies in column first_col[i] + k
    first_col, last_col = starts // h, (ends - 1) // h
    pieces = last_col - first_col + 1
    run_of = np.repeat(np.arange(starts.size), pieces)
    col = first_col[run_of] + np.arange(run_of.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    top = np.maximum(starts[run_of], col * h) - col * h
    bottom = np.minimum(ends[run_of], (col + 1) * h) - col * h
    return col, top, bottom


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
    # set(map(type)) and min: C loops (a grown mask sends 12,000 runs a stroke); type() is int, not bool
    if (
        not isinstance(counts, (list, tuple))
        or not set(map(type, counts)) <= {int}
        or min(counts, default=0) < 0
    ):
        raise ValidationError(f"{where}: 'counts' must be a list of non-negative integers")
    if sum(counts) != w * h:
        raise ValidationError(
            f"{where}: the runs cover {sum(counts)} pixels but the {w}x{h} crop has {w * h}"
        )
    if w * h == 0 or len(counts) < 2:
        return None
    # From the runs alone, never expanding the crop's pixels (a mask grown across a 24-MP image is a
    # 7.5-MP crop of 12,000 runs: expanding it took 35-55 ms a stroke): each run of ones is split at
    # the crop's column boundaries and its pieces placed at column-major offsets in the whole image.
    bounds = np.cumsum(np.asarray(counts, dtype=np.int64))
    starts, ends = bounds[0:-1:2], bounds[1::2]
    nonempty = ends > starts
    starts, ends = starts[nonempty], ends[nonempty]
    if starts.size == 0:
        return None
    col, top, bottom = _column_pieces(starts, ends, h)
    at = (x + col) * h_img + y
    counts = _interleave(at + top, at + bottom, h_img * w_img)
    return coco_rle_to_rle({"size": [h_img, w_img], "counts": counts}, where=where)
