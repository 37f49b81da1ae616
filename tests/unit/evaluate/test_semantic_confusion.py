"""Index-map metrics (confusion matrix, IoU, accuracies, fwIoU) against a plain loop over pixels."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.domain import ValidationError
from workbench.evaluate.semantic import confusion_matrix, confusion_metrics


def reference(gts: list[np.ndarray], preds: list[np.ndarray], n: int) -> dict[str, object]:
    """The textbook definitions, one pixel at a time."""
    cm = [[0] * n for _ in range(n)]
    for g, p in zip(gts, preds, strict=True):
        for gv, pv in zip(g.ravel().tolist(), p.ravel().tolist(), strict=True):
            if gv != 255:
                cm[gv][pv] += 1
    total = sum(map(sum, cm))
    iou, acc, freq = [], [], []
    for k in range(n):
        tp = cm[k][k]
        gt_k = sum(cm[k])
        pred_k = sum(cm[r][k] for r in range(n))
        union = gt_k + pred_k - tp
        iou.append(tp / union if union else None)
        acc.append(tp / gt_k if gt_k else None)
        freq.append(gt_k / total)
    cls_iou = [v for v in iou[1:] if v is not None]
    cls_acc = [v for v in acc[1:] if v is not None]
    return {
        "cm": cm,
        "iou": iou,
        "mean_iou": sum(cls_iou) / len(cls_iou),
        "mean_iou_bg": sum(v for v in iou if v is not None) / len([v for v in iou if v is not None]),
        "pixel_accuracy": sum(cm[k][k] for k in range(n)) / total,
        "mean_class_accuracy": sum(cls_acc) / len(cls_acc),
        "fw_iou": sum(f * v for f, v in zip(freq, iou, strict=True) if v is not None),
    }


def test_metrics_equal_the_pixel_loop_on_hand_made_maps() -> None:
    g1 = np.array([[0, 1, 1, 2], [0, 1, 255, 2], [3, 3, 0, 0]], np.uint8)
    p1 = np.array([[0, 1, 2, 2], [1, 1, 3, 2], [3, 0, 0, 0]], np.uint8)  # 255 in gt: its prediction is not counted
    g2 = np.array([[2, 2], [0, 255]], np.uint8)
    p2 = np.array([[2, 0], [0, 1]], np.uint8)
    cm = confusion_matrix(g1, p1, 5) + confusion_matrix(g2, p2, 5)
    got = confusion_metrics(cm, ["a", "b", "c", "d"])  # class d (label 4) occurs nowhere
    ref = reference([g1, g2], [p1, p2], 5)
    assert got["confusion"] == ref["cm"]
    assert got["num_pixels"] == 14
    for k, name in enumerate(got["labels"]):
        assert got["per_class"][name]["iou"] == (pytest.approx(ref["iou"][k]) if ref["iou"][k] is not None else None)
    assert got["per_class"]["d"]["iou"] is None
    assert got["mean_iou"] == pytest.approx(ref["mean_iou"])
    assert got["mean_iou_with_background"] == pytest.approx(ref["mean_iou_bg"])
    assert got["background_counted"] is False and got["mean_iou"] != got["mean_iou_with_background"]
    assert got["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"])
    assert got["mean_class_accuracy"] == pytest.approx(ref["mean_class_accuracy"])
    assert got["fw_iou"] == pytest.approx(ref["fw_iou"])


def test_random_maps_agree_with_the_loop() -> None:
    rng = np.random.default_rng(3)
    gts = [rng.choice([0, 1, 2, 255], size=(7, 9)).astype(np.uint8) for _ in range(3)]
    preds = [rng.integers(0, 3, size=(7, 9)).astype(np.uint8) for _ in range(3)]
    cm = sum(confusion_matrix(g, p, 3) for g, p in zip(gts, preds, strict=True))
    got, ref = confusion_metrics(cm, ["a", "b"]), reference(gts, preds, 3)
    assert got["confusion"] == ref["cm"]
    assert got["fw_iou"] == pytest.approx(ref["fw_iou"]) and got["mean_iou"] == pytest.approx(ref["mean_iou"])


def test_bad_maps_are_refused_in_one_line() -> None:
    with pytest.raises(ValidationError, match="outside 0..2"):
        confusion_matrix(np.array([[3]]), np.array([[0]]), 3)
    with pytest.raises(ValidationError, match="prediction of"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValidationError, match="expected 3 x 3"):
        confusion_metrics(np.zeros((2, 2)), ["a", "b"])
