"""The annotator's assist requests: a tool and its prompt on the open image in, shapes for the browser out.

The browser sends one request per prompt change (``answer``); the shapes come back as the annotator's
own payload (polygons, or a mask crop where the shape has holes) and become ordinary editable shapes
of the class the user has chosen, saved by the annotator's usual save. "Auto label" is the run's
detections on the open image at a threshold, as pre-labels (``source='predicted'`` with their scores)
the user corrects. With SAM chosen, the embeddings of the open image and the next ones are computed
in one background thread (``warm_sam``) so the first click on an image runs only the decoder.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.assist.prompts import Point
from workbench.assist.shapes import DEFAULT_MAX_VERTICES, DEFAULT_TOLERANCE, AssistShape, mask_to_shape
from workbench.domain import ValidationError, WorkbenchError
from workbench.services import assist as svc
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
KINDS = ("shape", "auto", "warm")


@dataclass(frozen=True)
class SamModel:
    """One SAM variant as the Settings list it: its checkpoint file, and whether it is there."""

    variant: str
    file_name: str
    path: Path
    present: bool
    message: str


@requires("project.read")
def sam_models(ws: Workspace) -> list[SamModel]:
    """Every SAM variant the workbench knows, present or not (the message names the missing file)."""
    from workbench.assist import sam

    out = []
    for variant, file_name in sam.CHECKPOINTS.items():
        path = sam.weights_dir(ws.root / "assist") / file_name
        try:
            sam.weights_path(ws.root / "assist", variant)
            out.append(SamModel(variant, file_name, path, True, f"SAM {variant}: {path}"))
        except sam.SamWeightsMissingError as exc:
            out.append(SamModel(variant, file_name, path, False, str(exc)))
    return out


@requires("project.read")
def model_runs(ws: Workspace, slug: str) -> list[tuple[int, str]]:
    """(run id, label) of the project's runs that have a model file, newest first."""
    from workbench.services import training
    from workbench.services.review import run_model_path

    runs = []
    for r in training.list_runs(ws, slug, refresh=False):
        try:
            run_model_path(ws, slug, r.id)
        except WorkbenchError:
            continue
        runs.append((r.id, f"#{r.id} {r.name}"))
    return runs


@requires("project.read")
def tool_options(ws: Workspace, slug: str) -> dict[str, Any]:
    """What the annotator's assist bar offers: the methods (SAM only where weights are present, else
    its message), the runs with a model, and the defaults."""
    methods = [
        {"value": "grabcut", "label": "GrabCut (box)", "needs": "box"},
        {"value": "wand", "label": "Magic wand (click)", "needs": "point"},
        {"value": "scissors", "label": "Scissors (3+ clicks on the outline)", "needs": "points3"},
    ]
    missing = []
    for m in sam_models(ws):
        if m.present:
            methods.append({"value": f"sam:{m.variant}", "label": f"SAM {m.variant} (box / clicks)", "needs": "any"})
        else:
            missing.append(m.message)
    if not any(m["value"].startswith("sam:") for m in methods):
        methods.append({"value": "sam:", "label": "SAM (no weights)", "needs": "any", "missing": missing[0]})
    runs = model_runs(ws, slug)
    for run_id, label in runs:
        methods.append({"value": f"run:{run_id}", "label": f"Run {label} (box)", "needs": "box_or_point"})
    return {
        "methods": methods,
        "runs": [{"id": run_id, "label": label} for run_id, label in runs],
        "threshold": DEFAULT_THRESHOLD,
        "simplify": DEFAULT_TOLERANCE,
        "max_vertices": DEFAULT_MAX_VERTICES,
    }


def shape_payload(shape: AssistShape, category: str | None = None, *, predicted: bool = False) -> dict[str, Any]:
    """A tool's shape as the annotator's instance payload (``category`` None: the browser's class)."""
    from workbench.services.mask_crops import rle_to_crop

    return {
        "id": None,
        "category": category,
        "polygons": [list(p) for p in shape.polygons],
        "keypoints": None,
        "bbox": list(shape.bbox_xywh),
        "rle": shape.rle is not None,
        "mask": rle_to_crop(shape.rle) if shape.rle is not None else None,
        "source": "predicted" if predicted else "manual",
        "score": shape.score if predicted else None,
        "attributes": {},
        "z_order": 0,
    }


def _number(req: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    raw = req.get(key)
    if raw is None or raw == "":
        return default
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ValidationError(f"assist {key} must be a number, got {raw!r}") from None
    if not lo <= v <= hi:
        raise ValidationError(f"assist {key} must lie in {lo:g}..{hi:g}, got {v:g}")
    return v


def _points(raw: Any) -> list[Point]:
    out: list[Point] = []
    for p in raw or []:
        if not isinstance(p, Sequence) or len(p) != 3:
            raise ValidationError(f"assist point must be [x, y, positive], got {p!r}")
        out.append((float(p[0]), float(p[1]), bool(p[2])))
    return out


def _box(raw: Any) -> tuple[float, float, float, float] | None:
    if raw is None:
        return None
    if not isinstance(raw, Sequence) or len(raw) != 4:
        raise ValidationError(f"assist box must be [x, y, w, h], got {raw!r}")
    x, y, w, h = (float(v) for v in raw)
    return (x, y, w, h)


@requires("annotate")
def answer(ws: Workspace, slug: str, req: Mapping[str, Any], *, next_ids: Sequence[int] = ()) -> dict[str, Any]:
    """One request from the browser -> its answer (``shapes``, or ``error``: one line to show).

    ``next_ids``: the images after the open one (their SAM embeddings are computed in the background).
    """
    out: dict[str, Any] = {"req": req.get("req"), "image_id": req.get("image_id"), "kind": req.get("kind")}
    try:
        kind = req.get("kind")
        if kind not in KINDS:
            raise ValidationError(f"unknown assist request {kind!r}")
        image_id = int(req["image_id"])
        method = str(req.get("method") or "")
        sam_model = method[4:] or None if method.startswith("sam:") else None
        if kind == "warm":
            if method.startswith("sam:") and sam_model:
                warm_sam(ws, slug, [image_id, *next_ids], sam_model)
            return out
        if kind == "auto":
            run = int(req.get("run") or 0)
            threshold = _number(req, "threshold", DEFAULT_THRESHOLD, 0.0, 1.0)
            out["shapes"] = auto_label(
                ws, slug, image_id, run, threshold, simplify=_number(req, "simplify", DEFAULT_TOLERANCE, 0, 100),
                max_vertices=int(_number(req, "max_vertices", DEFAULT_MAX_VERTICES, 3, 10_000)),
            )
            n = len(out["shapes"])
            out["notice"] = f"Run {run}: {n} shape{'s' if n != 1 else ''} at score >= {threshold:g}" + (
                "" if n else "; try a lower threshold"
            )
            return out
        if method.startswith("sam:"):
            if not sam_model:
                from workbench.assist import sam

                sam.weights_path(ws.root / "assist", sam.DEFAULT_VARIANT)  # raises the message naming the file
            method = "sam"
        tolerance = _number(req, "tolerance", 0, 0, 255) if method == "wand" and req.get("tolerance") else None
        result = svc.assist(
            ws,
            slug,
            image_id,
            method,
            box_xywh=_box(req.get("box")),
            points=_points(req.get("points")),
            tolerance=tolerance,
            simplify=_number(req, "simplify", DEFAULT_TOLERANCE, 0, 100),
            max_vertices=int(_number(req, "max_vertices", DEFAULT_MAX_VERTICES, 3, 10_000)),
            sam_model=sam_model,
        )
        out["shapes"] = [shape_payload(result.shape)]
        if sam_model:
            warm_sam(ws, slug, list(next_ids), sam_model)
    except (WorkbenchError, ValueError, KeyError, TypeError) as exc:
        out["error"] = str(exc) if not isinstance(exc, KeyError) else f"assist request lacks {exc}"
    return out


@requires("annotate", image="image_id")
def auto_label(
    ws: Workspace,
    slug: str,
    image_id: int,
    run_id: int,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    simplify: float = DEFAULT_TOLERANCE,
    max_vertices: int = DEFAULT_MAX_VERTICES,
) -> list[dict[str, Any]]:
    """The run's detections on one image at ``score >= threshold`` as editable pre-labels (polygons,
    RLE where a mask has holes), of the project's classes only."""
    from workbench.geometry import rle_to_mask
    from workbench.services import classes as class_svc
    from workbench.services.review import check_inference_options

    if run_id < 1:
        raise ValidationError("choose a run (one with a model) to auto-label with")
    check_inference_options("cpu", threshold)
    rec = svc.find_image(ws, slug, image_id)
    cats = {c.name: c for c in class_svc.list_categories(ws, slug)}
    found = svc.run_predictor(ws, slug, run_id).predict_records([rec], score_threshold=threshold)[int(image_id)]
    shapes = []
    for inst in found:
        if inst.category not in cats or inst.rle is None or (inst.score or 0.0) < threshold:
            continue
        shape = mask_to_shape(
            rle_to_mask(inst.rle), tolerance=simplify, max_vertices=max_vertices, score=inst.score, method=f"run:{run_id}"
        )
        if shape.empty:
            continue
        item = shape_payload(shape, inst.category, predicted=True)
        schema = cats[inst.category].keypoints
        if inst.keypoints is not None and schema is not None and len(inst.keypoints) == 3 * len(schema.names):
            item["keypoints"] = [float(v) for v in inst.keypoints]
        shapes.append(item)
    return shapes


# ----------------------------------------------------------------------------------- SAM in the background

_WARM_QUEUE: queue.Queue[tuple[Workspace, str, int, str]] = queue.Queue()
_WARM_LOCK = threading.Lock()
_WARM_STATE: dict[str, Any] = {"thread": None, "queued": set()}


@requires("project.read")
def warm_sam(ws: Workspace, slug: str, image_ids: Sequence[int], model: str) -> None:
    """Compute (and cache on disk) the SAM embeddings of these images in one background thread, so a
    click on them runs only the decoder. Images already cached cost a file check."""
    with _WARM_LOCK:
        for image_id in image_ids:
            key = (str(ws.root), slug, int(image_id), model)
            if key in _WARM_STATE["queued"]:
                continue
            _WARM_STATE["queued"].add(key)
            _WARM_QUEUE.put((ws, slug, int(image_id), model))
        t = _WARM_STATE["thread"]
        if t is None or not t.is_alive():
            t = threading.Thread(target=_warm_worker, name="workbench-sam-warm", daemon=True)
            _WARM_STATE["thread"] = t
            t.start()


def warm_pending() -> int:
    """Images still waiting for their embedding (tests wait on it)."""
    with _WARM_LOCK:
        return len(_WARM_STATE["queued"])


def _warm_worker() -> None:
    from workbench.assist import sam

    while True:
        try:
            ws, slug, image_id, model = _WARM_QUEUE.get(timeout=30)
        except queue.Empty:
            return
        try:
            rec = svc.find_image(ws, slug, image_id)
            session = sam.session(ws.root / "assist", model)
            if not session.cache_file(rec.sha256).is_file():
                session.embed(svc.image_pixels(rec), rec.sha256)
        except Exception as exc:  # a background precompute must never take the page down
            log.warning("SAM embedding of image %s not precomputed: %s", image_id, exc)
        finally:
            with _WARM_LOCK:
                _WARM_STATE["queued"].discard((str(ws.root), slug, image_id, model))
