"""Keypoint-heatmap runs (task keypoints-heatmap): predict, evaluate, accept keypoints onto instances.

A heatmap model is top-down: it predicts the keypoints of a box it is given. Here the boxes are the
image's stored annotations of the model's keypoint classes, so ``predict`` stores, per such
annotation, a prediction with the same class and box and the predicted keypoints (Review shows
them like any run's), and accepting one (:func:`accept_keypoints`) writes its keypoints onto the
annotation it was predicted for instead of adding a second instance.

``evaluate`` scores the split on its ground-truth boxes: PCK@alpha (of the box's longer side) and
COCO keypoint AP (OKS, the project's ``kpt_oks_sigmas``), written as ``eval/<split>/report.html``,
``metrics.json`` (the COCO keypoint result) and ``pck.json``, with the summary in the run's metrics.
:mod:`workbench.services.review` and :mod:`workbench.services.evaluation` hand heatmap runs here.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from workbench.domain import (
    Accepted,
    Dataset,
    ImageRecord,
    Instance,
    Progress,
    ValidationError,
    WorkbenchError,
)
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import annotations as annotation_repo
from workbench.store import predictions as pstore
from workbench.store import projects as project_repo
from workbench.store.categories import list_categories

BOX_TOLERANCE_PX = 1e-3
"""A prediction belongs to the annotation of its class whose box it carries (to this tolerance)."""
CHUNK = 16


TINY_CPU_HEATMAP = {"input_size": [64, 64], "stacks": 2, "depth": 2, "channels": 32, "sigma": 4.0}
"""The CPU default: a small Hourglass on 64 x 64 crops (learns the demo's triangles in a minute)."""


def heatmap_defaults(cuda: bool, arch: str | None = None) -> dict[str, Any]:
    """The keypoints-heatmap task's training defaults: AdamW at 1e-3 (SimpleBaseline's; 2e-3 for the
    small CPU model, which reached the demo's PCK in half the epochs), no
    pretrained weights (the Hourglass has none; a U-Net with an ``encoder`` may take ImageNet's);
    on a GPU the Hourglass of :class:`HeatmapConfig`'s defaults (2 stacks on 192 x 256 crops), on a
    CPU :data:`TINY_CPU_HEATMAP`."""
    out: dict[str, Any] = {
        "arch": arch or "hourglass", "weights": "none", "optimizer": "adamw", "lr": 1e-3 if cuda else 2e-3, "lr_scaling": "none",
        "batch_size": 32 if cuda else 8, "augmentation": "none",
    }
    if not cuda:
        out["heatmap"] = dict(TINY_CPU_HEATMAP) if (arch or "hourglass") == "hourglass" else {
            "input_size": [64, 64], "unet_levels": 3, "channels": 16, "sigma": 4.0}
    return out


def is_heatmap_run_model(path: Path) -> bool:
    """Whether a run's model.pt is a keypoint-heatmap model (read with weights_only)."""
    from workbench.train.heatmap.predict import is_heatmap_model

    return is_heatmap_model(path)


def _absolute(ws: Workspace, slug: str, rec: ImageRecord) -> ImageRecord:
    return replace(rec, path=str(ws.project_dir(slug) / rec.path)) if rec.path else rec


@requires("train")
def predict_images(
    ws: Workspace,
    slug: str,
    run_id: int,
    records: list[ImageRecord],
    *,
    device: str = "cpu",
    progress: Progress = None,
) -> tuple[int, int]:
    """Predict keypoints for the keypoint-class annotations of the images and store them as the
    run's pending predictions, a chunk per transaction; returns (images, predictions)."""
    from workbench.services.review import run_model_path, store_run_predictions
    from workbench.train.heatmap.predict import HeatmapPredictor

    predictor = HeatmapPredictor(run_model_path(ws, slug, run_id), device=device)
    n_img = n_pred = 0
    for start in range(0, len(records), CHUNK):
        part = [_absolute(ws, slug, r) for r in records[start : start + CHUNK]]
        with ws.store.transaction() as s:
            instances = {int(r.id): annotation_repo.load_instances(s, int(r.id)) for r in part}  # type: ignore[arg-type]
        got = store_run_predictions(ws, slug, run_id, predictor.predict_records(part, instances))
        n_img += got.images
        n_pred += got.predictions
        if progress:
            progress(min(start + CHUNK, len(records)), len(records))
    return n_img, n_pred


@requires("train")
def evaluate_run(
    ws: Workspace, slug: str, run_id: int, *, split: str = "val", device: str = "cpu", progress: Progress = None
) -> Path:
    """Predict the split's ground-truth boxes, score PCK and OKS AP, write the report; its path."""
    from workbench.evaluate import write_report
    from workbench.services.evaluation import _ground_truth, _run_info, _sigmas_by_id
    from workbench.services.review import run_model_path, store_run_predictions
    from workbench.store.run_metrics import set_run_evaluation
    from workbench.train.heatmap.metrics import KeypointPrediction, oks_eval, pck
    from workbench.train.heatmap.predict import HeatmapPredictor

    info = _run_info(ws, slug, run_id)
    model_path = run_model_path(ws, slug, run_id)
    ds, gt = _ground_truth(ws, slug, split)
    predictor = HeatmapPredictor(model_path, device=device)
    preds = _predict_dataset(ws, slug, predictor, ds, progress)
    kp_preds: list[KeypointPrediction] = []
    for image_id, inst_list in preds.items():
        for gt_inst, pred in inst_list:
            kp_preds.append(KeypointPrediction(
                image_id, gt_inst.category, pred.bbox_xywh,  # type: ignore[arg-type]
                _keypoint_array(gt_inst), _keypoint_array(pred, scores=True),
            ))
    alpha = predictor.cfg.pck_alpha
    p = pck(kp_preds, alpha)
    by_id = _sigmas_by_id(ws, slug, ds, gt)
    names = {int(c["id"]): c["name"] for c in gt["categories"]}
    sigmas = {names[i]: v for i, v in by_id.items()}
    result = oks_eval(gt, kp_preds, kpt_oks_sigmas=sigmas)
    if "keypoints" not in result.types:
        raise ValidationError(f"project {slug!r} has no class with a keypoint schema to evaluate")
    if not p["labelled"]:
        result.notes.append(f"split {split!r} has no labelled keypoint on a box: PCK and AP are not defined (-1)")
    result.notes.append(
        f"top-down on ground-truth boxes: {len(kp_preds)} instances; PCK@{alpha:g} (of the box's longer side) "
        f"{'-' if p['pck'] is None else format(p['pck'], '.3f')} over {p['labelled']} labelled keypoints"
    )
    out_dir = model_path.parent / "eval" / split
    report = write_report(
        result, out_dir, title=f"Run {run_id} · {info.name} · {split} · keypoints",
        extra={"pck.json": json.dumps({"alpha": alpha, "normaliser": "max(box w, box h)", **p}, indent=1).encode()},
        split=split, selected_on="val",
    )
    stored = store_run_predictions(ws, slug, run_id, {i: [pr for _, pr in v] for i, v in preds.items()})
    stats = result.types["keypoints"].stats
    summary: dict[str, Any] = {
        "keypoints": {k: float(v) for k, v in stats.items()}, "pck": p["pck"], "pck_per_class": p["per_class"],
        "pck_alpha": alpha, "num_images": result.num_images, "num_detections": result.num_detections,
        "report": str(report), "evaluated_at": time.time(), "predictions_stored": stored.predictions,
    }
    with ws.store.transaction() as s:
        set_run_evaluation(s, run_id, split, summary)
    return report


def _predict_dataset(
    ws: Workspace, slug: str, predictor: Any, ds: Dataset, progress: Progress
) -> dict[int, list[tuple[Instance, Instance]]]:
    """Per image id, (ground-truth instance, prediction) pairs for the instances the model covers."""
    out: dict[int, list[tuple[Instance, Instance]]] = {}
    items = ds.items
    for start in range(0, len(items), CHUNK):
        part = items[start : start + CHUNK]
        records = [_absolute(ws, slug, it.image) for it in part]
        got = predictor.predict_records(records, {int(it.image.id): it.instances for it in part})  # type: ignore[arg-type]
        for it in part:
            gts = [inst for inst, _ in predictor.boxes_of(it.instances)]
            out[int(it.image.id)] = list(zip(gts, got[int(it.image.id)], strict=True))  # type: ignore[arg-type]
        if progress:
            progress(min(start + CHUNK, len(items)), len(items))
    return out


def _keypoint_array(inst: Instance, *, scores: bool = False) -> Any:
    import numpy as np

    kp = np.asarray(inst.keypoints or (), dtype=np.float64).reshape(-1, 3)
    if scores:  # stored predictions carry v = 2; the instance's score stands for each keypoint's
        kp = kp.copy()
        kp[:, 2] = float(inst.score or 0.0)
    return kp


HEATMAP_TASKS = ("keypoints-heatmap", "keypoints")


@requires("project.read", run="run_id")
def is_heatmap_run(ws: Workspace, run_id: int) -> bool:
    """Whether the run trains a heatmap model (its stored config's task; no model file read)."""
    from workbench.store.runs import get_run

    with ws.store.transaction() as s:
        return str((get_run(s, run_id).config or {}).get("task", "instance")) in HEATMAP_TASKS


@requires("project.read")
def prediction_run(ws: Workspace, slug: str, prediction_id: int) -> int:
    with ws.store.transaction() as s:
        return int(pstore.get_prediction(s, project_repo.project_id(s, slug), prediction_id).run_id)


@requires("annotate", image="image_id")
def accept_all_keypoints(ws: Workspace, slug: str, image_id: int, run_id: int, threshold: float) -> Accepted:
    """Every pending prediction of the run on the image scoring >= ``threshold``, onto its annotation."""
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        preds = pstore.list_predictions(s, pid, run_id=run_id, image_id=image_id, status="pending", min_score=threshold)
    ids: list[int] = []
    for p in preds:
        ids += accept_keypoints(ws, slug, int(p.id)).annotation_ids  # type: ignore[arg-type]
    return Accepted(annotation_ids=ids, notes=[])


@requires("annotate", prediction="prediction_id")
def accept_keypoints(ws: Workspace, slug: str, prediction_id: int) -> Accepted:
    """Write a heatmap prediction's keypoints onto the annotation it was predicted for (same image,
    class and box); the prediction is then accepted as that annotation. Without such an annotation
    (deleted, or its box moved since) it is refused in one line."""
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        pred = pstore.get_prediction(s, pid, prediction_id)
        inst = pred.instance
        if inst.keypoints is None or inst.bbox_xywh is None:
            raise ValidationError(f"prediction {prediction_id} has no keypoints to accept")
        target = None
        for ann in annotation_repo.load_instances(s, pred.image_id):
            if ann.category == inst.category and ann.bbox_xywh is not None and all(
                abs(a - b) <= BOX_TOLERANCE_PX for a, b in zip(ann.bbox_xywh, inst.bbox_xywh, strict=True)
            ):
                target = ann
                break
        if target is None or target.id is None:
            raise WorkbenchError(
                f"prediction {prediction_id}: no {inst.category} annotation with its box on the image any more "
                "(deleted or moved since the prediction); predict again"
            )
        k = next((c.keypoints.num_keypoints for c in list_categories(s, pid) if c.name == inst.category and c.keypoints), 0)
        if len(inst.keypoints) != 3 * k:
            raise WorkbenchError(
                f"prediction {prediction_id}: class {inst.category!r} has {k} keypoints now, the prediction "
                f"{len(inst.keypoints) // 3}; predict again"
            )
        annotation_repo.set_annotation_keypoints(s, int(target.id), list(inst.keypoints))
        pstore.mark_accepted_onto(s, prediction_id, int(target.id), pred.image_id)
    return Accepted(annotation_ids=[int(target.id)], notes=[])
