"""Evaluate any COCO results file against a COCO ground-truth file (``workbench eval-coco``).

A drop-in for pycocotools / faster-coco-eval users: the results list is read as ``COCO.loadRes``
reads it whole (areas from the field of the first result, so a list with boxes and masks buckets
masks by their box area, as pycocotools does), and the summary numbers equal ``COCOeval``'s on the
same two files. The report is the one a run's evaluation writes (``evaluate.write_report``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.domain import ValidationError
from workbench.evaluate import EvalResult, evaluate_coco, write_report
from workbench.evaluate.coco_eval import IOU_TYPES, loadres_branch
from workbench.utils.jsonfile import read_json_file

__all__ = ["FileEvaluation", "evaluate_coco_files", "default_report_dir", "parse_iou_types"]

_FIELDS = {"bbox": "bbox", "segm": "segmentation", "keypoints": "keypoints"}


@dataclass(frozen=True)
class FileEvaluation:
    result: EvalResult
    report: Path

    def stats(self) -> dict[str, dict[str, float]]:
        """Per IoU type, COCOeval's summary stats by name (12; keypoints 10)."""
        return {t: dict(tr.stats) for t, tr in self.result.types.items()}


def parse_iou_types(text: str | None) -> tuple[str, ...] | None:
    """``"bbox,segm"`` -> ``("bbox", "segm")``; None (infer from the results) for None."""
    if text is None:
        return None
    types = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in types if t not in IOU_TYPES]
    if bad or not types:
        raise ValidationError(f"--iou-types takes some of {', '.join(IOU_TYPES)} (comma-separated), got {text!r}")
    return types


def default_report_dir(results_path: Path) -> Path:
    """``dets.json`` -> ``dets_eval/`` beside it."""
    return results_path.with_name(f"{results_path.stem}_eval")


def _infer_types(results: list[dict[str, Any]]) -> tuple[str, ...]:
    """The types pycocotools could evaluate on this list: the fields its results carry."""
    return tuple(t for t in IOU_TYPES if any(r.get(_FIELDS[t]) not in (None, []) for r in results))


def _read(path: Path) -> Any:
    return read_json_file(path, error=ValidationError)


def evaluate_coco_files(
    gt_path: Path,
    results_path: Path,
    *,
    iou_types: Sequence[str] | None = None,
    sigmas: Sequence[float] | None = None,
    out_dir: Path | None = None,
) -> FileEvaluation:
    """Evaluate ``results_path`` (a COCO results list) on ``gt_path``; write the HTML report.

    ``sigmas`` (one per keypoint) apply to every keypoint category, as COCOeval's one
    ``kpt_oks_sigmas`` vector does; without them a 17-keypoint category gets COCO's person sigmas
    (COCOeval's default) and others 0.05 per keypoint.
    """
    gt_path, results_path = Path(gt_path), Path(results_path)
    gt = _read(gt_path)
    if not isinstance(gt, dict) or not all(isinstance(gt.get(k), list) for k in ("images", "categories")):
        raise ValidationError(f"{gt_path}: not a COCO ground-truth file (needs the lists 'images' and 'categories')")
    gt = {**gt, "annotations": gt.get("annotations") or []}
    results = _read(results_path)
    if isinstance(results, dict) and isinstance(results.get("annotations"), list):
        raise ValidationError(
            f"{results_path}: a COCO dataset file, not a results list; the results are a JSON list of "
            "{image_id, category_id, score, bbox | segmentation | keypoints}"
        )
    if not isinstance(results, list):
        raise ValidationError(f"{results_path}: a COCO results file is a JSON list, got {type(results).__name__}")
    if any(not isinstance(r, dict) for r in results):
        raise ValidationError(f"{results_path}: every result must be an object")
    types = tuple(iou_types) if iou_types else _infer_types(results) or ("bbox",)
    kpt_sigmas = None
    if sigmas is not None:
        kp_cats = [c for c in gt["categories"] if isinstance(c, dict) and c.get("keypoints")]
        for c in kp_cats:
            if len(c["keypoints"]) != len(sigmas):
                raise ValidationError(
                    f"--sigmas gives {len(sigmas)} values but category {c.get('name')!r} of {gt_path} has "
                    f"{len(c['keypoints'])} keypoints"
                )
        kpt_sigmas = {int(c["id"]): list(sigmas) for c in kp_cats}
    try:
        loadres_branch(results)
        result = evaluate_coco(gt, results, iou_types=types, kpt_oks_sigmas=kpt_sigmas, as_loadres=True)
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValidationError(f"{results_path} on {gt_path}: {detail}") from None
    out = Path(out_dir) if out_dir is not None else default_report_dir(results_path)
    report = write_report(
        result,
        out,
        title=f"{results_path.name} on {gt_path.name}",
        extra={"stats.json": json.dumps({t: tr.stats for t, tr in result.types.items()}).encode("utf-8")},
    )
    return FileEvaluation(result, report)
