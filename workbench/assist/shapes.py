"""A tool's mask as the shape the annotator edits: polygons, or RLE where the mask has holes.

Polygons are what users edit, so they are preferred; a polygon cannot carry a hole, so a mask with
one comes back as COCO RLE (the hole kept) rather than as a polygon that would fill it. The user's
``tolerance`` (pixels, Douglas-Peucker) trades vertices for fidelity; ``max_vertices`` is a budget:
the tolerance is raised until the parts fit in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.domain import Polygon, Rle, ValidationError
from workbench.geometry import mask_to_bbox_xywh, mask_to_polygons, mask_to_rle, polygons_bbox_xywh

DEFAULT_TOLERANCE = 1.0
DEFAULT_MAX_VERTICES = 200


@dataclass(frozen=True)
class AssistShape:
    """The result of one tool call in natural pixels, COCO-like (``to_coco``)."""

    size_wh: tuple[int, int]
    polygons: tuple[Polygon, ...] = ()
    rle: Rle | None = None
    area: float = 0.0
    bbox_xywh: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    score: float | None = None
    method: str = ""

    @property
    def empty(self) -> bool:
        return not self.polygons and self.rle is None

    def to_coco(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "segmentation": self.rle.to_coco() if self.rle is not None else [list(p) for p in self.polygons],
            "bbox": [round(v, 4) for v in self.bbox_xywh],
            "area": float(self.area),
            "iscrowd": 0,
            "method": self.method,
        }
        if self.score is not None:
            out["score"] = round(float(self.score), 6)
        return out


def has_holes(mask: np.ndarray) -> bool:
    """True when some background pixels are enclosed by the mask (not reachable from the border)."""
    import cv2

    m = (np.asarray(mask) != 0).astype(np.uint8)
    if not m.any():
        return False
    padded = np.pad(m, 1)
    fill = padded.copy()
    cv2.floodFill(fill, None, (0, 0), 1)  # the outside background, reached through the pad
    return bool((fill == 0).any())


def _vertices(polys: tuple[Polygon, ...]) -> int:
    return sum(len(p) // 2 for p in polys)


def simplify(mask: np.ndarray, *, tolerance: float, max_vertices: int) -> tuple[Polygon, ...]:
    """Outer polygons of ``mask`` at ``tolerance``, raised (x1.5 steps) until within ``max_vertices``."""
    if tolerance < 0:
        raise ValidationError(f"the simplification tolerance is a distance in pixels >= 0, got {tolerance}")
    if max_vertices < 3:
        raise ValidationError(f"the vertex budget must be at least 3, got {max_vertices}")
    tol = float(tolerance)
    polys = mask_to_polygons(mask, tolerance=tol)
    while _vertices(polys) > max_vertices and tol < max(mask.shape):
        tol = max(tol * 1.5, 0.5)
        polys = mask_to_polygons(mask, tolerance=tol)
    if _vertices(polys) > max_vertices:  # many parts: keep the largest that fit
        polys = tuple(sorted(polys, key=len, reverse=True))
        kept: list[Polygon] = []
        for p in polys:
            if _vertices((*kept, p)) <= max_vertices:
                kept.append(p)
        polys = tuple(kept)
    return polys


def mask_to_shape(
    mask: np.ndarray,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    score: float | None = None,
    method: str = "",
) -> AssistShape:
    """The mask as polygons (no holes) or RLE (holes), with COCO's bbox and area (the mask's pixels)."""
    m = (np.asarray(mask) != 0).astype(np.uint8)
    if m.ndim != 2:
        raise ValidationError(f"a mask must be a 2-D H x W array, got shape {m.shape}")
    size_wh = (int(m.shape[1]), int(m.shape[0]))
    if not m.any():
        return AssistShape(size_wh=size_wh, score=score, method=method)
    if has_holes(m):
        return AssistShape(
            size_wh=size_wh,
            rle=mask_to_rle(m),
            area=float(m.sum()),
            bbox_xywh=mask_to_bbox_xywh(m),
            score=score,
            method=method,
        )
    polys = simplify(m, tolerance=tolerance, max_vertices=max_vertices)
    if not polys:
        return AssistShape(size_wh=size_wh, score=score, method=method)
    from workbench.geometry import polygons_to_mask

    area = float(polygons_to_mask(polys, size_wh).sum())
    return AssistShape(
        size_wh=size_wh,
        polygons=polys,
        area=area,
        bbox_xywh=polygons_bbox_xywh(polys),
        score=score,
        method=method,
    )


def shape_to_mask(shape: AssistShape) -> np.ndarray:
    """H x W uint8 0/1 mask of a result (for IoU checks and the benchmark)."""
    from workbench.geometry import polygons_to_mask, rle_to_mask

    if shape.rle is not None:
        return rle_to_mask(shape.rle)
    w, h = shape.size_wh
    if not shape.polygons:
        return np.zeros((h, w), dtype=np.uint8)
    return polygons_to_mask(shape.polygons, shape.size_wh)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0
