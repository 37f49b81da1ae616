"""Keypoint metrics on ground-truth boxes: PCK@alpha and COCO's OKS AP.

PCK@0.2: a labelled keypoint (v > 0) is correct when the predicted point lies within 0.2 x the
ground-truth box's longer side (max(w, h), as MMPose's ``norm_item='bbox'``) of it; PCK is the share
of correct labelled keypoints over the split (micro average), also given per class.

OKS AP: the project's COCO evaluation (:func:`workbench.evaluate.coco_eval.evaluate_coco`, equal to
COCOeval's), one detection per ground-truth instance (top-down on ground-truth boxes), scored by
the mean of its keypoints' heatmap maxima, with per-keypoint sigmas (the project's
``kpt_oks_sigmas`` when given, else COCO's person sigmas for 17 keypoints, else 0.05 each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_ALPHA = 0.2


@dataclass(frozen=True)
class KeypointPrediction:
    """One top-down prediction: the ground-truth instance it was made for, and K x 3 (x, y, score)."""

    image_id: int
    category: str
    box_xywh: tuple[float, float, float, float]
    gt_keypoints: np.ndarray
    """K x 3 (x, y, v) of the ground truth."""
    keypoints: np.ndarray
    """K x 3 (x, y, score), natural image pixels."""

    @property
    def score(self) -> float:
        return float(np.mean(self.keypoints[:, 2])) if len(self.keypoints) else 0.0


def pck_counts(pred_xy: np.ndarray, gt: np.ndarray, box_xywh: Sequence[float], alpha: float = DEFAULT_ALPHA) -> tuple[int, int]:
    """(correct, labelled) for one instance: K x 2 predictions against K x 3 ground truth."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 3)
    pred = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)[: len(gt)]
    labelled = gt[:, 2] > 0
    norm = max(float(box_xywh[2]), float(box_xywh[3]))
    dist = np.hypot(pred[:, 0] - gt[:, 0], pred[:, 1] - gt[:, 1])
    correct = labelled & (dist <= alpha * norm)
    return int(correct.sum()), int(labelled.sum())


def pck(predictions: Sequence[KeypointPrediction], alpha: float = DEFAULT_ALPHA) -> dict[str, Any]:
    """``{"pck": share or None, "per_class": {class: share}, "labelled": n}`` over all predictions."""
    total = np.zeros(2, dtype=np.int64)
    per: dict[str, np.ndarray] = {}
    for p in predictions:
        c, n = pck_counts(p.keypoints[:, :2], p.gt_keypoints, p.box_xywh, alpha)
        total += (c, n)
        per.setdefault(p.category, np.zeros(2, dtype=np.int64))
        per[p.category] += (c, n)
    share = float(total[0] / total[1]) if total[1] else None
    return {
        "pck": share,
        "per_class": {k: float(v[0] / v[1]) for k, v in per.items() if v[1]},
        "labelled": int(total[1]),
    }


def oks_results(
    predictions: Sequence[KeypointPrediction], category_ids: Mapping[str, int]
) -> list[dict[str, Any]]:
    """COCO keypoint results (v = the keypoint's score, as COCO's own results carry it)."""
    out = []
    for p in predictions:
        if p.category not in category_ids:
            continue
        kp = p.keypoints
        flat = [float(v) for row in kp for v in (row[0], row[1], max(float(row[2]), 0.0))]
        out.append({
            "image_id": int(p.image_id), "category_id": int(category_ids[p.category]),
            "keypoints": flat, "score": p.score, "bbox": [float(v) for v in p.box_xywh],
        })
    return out


def oks_eval(
    gt: Mapping[str, Any],
    predictions: Sequence[KeypointPrediction],
    *,
    kpt_oks_sigmas: Mapping[str, Sequence[float]] | None = None,
) -> Any:
    """The project's COCO keypoint evaluation (an ``EvalResult``) of the predictions on ``gt``
    (COCO's -1 for a class without labelled keypoints)."""
    from workbench.evaluate.coco_eval import evaluate_coco

    cat_ids = {str(c["name"]): int(c["id"]) for c in gt.get("categories", [])}
    sigmas = {cat_ids[n]: list(v) for n, v in (kpt_oks_sigmas or {}).items() if n in cat_ids}
    return evaluate_coco(dict(gt), oks_results(predictions, cat_ids), iou_types=("keypoints",), kpt_oks_sigmas=sigmas)


def oks_ap(
    gt: Mapping[str, Any],
    predictions: Sequence[KeypointPrediction],
    *,
    kpt_oks_sigmas: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, float]:
    """COCO keypoint AP / AP50 / AP75 / AR on ``gt`` (a COCO dict); sigmas by class name."""
    if not any(a.get("num_keypoints", 0) for a in gt.get("annotations", [])):
        res = None  # nothing to score: 0 (as the instance task's validation gives without ground truth)
    else:
        res = oks_eval(gt, predictions, kpt_oks_sigmas=kpt_oks_sigmas)
    stats = res.types["keypoints"].stats if res is not None and "keypoints" in res.types else {}
    return {
        "oks_ap": max(float(stats.get("AP", 0.0)), 0.0),
        "oks_ap50": max(float(stats.get("AP50", 0.0)), 0.0),
        "oks_ap75": max(float(stats.get("AP75", 0.0)), 0.0),
        "oks_ar": max(float(stats.get("AR", 0.0)), 0.0),
    }
