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

__all__ = ["confusion_matrix", "confusion_metrics", "label_map_metrics"]

IGNORE_INDEX = 255


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


# --------------------------------------------------------------------------------------------------
# index maps (0 background, class c -> c + 1, 255 ignore): the confusion matrix and what follows


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_labels: int, *, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """``num_labels`` x ``num_labels`` pixel counts, rows the ground truth, columns the prediction;
    ground-truth ``ignore_index`` pixels are left out. Labels: 0 background, 1..C the classes."""
    g = np.asarray(gt).astype(np.int64, copy=False).ravel()
    p = np.asarray(pred).astype(np.int64, copy=False).ravel()
    if g.shape != p.shape:
        raise ValidationError(f"prediction of {np.asarray(pred).shape} pixels against ground truth of {np.asarray(gt).shape}")
    keep = g != ignore_index
    g, p = g[keep], p[keep]
    if g.size and (g.max() >= num_labels or p.max() >= num_labels or min(g.min(), p.min()) < 0):
        raise ValidationError(f"label maps hold values outside 0..{num_labels - 1} (and {ignore_index} = ignore)")
    return np.bincount(g * num_labels + p, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def confusion_metrics(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Per-class IoU and accuracy, mean IoU, pixel accuracy, mean class accuracy, frequency-weighted
    IoU and the confusion matrix itself, from a (C + 1) x (C + 1) pixel confusion (background first).

    ``mean_iou`` and ``mean_class_accuracy`` average the project's classes, background NOT counted
    (``background_counted: false``), over the classes present in the ground truth or the prediction
    (a class absent from both has no IoU); ``mean_iou_with_background`` counts it as one more class.
    ``fw_iou`` weighs every label's IoU, background's included, by its share of ground-truth pixels.
    """
    cm = np.asarray(cm, dtype=np.int64)
    labels = ["background", *class_names]
    if cm.shape != (len(labels), len(labels)):
        raise ValidationError(f"confusion matrix is {cm.shape}, expected {len(labels)} x {len(labels)} (background + classes)")
    tp = np.diag(cm)
    gt_px, pred_px = cm.sum(axis=1), cm.sum(axis=0)
    union = gt_px + pred_px - tp
    total = int(cm.sum())
    iou = [float(tp[k] / union[k]) if union[k] else None for k in range(len(labels))]
    acc = [float(tp[k] / gt_px[k]) if gt_px[k] else None for k in range(len(labels))]

    def mean(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None]
        return float(np.mean(vals)) if vals else None

    return {
        "per_class": {
            name: {"iou": iou[k], "accuracy": acc[k], "gt_pixels": int(gt_px[k]), "pred_pixels": int(pred_px[k]),
                   "intersection": int(tp[k]), "union": int(union[k])}
            for k, name in enumerate(labels)
        },
        "mean_iou": mean(iou[1:]),
        "mean_iou_with_background": mean(iou),
        "background_counted": False,
        "pixel_accuracy": float(tp.sum() / total) if total else None,
        "mean_class_accuracy": mean(acc[1:]),
        "fw_iou": float(sum(gt_px[k] / total * iou[k] for k in range(len(labels)) if iou[k] is not None)) if total else None,
        "num_pixels": total,
        "labels": labels,
        "confusion": cm.tolist(),
    }
