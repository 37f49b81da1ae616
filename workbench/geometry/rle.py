"""COCO run-length encodings: the only module of the workbench that calls ``pycocotools.mask``.

Keeping every call here means one place knows pycocotools' quirks: ``frPyObjects`` reads a list of
4 numbers as a box (``validate_polygon`` refuses those, so we never pass one), RLE ``size`` is
``[h, w]`` and masks are column-major, and its C decoder trusts that the counts add up to ``h * w``
(so RLEs from files are checked here before anything decodes them).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from workbench.domain import Rle, ValidationError

__all__ = [
    "coco_rle_to_rle",
    "mask_to_rle",
    "merge_rles",
    "polygons_to_rle",
    "rle_area",
    "rle_bbox_xywh",
    "rle_iou",
    "rle_to_mask",
    "rles_to_masks",
]


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _from_coco(obj: dict[str, Any]) -> Rle:
    counts = obj["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    h, w = obj["size"]
    return Rle(size_hw=(int(h), int(w)), counts=counts)


def _to_coco(rle: Rle) -> dict[str, Any]:
    return {"size": [int(rle.size_hw[0]), int(rle.size_hw[1])], "counts": rle.counts.encode("ascii")}


def _empty_rle(h: int, w: int) -> Rle:
    return mask_to_rle(np.zeros((h, w), dtype=np.uint8))


def polygons_to_rle(polys: Sequence[Sequence[float]], size_wh: tuple[int, int]) -> Rle:
    """Rasterise the union of polygon parts exactly as pycocotools (and so COCOeval) does.

    Polygons must be validated first (``validate_polygon``): a 4-number list would be read as a box.
    No parts gives an empty mask of the image size.
    """
    w, h = int(size_wh[0]), int(size_wh[1])
    parts = [[float(c) for c in p] for p in polys]
    if not parts:
        return _empty_rle(h, w)
    for p in parts:
        if len(p) < 6 or len(p) % 2:
            raise ValidationError(
                f"a polygon needs an even number of coordinates and at least 3 points, got {len(p)} numbers"
            )
    rles = mask_utils.frPyObjects(parts, h, w)
    merged = rles[0] if len(rles) == 1 else mask_utils.merge(rles, intersect=0)
    return _from_coco(merged)


def mask_to_rle(mask: np.ndarray) -> Rle:
    """Encode an H x W mask (any dtype; nonzero is foreground) as a compressed RLE."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValidationError(f"a mask must be a 2-D H x W array, got shape {arr.shape}")
    fortran = np.asfortranarray(arr != 0, dtype=np.uint8)
    return _from_coco(mask_utils.encode(fortran))


def rle_to_mask(rle: Rle) -> np.ndarray:
    """Decode to an H x W uint8 array of 0/1."""
    with warnings.catch_warnings():
        # pycocotools' Cython decoder predates NumPy 2's copy keyword; the warning is harmless noise.
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        decoded = mask_utils.decode(_to_coco(rle))
    return np.ascontiguousarray(decoded, dtype=np.uint8)


def rles_to_masks(rles: Sequence[Rle | None], size_hw: tuple[int, int]) -> np.ndarray:
    """N x H x W uint8 0/1 array of RLEs of one size; ``None`` gives an all-zero mask.

    Equal to stacking :func:`rle_to_mask` per RLE, but for the training loader: one allocation, and
    each column-major decode written straight into its C-order row (no per-mask copy, no stack).
    """
    h, w = int(size_hw[0]), int(size_hw[1])
    out = np.zeros((len(rles), h, w), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        for i, rle in enumerate(rles):
            if rle is None:
                continue
            if tuple(rle.size_hw) != (h, w):
                raise ValidationError(f"RLE size {list(rle.size_hw)} (h, w) does not match {[h, w]}")
            out[i] = mask_utils.decode(_to_coco(rle))
    return out


def _string_to_counts(s: str, where: str) -> list[int]:
    """Decode COCO's compressed counts string (pycocotools' rleFrString) in Python, to check it."""
    p = _prefix(where)
    counts: list[int] = []
    i, n = 0, len(s)
    while i < n:
        x, k, more = 0, 0, True
        while more:
            if i >= n:
                raise ValidationError(f"{p}RLE counts string is truncated")
            c = ord(s[i]) - 48
            if not 0 <= c < 64:
                raise ValidationError(
                    f"{p}RLE counts string has a character outside COCO's alphabet: {s[i]!r}"
                )
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def coco_rle_to_rle(obj: Any, *, where: str = "") -> Rle:
    """Read a COCO RLE dict: ``{"size": [h, w], "counts": str | bytes | list[int]}``.

    Compressed counts are kept as given (so a COCO round trip is byte-identical); uncompressed counts
    (a list of run lengths, as CVAT and iscrowd annotations write) are compressed. Either way the runs
    must be non-negative and add up to ``h * w``: pycocotools' decoder does not check and would write
    past the end of the mask.
    """
    p = _prefix(where)
    if not isinstance(obj, dict) or "size" not in obj or "counts" not in obj:
        raise ValidationError(f"{p}an RLE must be an object with 'size' [h, w] and 'counts'")
    size = obj["size"]
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        or size[0] <= 0
        or size[1] <= 0
    ):
        raise ValidationError(f"{p}RLE size must be [height, width] with two positive integers, got {size!r}")
    h, w = int(size[0]), int(size[1])
    counts = obj["counts"]
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"{p}RLE counts bytes are not ASCII") from exc
    if isinstance(counts, str):
        runs = _string_to_counts(counts, where)
        if any(r < 0 for r in runs):
            raise ValidationError(f"{p}RLE counts string decodes to a negative run length")
        total = sum(runs)
        if total != h * w:
            raise ValidationError(f"{p}RLE counts cover {total} pixels but size {h}x{w} has {h * w}")
        return Rle(size_hw=(h, w), counts=counts)
    if isinstance(counts, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
            raise ValidationError(f"{p}uncompressed RLE counts must be a list of integers")
        if any(v < 0 for v in counts):
            raise ValidationError(f"{p}uncompressed RLE counts must not be negative")
        total = sum(counts)
        if total != h * w:
            raise ValidationError(
                f"{p}uncompressed RLE counts add up to {total} but size {h}x{w} has {h * w} pixels"
            )
        if not counts:
            return _empty_rle(h, w)
        return _from_coco(mask_utils.frPyObjects({"size": [h, w], "counts": list(counts)}, h, w))
    raise ValidationError(
        f"{p}RLE counts must be a string or a list of integers, got {type(counts).__name__}"
    )


def rle_area(rle: Rle) -> float:
    """Foreground pixel count: COCO's ``area`` for a mask."""
    return float(mask_utils.area(_to_coco(rle)))


def rle_bbox_xywh(rle: Rle) -> tuple[float, float, float, float]:
    """Tight box of the foreground pixels (pycocotools ``toBbox``); zeros for an empty mask."""
    x, y, w, h = (float(v) for v in mask_utils.toBbox(_to_coco(rle)))
    return (x, y, w, h)


def rle_iou(a: Sequence[Rle], b: Sequence[Rle], iscrowd: Sequence[bool]) -> np.ndarray:
    """len(a) x len(b) IoU as pycocotools computes it (crowd ``b`` use intersection over area of ``a``)."""
    if len(iscrowd) != len(b):
        raise ValidationError(f"iscrowd needs one flag per ground truth: {len(iscrowd)} for {len(b)}")
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    sizes = {r.size_hw for r in (*a, *b)}
    if len(sizes) != 1:
        raise ValidationError(f"IoU needs masks of one size, got {sorted(sizes)}")
    ious = mask_utils.iou([_to_coco(r) for r in a], [_to_coco(r) for r in b], [int(bool(c)) for c in iscrowd])
    return np.asarray(ious, dtype=np.float64).reshape(len(a), len(b))


def merge_rles(rles: Sequence[Rle]) -> Rle:
    """Union of masks of one size."""
    if not rles:
        raise ValidationError("merging needs at least one RLE")
    sizes = {r.size_hw for r in rles}
    if len(sizes) != 1:
        raise ValidationError(f"can only merge RLEs of one size, got {sorted(sizes)}")
    if len(rles) == 1:
        return rles[0]
    return _from_coco(mask_utils.merge([_to_coco(r) for r in rles], intersect=0))
