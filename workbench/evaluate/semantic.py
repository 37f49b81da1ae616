"""Label-map metrics from per-class binary maps (C x H x W, 0/1): per-class IoU, mean IoU, pixel accuracy.

Intersections and unions are summed over all images before dividing (the usual semantic-segmentation
convention, e.g. torchvision's and mmseg's), so large images weigh more than small ones and a class
absent from one image does not give that image an undefined IoU.

Maps may overlap (several classes 1 at a pixel), so pixel accuracy is defined per pixel as "the set of
classes predicted equals the set of classes in the ground truth" over non-ignored pixels; with
exclusive maps that is the usual argmax accuracy (background = no class set on both sides).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from workbench.domain import ValidationError

__all__ = ["label_map_metrics"]


def label_map_metrics(
    gt_maps: Iterable[np.ndarray],
    pred_maps: Iterable[np.ndarray],
    class_names: Sequence[str],
    *,
    ignore: Iterable[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Per-class IoU (None for a class absent from both sides everywhere), mean IoU, pixel accuracy."""
    c = len(class_names)
    inter = np.zeros(c, dtype=np.int64)
    union = np.zeros(c, dtype=np.int64)
    gt_px = np.zeros(c, dtype=np.int64)
    pred_px = np.zeros(c, dtype=np.int64)
    correct = 0
    total = 0
    ign_iter = iter(ignore) if ignore is not None else None
    n = 0
    for n, (g, p) in enumerate(zip(gt_maps, pred_maps, strict=True), start=1):
        g = np.asarray(g) != 0
        p = np.asarray(p) != 0
        if g.ndim != 3 or g.shape[0] != c:
            raise ValidationError(f"image {n - 1}: ground-truth map must be C x H x W with C={c}, got {g.shape}")
        if p.shape != g.shape:
            raise ValidationError(f"image {n - 1}: prediction shape {p.shape} differs from ground truth {g.shape}")
        valid = np.ones(g.shape[1:], dtype=bool)
        if ign_iter is not None:
            try:
                ig = np.asarray(next(ign_iter), dtype=bool)
            except StopIteration:
                raise ValidationError(f"image {n - 1}: no ignore mask (fewer ignore masks than maps)") from None
            if ig.shape != g.shape[1:]:
                raise ValidationError(f"image {n - 1}: ignore mask {ig.shape} is not H x W {g.shape[1:]}")
            valid = ~ig
        gv = g & valid
        pv = p & valid
        inter += np.count_nonzero(gv & pv, axis=(1, 2))
        union += np.count_nonzero(gv | pv, axis=(1, 2))
        gt_px += np.count_nonzero(gv, axis=(1, 2))
        pred_px += np.count_nonzero(pv, axis=(1, 2))
        correct += int(np.count_nonzero(np.all(g == p, axis=0) & valid))
        total += int(np.count_nonzero(valid))
    per_class: dict[str, dict[str, Any]] = {}
    ious = []
    for k, name in enumerate(class_names):
        iou = float(inter[k] / union[k]) if union[k] else None
        if iou is not None:
            ious.append(iou)
        per_class[name] = {"iou": iou, "intersection": int(inter[k]), "union": int(union[k]),
                           "gt_pixels": int(gt_px[k]), "pred_pixels": int(pred_px[k])}
    return {
        "per_class": per_class,
        "mean_iou": float(np.mean(ious)) if ious else None,
        "pixel_accuracy": float(correct / total) if total else None,
        "num_images": n,
        "num_pixels": total,
    }
