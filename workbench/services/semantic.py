"""Semantic runs: predicted label maps (as ``workbench export labelmaps`` lays out ``index/``) and the
evaluation of a run on a split (per-class IoU, mean IoU, accuracies, fwIoU, the pixel confusion).

Class ids are the project's, as the export numbers them (0 background, the c-th class c, 255 ignore):
the model's classes are matched by name, so a class added to the project after training gets no
pixel and one removed since is predicted as background. The ground truth comes through the same
label-map code the export and the trainer use (:func:`workbench.formats.labelmaps.semantic_index_map`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.domain import AnnotatedImage, Dataset, ImageRecord, Instance, Progress, ValidationError
from workbench.evaluate.semantic import confusion_matrix, confusion_metrics
from workbench.formats.labelmaps import export_index_maps, label_classes, semantic_index_map
from workbench.services.export import project_dataset
from workbench.services.permissions import requires
from workbench.services.review import (
    StoredPredictions,
    check_inference_options,
    run_model_path,
    store_run_predictions,
)
from workbench.services.training import labelled_dataset
from workbench.services.workspace import Workspace
from workbench.store import runs as run_repo
from workbench.store.run_metrics import set_run_evaluation
from workbench.utils.atomic import atomic_write


@requires("project.read", run="run_id")
def run_task(ws: Workspace, run_id: int) -> str:
    """The task a run trains (its config's ``task``; runs from before tasks existed: instance)."""
    with ws.store.transaction() as s:
        info = run_repo.get_run(s, run_id)
    return str((info.config or {}).get("task") or "instance")


def semantic_defaults(cuda: bool, arch: str | None = None) -> dict[str, Any]:
    """The semantic task's defaults: a U-Net; on a GPU ResNet-34 with ImageNet weights at 512 px,
    on a CPU ResNet-18 from scratch at 256 px (the tiny configuration that learns the demo project
    in minutes). torchvision's archs take their COCO-VOC weights when they are on disk."""
    arch = arch or "unet"
    out: dict[str, Any] = {"arch": arch, "image_size": 512 if cuda else 256, "batch_size": 8 if cuda else 4}
    offline = os.environ.get("WORKBENCH_OFFLINE") == "1"
    if arch in ("unet", "pspnet"):
        out["encoder"] = "resnet34" if cuda else "resnet18"
        out["weights"] = "imagenet" if cuda and not offline else "none"
    else:
        from workbench.train.tasks.semantic_models import cached_semantic_weights

        out["weights"] = cached_semantic_weights(arch) or ("none" if offline or not cuda else "coco")
    return out


def _lookup(model_classes: Sequence[str], project_classes: Sequence[str]) -> np.ndarray:
    """Model label -> project label (by class name; unknown to the project: background)."""
    lut = np.zeros(256, np.uint8)
    lut[255] = 255
    where = {n: i + 1 for i, n in enumerate(project_classes)}
    for i, name in enumerate(model_classes):
        lut[i + 1] = where.get(name, 0)
    return lut


def _arrays(ws: Workspace, slug: str, records: Sequence[ImageRecord]):  # noqa: ANN202 - an iterator
    from workbench.images.decode import image_to_rgb, load_upright

    project_dir = ws.project_dir(slug)
    for rec in records:
        if not rec.path:
            raise ValidationError(f"{rec.file_name}: no image file to predict")
        path = Path(rec.path) if Path(rec.path).is_absolute() else project_dir / rec.path
        try:
            img = load_upright(path)
        except FileNotFoundError as exc:
            raise ValidationError(f"{rec.file_name}: image file {path} is missing") from exc
        arr = np.ascontiguousarray(np.asarray(image_to_rgb(img), dtype=np.uint8))
        if (arr.shape[1], arr.shape[0]) != (rec.width, rec.height):
            raise ValidationError(
                f"{rec.file_name}: the file is {arr.shape[1]}x{arr.shape[0]}, the store says {rec.width}x{rec.height}"
            )
        yield arr


MIN_COMPONENT_AREA = 16
"""Connected components of a predicted class below this many pixels become no instance."""


def components_to_instances(
    index_map: np.ndarray, class_names: Sequence[str], confidence: np.ndarray | None = None, *,
    min_area: int = MIN_COMPONENT_AREA,
) -> list[Instance]:
    """A predicted index map as instances: each 8-connected component of class c (value c + 1) with at
    least ``min_area`` pixels, as polygons, or RLE where it has holes (:func:`workbench.assist.shapes.
    mask_to_shape`); its score is the mean probability of its pixels (1.0 without ``confidence``)."""
    import cv2

    from workbench.assist.shapes import mask_to_shape

    out: list[Instance] = []
    for c, name in enumerate(class_names, start=1):
        mask = (np.asarray(index_map) == c).astype(np.uint8)
        if not mask.any():
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < min_area:
                continue
            comp = labels == k
            score = float(confidence[comp].mean()) if confidence is not None else 1.0
            shape = mask_to_shape(comp, score=score)
            if shape.empty:
                continue
            out.append(Instance(category=name, polygons=shape.polygons, rle=shape.rle, bbox_xywh=shape.bbox_xywh,
                                score=round(score, 6), source="predicted"))
    return out


@requires("train")
def predict_label_maps(
    ws: Workspace, slug: str, run_id: int, records: Sequence[ImageRecord], *, device: str = "cpu",
    progress: Progress = None, chunk_size: int = 8,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The run's predicted index map of each image (H x W uint8, the project's class ids) with the
    probability of each pixel's label."""
    from workbench.train.tasks.semantic import SemanticPredictor  # torch only when predicting

    check_inference_options(device, 0.5)
    predictor = SemanticPredictor(run_model_path(ws, slug, run_id), device=device)
    project = project_dataset(ws, slug, splits=[])
    lut = _lookup(predictor.schema.class_names, [c.name for c in label_classes(project.categories)])
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(records), chunk_size):
        part = records[start : start + chunk_size]
        out.extend((lut[m], conf) for m, conf in predictor.predict_with_confidence(_arrays(ws, slug, part)))
        if progress:
            progress(len(out), len(records))
    return out


@requires("train")
def predict_semantic(
    ws: Workspace, slug: str, run_id: int, records: Sequence[ImageRecord], out_dir: Path | None = None, *,
    min_area: int = MIN_COMPONENT_AREA, device: str = "cpu", progress: Progress = None,
) -> tuple[Path, StoredPredictions]:
    """Predict the images: the maps go to ``OUT/index/<stem>.png`` + ``classes.json`` (the export's
    layout, stems and ids; without ``out_dir`` the run folder's ``predicted/``), and their connected
    components (``min_area`` px and up) are stored as the run's pending predictions, so Review shows
    them and accepting one makes it an annotation. Returns (the folder, what was stored)."""
    if min_area < 1:
        raise ValidationError(f"the smallest component kept must be at least 1 pixel, got {min_area}")
    preds = predict_label_maps(ws, slug, run_id, records, device=device, progress=progress)
    project = project_dataset(ws, slug, splits=[])
    names = [c.name for c in label_classes(project.categories)]
    ds = Dataset(categories=project.categories, items=[AnnotatedImage(image=r) for r in records])
    target = Path(out_dir) if out_dir is not None else run_model_path(ws, slug, run_id).parent / "predicted"
    folder = export_index_maps(ds, [m for m, _ in preds], target, source=f"run {run_id}")
    found = {int(r.id): components_to_instances(m, names, conf, min_area=min_area)  # type: ignore[arg-type]
             for r, (m, conf) in zip(records, preds, strict=True)}
    return folder, store_run_predictions(ws, slug, run_id, found)


def _confusion_png(metrics: dict[str, Any]) -> str:
    """The row-normalised confusion matrix as a base64 PNG (what a reader looks at first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(metrics["confusion"], dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    labels = metrics["labels"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(labels), 1.0 + 0.5 * len(labels)))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def semantic_report_html(title: str, metrics: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_fmt(r['iou'])}</td><td>{_fmt(r['accuracy'])}</td>"
        f"<td>{r['gt_pixels']}</td><td>{r['pred_pixels']}</td></tr>"
        for name, r in metrics["per_class"].items()
    )
    head = (f"mean IoU {_fmt(metrics['mean_iou'])} (background not counted; with it "
            f"{_fmt(metrics['mean_iou_with_background'])}) · pixel accuracy {_fmt(metrics['pixel_accuracy'])} · "
            f"mean class accuracy {_fmt(metrics['mean_class_accuracy'])} · frequency-weighted IoU {_fmt(metrics['fw_iou'])}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{head}</p><p>{metrics['num_images']} images, {metrics['num_pixels']} "
        f"pixels counted (ignore pixels left out); the model was chosen on {html.escape(str(metrics.get('selected_on', 'val')))}.</p>"
        "<table><tr><th>class</th><th>IoU</th><th>accuracy</th><th>gt pixels</th><th>predicted pixels</th></tr>"
        f"{rows}</table><h2>Pixel confusion (rows: ground truth, normalised)</h2>"
        f"<img alt='confusion matrix' src='data:image/png;base64,{_confusion_png(metrics)}'></body></html>"
    )


@requires("train")
def evaluate_semantic_run(
    ws: Workspace, slug: str, run_id: int, *, split: str = "val", device: str = "cpu", progress: Progress = None
) -> Path:
    """Predict the split's labelled images, count the pixel confusion against their index maps and
    write ``eval/<split>/`` (metrics.json, report.html, the predicted maps under labelmaps/); the
    summary lands in the run's metrics under ``eval.<split>``. Returns report.html's path."""
    ds = labelled_dataset(ws, slug, [split])
    if not ds.items:
        raise ValidationError(f"project {slug!r} has no labelled images in split {split!r} to evaluate on")
    project_dir = ws.project_dir(slug)
    records = [replace(it.image, path=str(project_dir / it.image.path)) if it.image.path else it.image for it in ds.items]
    preds = [m for m, _ in predict_label_maps(ws, slug, run_id, records, device=device, progress=progress)]
    names = [c.name for c in label_classes(ds.categories)]
    cm = np.zeros((len(names) + 1,) * 2, np.int64)
    for item, pred in zip(ds.items, preds, strict=True):
        cm += confusion_matrix(semantic_index_map(item, ds.categories), pred, len(names) + 1)
    metrics = confusion_metrics(cm, names)
    metrics.update(task="semantic", split=split, num_images=len(ds.items), selected_on="val")
    out_dir = run_model_path(ws, slug, run_id).parent / "eval" / split
    out_dir.mkdir(parents=True, exist_ok=True)
    export_index_maps(ds, preds, out_dir / "labelmaps", source=f"run {run_id}")
    report = out_dir / "report.html"
    atomic_write(report, semantic_report_html(f"Run {run_id} · {split} · semantic", metrics).encode("utf-8"), fsync=False)
    summary = {k: metrics[k] for k in ("mean_iou", "mean_iou_with_background", "background_counted",
                                      "pixel_accuracy", "mean_class_accuracy", "fw_iou", "num_images")}
    summary.update(task="semantic", report=str(report), evaluated_at=time.time(),
                   iou={n: r["iou"] for n, r in metrics["per_class"].items()})
    with ws.store.transaction() as s:
        set_run_evaluation(s, run_id, split, summary)
    # last: a reader that sees metrics.json finds the report and the stored summary too
    atomic_write(out_dir / "metrics.json", json.dumps(metrics, indent=1).encode("utf-8"), fsync=False)
    return report


def task_choices() -> dict[str, str]:
    """The tasks a run can have (the registry's), with a few words each, for the Train page."""
    from workbench.train.tasks import TASKS

    return {name: spec.help or name for name, spec in TASKS.items()}


def semantic_arch_choices() -> dict[str, tuple[str, ...]]:
    """Per semantic arch, its encoders to pick from (empty: any segmentation-models-pytorch name)."""
    from workbench.train.tasks import SEMANTIC_ENCODERS, TASKS

    return {arch: SEMANTIC_ENCODERS.get(arch, ()) for arch in TASKS["semantic"].archs}


SMP_ENCODER_CHOICES = ("resnet18", "resnet34", "resnet50", "efficientnet-b0", "mobilenet_v2")
"""What the Train page offers for unet / pspnet (any smp encoder name works in a config file)."""


def _evaluation(ws: Workspace, slug: str, run_id: int, split: str) -> dict[str, Any]:
    """The run's semantic metrics on ``split``: its metrics.json, evaluated now when missing."""
    path = run_model_path(ws, slug, run_id).parent / "eval" / split / "metrics.json"
    if not path.exists():
        evaluate_semantic_run(ws, slug, run_id, split=split)
    metrics = json.loads(path.read_text())
    if metrics.get("task") != "semantic":
        raise ValidationError(f"run {run_id}'s evaluation on {split} is not a semantic one")
    return metrics


@requires("project.read")
def compare_semantic_runs(ws: Workspace, slug: str, run_a: int, run_b: int, split: str = "val") -> Path:
    """Two semantic runs side by side on the same split (deltas A - B), written to
    ``RUN_A/eval/<split>/compare-<B>/report.html``; either run is evaluated first where it was not."""
    if run_a == run_b:
        raise ValidationError("pick two different runs to compare")
    for rid in (run_a, run_b):
        if run_task(ws, rid) != "semantic":
            raise ValidationError(f"run {rid} is not a semantic run; compare semantic runs with each other")
    a, b = _evaluation(ws, slug, run_a, split), _evaluation(ws, slug, run_b, split)

    def row(label: str, va: float | None, vb: float | None) -> str:
        delta = "–" if va is None or vb is None else f"{va - vb:+.3f}"
        return f"<tr><td>{html.escape(label)}</td><td>{_fmt(va)}</td><td>{_fmt(vb)}</td><td>{delta}</td></tr>"

    keys = [("mean IoU (no background)", "mean_iou"), ("mean IoU with background", "mean_iou_with_background"),
            ("pixel accuracy", "pixel_accuracy"), ("mean class accuracy", "mean_class_accuracy"),
            ("frequency-weighted IoU", "fw_iou")]
    rows = [row(label, a.get(k), b.get(k)) for label, k in keys]
    for name in dict.fromkeys([*a["per_class"], *b["per_class"]]):
        rows.append(row(f"IoU {name}", (a["per_class"].get(name) or {}).get("iou"), (b["per_class"].get(name) or {}).get("iou")))
    title = f"Run {run_a} vs run {run_b} · {split} · semantic"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><table><tr><th></th><th>run {run_a}</th><th>run {run_b}</th>"
            f"<th>A - B</th></tr>{''.join(rows)}</table></body></html>")
    out = run_model_path(ws, slug, run_a).parent / "eval" / split / f"compare-{run_b}" / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, page.encode("utf-8"), fsync=False)
    return out


def _stored_map(run_dir: Path, image_id: int) -> np.ndarray | None:
    """The image's predicted index map kept in the run folder (``predicted/`` or an evaluation's
    ``labelmaps/``, as :func:`predict_semantic` and :func:`evaluate_semantic_run` write them)."""
    from PIL import Image

    for folder in [run_dir / "predicted", *sorted((run_dir / "eval").glob("*/labelmaps"))]:
        try:
            meta = json.loads((folder / "classes.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for im in meta.get("images", []):
            path = folder / "index" / f"{im.get('stem')}.png"
            if im.get("id") == image_id and path.is_file():
                with Image.open(path) as png:
                    return np.asarray(png).copy()
    return None


@requires("project.read")
def label_map_overlay(
    ws: Workspace, slug: str, run_id: int, image_id: int, *, classes: Sequence[str] | None = None,
    opacity: float = 0.5, device: str = "cpu",
) -> dict[str, np.ndarray]:
    """The image with its ground-truth and its predicted index map blended on top (the export's
    palette colours), only ``classes`` (None: all) at ``opacity``: {"ground truth", "predicted"}
    H x W x 3 uint8. The prediction kept in the run folder is used, else predicted now."""
    from workbench.formats.labelmaps import palette
    from workbench.services.annotate import load_image

    if not 0.0 <= opacity <= 1.0:
        raise ValidationError(f"opacity is between 0 and 1, got {opacity}")
    loaded = load_image(ws, slug, image_id)
    project = project_dataset(ws, slug, splits=[])
    names = [c.name for c in label_classes(project.categories)]
    unknown = sorted(set(classes or ()) - set(names))
    if unknown:
        raise ValidationError(f"unknown class(es) {unknown}; the project has {names}")
    rec = loaded.image
    image = next(iter(_arrays(ws, slug, [rec])))
    gt = semantic_index_map(AnnotatedImage(image=rec, instances=tuple(loaded.instances)), project.categories)
    pred = _stored_map(run_model_path(ws, slug, run_id).parent, image_id)
    if pred is None or pred.shape != gt.shape:
        pred = predict_label_maps(ws, slug, run_id, [rec], device=device)[0][0]
    pal = np.asarray(palette(), np.float32).reshape(256, 3)
    shown = np.zeros(256, bool)
    shown[[names.index(n) + 1 for n in (classes if classes is not None else names)]] = True

    def blend(index: np.ndarray) -> np.ndarray:
        m = shown[index][..., None]
        mixed = image.astype(np.float32) * (1 - opacity) + pal[index] * opacity
        return np.where(m, mixed, image).astype(np.uint8)

    return {"ground truth": blend(gt), "predicted": blend(pred)}
