"""Evaluation: COCOeval-equal bbox/segm/keypoint metrics, label-map metrics and the HTML report."""

from __future__ import annotations

from workbench.evaluate.coco_eval import (
    COCO_PERSON_SIGMAS,
    ConfusionMatrix,
    EvalResult,
    TypeResult,
    evaluate_coco,
    keypoint_sigmas,
    stat_names,
)
from workbench.evaluate.report import write_report
from workbench.evaluate.semantic import label_map_metrics

__all__ = [
    "COCO_PERSON_SIGMAS",
    "ConfusionMatrix",
    "EvalResult",
    "TypeResult",
    "evaluate_coco",
    "keypoint_sigmas",
    "label_map_metrics",
    "stat_names",
    "write_report",
]
