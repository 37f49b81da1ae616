"""Evaluation use cases: score a run's model on a split of its project, compare two runs.

``evaluate_run`` predicts the split's images with the run's ``model.pt``, builds the ground truth as
the COCO export does (box-only instances as 4-corner polygons, so segm evaluation can read them),
runs :func:`workbench.evaluate.evaluate_coco` (boxes, masks, and keypoints when the project has a
schema) and the label-map metrics, and writes ``RUN_DIR/eval/<split>/`` with ``report.html``,
``metrics.json`` and ``detections.json`` (the COCO results, so that a comparison or a re-scoring
needs no second prediction). The summary lands in the run's metrics under ``eval.<split>``, with
the score at the best F1 (``best_f1``), which the Review page starts its threshold at. The split's
predictions are also stored as the run's pending predictions, so Review shows what the evaluation
saw without predicting again.

Keypoint sigmas: 0.05 per keypoint (COCO's person sigmas for a 17-keypoint schema), overridable in
the project setting ``kpt_oks_sigmas``: ``{class: [s1, ..., sK]}`` or ``{class: {keypoint: s}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.domain import (
    IGNORE_LABEL,
    AnnotatedImage,
    Category,
    Dataset,
    Instance,
    Progress,
    ValidationError,
    WorkbenchError,
)
from workbench.evaluate import EvalResult, evaluate_coco, label_map_metrics, write_report
from workbench.evaluate.matching import image_disagreement
from workbench.formats.coco.write import dataset_to_coco
from workbench.services.permissions import requires
from workbench.services.review import check_inference_options, run_model_path, store_run_predictions
from workbench.services.training import labelled_dataset
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo
from workbench.store.run_metrics import set_run_evaluation
from workbench.train.detector import architecture_settings, settings_diff

SIGMAS_SETTING = "kpt_oks_sigmas"
DEFAULT_SIGMA = 0.05
LABEL_MAP_SCORE = 0.5
AP_SCORE = 0.001
"""COCO practice: AP is computed over detections down to this score (100 per image)."""
DISPLAY_SCORE = 0.05
"""The evaluated predictions that Review gets as pending ones start here (its own slider goes on)."""
"""Predictions at or above this score draw the predicted label maps (and count in the confusion)."""
DETECTIONS_NAME = "detections.json"


@dataclass(frozen=True)
class Evaluation:
    """One evaluation as it lies on disk, for pages and comparisons."""

    run_id: int
    split: str
    out_dir: Path
    metrics: dict[str, Any]

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.html"


# ---------------------------------------------------------------------------------- pure helpers


def sigmas_from_settings(categories: Sequence[Category], setting: Any) -> dict[str, list[float] | None]:
    """Per keypoint class: its sigma vector, or None to let evaluate_coco choose (K = 17: COCO's).

    ``setting`` is the project's ``kpt_oks_sigmas``: per class a list of K sigmas or a mapping from
    keypoint name to sigma (the others keep 0.05). Bad values raise ValidationError naming them.
    """
    given = setting or {}
    if not isinstance(given, dict):
        raise ValidationError(
            f"project setting {SIGMAS_SETTING}: expected {{class: sigmas}}, got {type(given).__name__}"
        )
    out: dict[str, list[float] | None] = {}
    for cat in categories:
        if cat.keypoints is None:
            continue
        k = cat.keypoints.num_keypoints
        names = list(cat.keypoints.names)
        spec = given.get(cat.name)
        where = f"project setting {SIGMAS_SETTING}[{cat.name!r}]"
        if spec is None:
            out[cat.name] = None if k == 17 else [DEFAULT_SIGMA] * k
            continue
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - set(names))
            if unknown:
                raise ValidationError(f"{where}: unknown keypoint(s) {unknown}; {cat.name} has {names}")
            sig = [spec.get(n, DEFAULT_SIGMA) for n in names]
        elif isinstance(spec, list | tuple):
            if len(spec) != k:
                raise ValidationError(
                    f"{where}: needs {k} sigmas (one per keypoint {names}), got {len(spec)}"
                )
            sig = list(spec)
        else:
            raise ValidationError(f"{where}: a list of {k} numbers or {{keypoint: sigma}}, got {spec!r}")
        try:
            sig = [float(v) for v in sig]
        except (TypeError, ValueError):
            raise ValidationError(f"{where}: sigmas must be numbers, got {sig!r}") from None
        if not all(np.isfinite(v) and v > 0 for v in sig):
            raise ValidationError(f"{where}: sigmas must be positive, got {sig}")
        out[cat.name] = sig
    return out


def instances_to_results(
    predictions: dict[int, Sequence[Instance]], cat_ids: dict[str, int], keypoint_classes: set[str]
) -> tuple[list[dict[str, Any]], int]:
    """COCO result dicts (bbox, RLE segmentation, score; keypoints for keypoint classes) and the
    number of predictions dropped because their class is no longer in the project."""
    out: list[dict[str, Any]] = []
    dropped = 0
    for image_id in sorted(predictions):
        for inst in predictions[image_id]:
            cid = cat_ids.get(inst.category)
            if cid is None:
                dropped += 1
                continue
            row: dict[str, Any] = {
                "image_id": int(image_id),
                "category_id": int(cid),
                "score": float(inst.score if inst.score is not None else 1.0),
            }
            if inst.bbox_xywh is not None:
                row["bbox"] = [float(v) for v in inst.bbox_xywh]
            if inst.rle is not None:
                row["segmentation"] = inst.rle.to_coco()
            if inst.category in keypoint_classes and inst.keypoints is not None:
                row["keypoints"] = [float(v) for v in inst.keypoints]
            out.append(row)
    return out, dropped


def evaluate_results(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    *,
    kpt_oks_sigmas: dict[int, Sequence[float]] | None = None,
    score_threshold: float = LABEL_MAP_SCORE,
) -> EvalResult:
    """bbox + segm over every detection; keypoints over the detections of keypoint classes (they are
    the only ones that carry keypoints, and evaluate_coco wants the field on all or none)."""
    box_mask = [{k: v for k, v in r.items() if k != "keypoints"} for r in results]
    result = evaluate_coco(gt, box_mask, iou_types=("bbox", "segm"), score_threshold=score_threshold)
    kp_cats = {int(c["id"]) for c in gt["categories"] if c.get("keypoints")}
    if kp_cats:
        kp_dt = [r for r in results if r["category_id"] in kp_cats]
        if kp_dt and any("keypoints" not in r for r in kp_dt):
            result.notes.append(
                "keypoints: skipped, the model predicts no keypoints for the keypoint classes"
            )
        else:
            kp = evaluate_coco(
                gt,
                kp_dt,
                iou_types=("keypoints",),
                kpt_oks_sigmas=kpt_oks_sigmas,
                score_threshold=score_threshold,
            )
            result.types.update(kp.types)
            result.notes.extend(n for n in kp.notes if n not in result.notes)
    return result


def _ignore_mask(item: AnnotatedImage) -> np.ndarray:
    from workbench.geometry.masks import instance_to_mask

    mask = np.zeros((item.image.height, item.image.width), dtype=bool)
    for inst in item.instances:
        if inst.category == IGNORE_LABEL and inst.has_shape:
            mask |= instance_to_mask(inst, item.image.size_wh).astype(bool)
    return mask


def semantic_metrics(
    ds: Dataset, predictions: dict[int, Sequence[Instance]], *, min_score: float = LABEL_MAP_SCORE
) -> dict[str, Any]:
    """Label-map metrics: per-class binary maps of the ground truth against those of the predictions
    scoring at least ``min_score``, one image at a time (memory stays one image)."""
    from workbench.formats.labelmaps import binary_label_maps, label_classes

    classes = label_classes(ds.categories)
    known = {c.name for c in classes}

    def gt_maps() -> Iterator[np.ndarray]:
        for it in ds.items:
            yield binary_label_maps(it, ds.categories)

    def pred_maps() -> Iterator[np.ndarray]:
        for it in ds.items:
            preds = [
                i
                for i in predictions.get(int(it.image.id or 0), ())
                if i.category in known and (i.score if i.score is not None else 1.0) >= min_score
            ]
            yield binary_label_maps(AnnotatedImage(image=it.image, instances=tuple(preds)), ds.categories)

    def ignores() -> Iterator[np.ndarray]:
        for it in ds.items:
            yield _ignore_mask(it)

    sem = label_map_metrics(gt_maps(), pred_maps(), [c.name for c in classes], ignore=ignores())
    sem["score_threshold"] = min_score
    return sem


def best_f1(ds: Dataset, predictions: dict[int, Sequence[Instance]]) -> dict[str, float] | None:
    """The score threshold with the best F1 over the dataset, by the Review page's matching (mask IoU
    >= 0.5, same class, greedy by score), with its precision and recall; None without predictions or
    ground truth. Greedy matching by score means the top-k predictions match as they do among all."""
    hits: list[tuple[float, bool]] = []
    num_gt = 0
    for it in ds.items:
        gts = [g for g in it.instances if g.category != IGNORE_LABEL and not g.iscrowd]
        num_gt += len(gts)
        preds = list(predictions.get(int(it.image.id or 0), ()))
        if not preds:
            continue
        verdicts = image_disagreement(preds, list(it.instances), it.image.size_wh).verdicts
        hits.extend(
            (float(p.score if p.score is not None else 1.0), v.kind == "true_positive")
            for p, v in zip(preds, verdicts, strict=True)
        )
    if not hits or not num_gt:
        return None
    hits.sort(key=lambda h: -h[0])
    best: dict[str, float] | None = None
    tp = 0
    for k, (score, hit) in enumerate(hits, start=1):
        tp += hit
        if k < len(hits) and hits[k][0] == score:
            continue  # equal scores pass a threshold together
        f1 = 2 * tp / (k + num_gt)
        if best is None or f1 > best["f1"]:
            best = {"score": score, "f1": f1, "precision": tp / k, "recall": tp / num_gt}
    return best


def summary_of(result: EvalResult, semantic: dict[str, Any] | None) -> dict[str, Any]:
    """The few numbers a run row keeps (the full report is in metrics.json)."""
    out: dict[str, Any] = {t: {k: float(v) for k, v in tr.stats.items()} for t, tr in result.types.items()}
    out["num_images"] = result.num_images
    out["num_detections"] = result.num_detections
    if semantic is not None:
        out["mean_iou"] = semantic.get("mean_iou")
        out["pixel_accuracy"] = semantic.get("pixel_accuracy")
    return out


# -------------------------------------------------------------------------------------------- I/O


def _run_info(ws: Workspace, slug: str, run_id: int) -> run_repo.RunInfo:
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        info = run_repo.get_run(s, run_id)
    if info.project_id != pid:
        raise ValidationError(f"run {run_id} belongs to another project, not {slug!r}")
    return info


def _ground_truth(ws: Workspace, slug: str, split: str) -> tuple[Dataset, dict[str, Any]]:
    ds = labelled_dataset(ws, slug, [split])
    if not ds.items:
        raise ValidationError(
            f"project {slug!r} has no labelled images in split {split!r}; assign splits (`workbench split`, or the Dataset page)"
        )
    return ds, dataset_to_coco(ds, box_only_as_polygon=True)


def _sigmas_by_id(ws: Workspace, slug: str, ds: Dataset, gt: dict[str, Any]) -> dict[int, list[float]]:
    with ws.store.transaction() as s:
        setting = project_repo.project_settings(s, slug).get(SIGMAS_SETTING)
    by_name = sigmas_from_settings(ds.categories, setting)
    ids = {c["name"]: int(c["id"]) for c in gt["categories"]}
    return {ids[n]: v for n, v in by_name.items() if v is not None and n in ids}


@requires("project.read")
def eval_dir(ws: Workspace, slug: str, run_id: int, split: str) -> Path:
    return run_model_path(ws, slug, run_id).parent / "eval" / split


@requires("train")
def predict_dataset(
    ws: Workspace,
    slug: str,
    model_path: Path,
    ds: Dataset,
    *,
    score_threshold: float,
    device: str = "cpu",
    progress: Progress = None,
    chunk_size: int = 8,
) -> dict[int, list[Instance]]:
    from workbench.train.predict import Predictor

    predictor = Predictor(model_path, device=device)
    project_dir = ws.project_dir(slug)
    records = [
        replace(it.image, path=str(project_dir / it.image.path)) if it.image.path else it.image
        for it in ds.items
    ]
    out: dict[int, list[Instance]] = {}
    for start in range(0, len(records), chunk_size):
        part = records[start : start + chunk_size]
        out.update(predictor.predict_records(part, score_threshold=score_threshold))
        if progress:
            progress(min(start + chunk_size, len(records)), len(records))
    return out


@requires("train")
def evaluate_run(
    ws: Workspace,
    slug: str,
    run_id: int,
    *,
    split: str = "val",
    score_threshold: float = AP_SCORE,
    progress: Progress = None,
    device: str = "cpu",
) -> Path:
    """Predict the split with the run's model, evaluate, write the report; return report.html's path."""
    check_inference_options(device, score_threshold)
    info = _run_info(ws, slug, run_id)
    model_path = run_model_path(ws, slug, run_id)
    from workbench.services import pose

    if pose.is_heatmap_run_model(model_path):  # top-down keypoints on the ground-truth boxes
        return pose.evaluate_run(ws, slug, run_id, split=split, device=device, progress=progress)
    ds, gt = _ground_truth(ws, slug, split)
    preds = predict_dataset(
        ws, slug, model_path, ds, score_threshold=score_threshold, device=device, progress=progress
    )
    cat_ids = {c["name"]: int(c["id"]) for c in gt["categories"]}
    kp_classes = {c["name"] for c in gt["categories"] if c.get("keypoints")}
    results, dropped = instances_to_results(preds, cat_ids, kp_classes)
    result = evaluate_results(gt, results, kpt_oks_sigmas=_sigmas_by_id(ws, slug, ds, gt))
    if dropped:
        result.notes.append(f"{dropped} predictions of classes no longer in the project were left out")
    result.notes.append(f"predictions with score >= {score_threshold} evaluated")
    semantic = semantic_metrics(ds, preds)
    out_dir = model_path.parent / "eval" / split
    report = write_report(
        result,
        out_dir,
        title=f"Run {run_id} · {info.name} · {split}",
        semantic=semantic,
        extra={DETECTIONS_NAME: json.dumps(results).encode("utf-8")},
        split=split,
        selected_on="val",
        settings=architecture_settings(info.config or {}),
    )
    summary = summary_of(result, semantic)
    known = set(cat_ids)
    stored = store_run_predictions(
        ws,
        slug,
        run_id,
        {
            i: [p for p in ps if p.category in known and (p.score is None or p.score >= DISPLAY_SCORE)]
            for i, ps in preds.items()
        },
    )
    summary.update(
        report=str(report),
        score_threshold=score_threshold,
        evaluated_at=time.time(),
        best_f1=best_f1(ds, preds),
        predictions_stored=stored.predictions,
    )
    with ws.store.transaction() as s:
        set_run_evaluation(s, run_id, split, summary)
    return report


@requires("project.read")
def load_evaluation(ws: Workspace, slug: str, run_id: int, split: str) -> Evaluation | None:
    """The evaluation written for the run and split, or None when it was never run."""
    try:
        out_dir = eval_dir(ws, slug, run_id, split)
    except WorkbenchError:  # no model file: never evaluated
        return None
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return Evaluation(run_id=run_id, split=split, out_dir=out_dir, metrics=metrics)


def _rescore(
    ws: Workspace, slug: str, run_id: int, split: str, ds: Dataset, gt: dict[str, Any]
) -> EvalResult:
    """The run's stored detections against today's ground truth (evaluating first if never done)."""
    path = eval_dir(ws, slug, run_id, split) / DETECTIONS_NAME
    if not path.exists():
        evaluate_run(ws, slug, run_id, split=split)
    results = json.loads(path.read_text())
    keep = {int(im["id"]) for im in gt["images"]}
    cats = {int(c["id"]) for c in gt["categories"]}
    results = [r for r in results if r["image_id"] in keep and r["category_id"] in cats]
    return evaluate_results(gt, results, kpt_oks_sigmas=_sigmas_by_id(ws, slug, ds, gt))


@requires("project.read")
def compare_runs(ws: Workspace, slug: str, run_a: int, run_b: int, split: str = "val") -> Path:
    """Side-by-side report of run A against run B (deltas A - B) on the same ground truth; written
    to ``RUN_A/eval/<split>/compare-<B>/``. Returns the report's path."""
    if run_a == run_b:
        raise ValidationError("pick two different runs to compare")
    info_a, info_b = _run_info(ws, slug, run_a), _run_info(ws, slug, run_b)
    ds, gt = _ground_truth(ws, slug, split)
    res_a = _rescore(ws, slug, run_a, split, ds, gt)
    res_b = _rescore(ws, slug, run_b, split, ds, gt)
    out_dir = eval_dir(ws, slug, run_a, split) / f"compare-{run_b}"
    title = f"Run {run_a} ({info_a.name}) vs run {run_b} ({info_b.name}) · {split}"
    return write_report(res_a, out_dir, title=title, compare=res_b, settings=architecture_settings(info_a.config or {}),
                        compare_settings=architecture_settings(info_b.config or {}))


@requires("project.read")
def compare_settings(ws: Workspace, slug: str, run_a: int, run_b: int) -> list[dict[str, Any]]:
    """Rows (setting, A, B, differs) of two runs' architecture settings, the differing ones first."""
    return settings_diff(_run_info(ws, slug, run_a).config or {}, _run_info(ws, slug, run_b).config or {})


def compare_summaries(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (metric, A, B, delta) of two metrics.json dicts, for a side-by-side table."""
    rows: list[dict[str, Any]] = []
    for t in ("bbox", "segm", "keypoints"):
        sa = (a.get("types", {}).get(t) or {}).get("stats", {})
        sb = (b.get("types", {}).get(t) or {}).get("stats", {})
        for k in dict.fromkeys([*sa, *sb]):
            va, vb = sa.get(k), sb.get(k)
            ok = va is not None and vb is not None and va >= 0 and vb >= 0
            rows.append({"metric": f"{t} {k}", "A": va, "B": vb, "delta": (va - vb) if ok else None})
    for k in ("mean_iou", "pixel_accuracy"):
        va, vb = (a.get("semantic") or {}).get(k), (b.get("semantic") or {}).get(k)
        if va is not None or vb is not None:
            rows.append(
                {
                    "metric": f"label maps {k}",
                    "A": va,
                    "B": vb,
                    "delta": (va - vb) if va is not None and vb is not None else None,
                }
            )
    return rows
