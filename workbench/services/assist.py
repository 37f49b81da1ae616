"""Assisted labelling for one image of a project: a tool and a prompt in, a COCO-like shape out; and
"label next", the unlabelled images ranked by how unsure a run is about them.

The tools see the stored image decoded upright at full resolution (not the display copy), so the
prompt and the shape are both in natural pixels of the upright image, EXIF-rotated images included.

Uncertainty of an image under a run (``rank_next``): ``1 - mean(s)`` over the scores ``s`` of the
run's detections scoring at least ``NEXT_SCORE_FLOOR``; an image without any such detection scores
1.0 (the model sees nothing there: label it first). Ties keep the image order (id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.assist.prompts import Point, Prompt
from workbench.assist.prompts import parse_box as parse_box  # the CLI parses through services
from workbench.assist.prompts import parse_point as parse_point
from workbench.assist.shapes import DEFAULT_MAX_VERTICES, DEFAULT_TOLERANCE, AssistShape, mask_to_shape
from workbench.domain import ImageRecord, NotFoundError, ValidationError, WorkbenchError
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace

CLASSIC_METHODS = ("grabcut", "wand", "scissors")
METHODS = (*CLASSIC_METHODS, "sam", "run:RUN")
NEXT_SCORE_FLOOR = 0.05
RUN_MATCH_IOU = 0.3
"""A run's detection answers a box when their boxes overlap at least this much (IoU)."""

Progress = Any


@dataclass(frozen=True)
class AssistResult:
    image: ImageRecord
    shape: AssistShape
    category: str | None = None

    def to_coco(self) -> dict[str, Any]:
        out = {"image_id": self.image.id, "file_name": self.image.file_name, **self.shape.to_coco()}
        if self.category is not None:
            out["category"] = self.category
        return out


def parse_method(method: str) -> tuple[str, int | None]:
    """``grabcut|wand|scissors|sam`` or ``run:RUN`` (a run id) -> (name, run id)."""
    if method in (*CLASSIC_METHODS, "sam"):
        return method, None
    if method.startswith("run:"):
        ref = method[4:]
        if ref.isdigit():
            return "run", int(ref)
        raise ValidationError(f"method run:RUN takes a run id, got {method!r}")
    raise ValidationError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


@requires("project.read")
def find_image(ws: Workspace, slug: str, ref: int | str) -> ImageRecord:
    """One image of the project by id or file name, its ``path`` made absolute."""
    from workbench.services.review import select_images

    found = select_images(ws, slug, images=[ref])
    if len(found) > 1:
        raise ValidationError(
            f"{len(found)} images of project {slug!r} are named {ref!r}; name one by id "
            f"({', '.join(str(r.id) for r in found)})"
        )
    rec = found[0]
    if not rec.path:
        raise ValidationError(f"{rec.file_name}: the image has no stored file")
    return replace(rec, path=str(ws.project_dir(slug) / rec.path))


_PIXELS: dict[tuple[str, str], np.ndarray] = {}
"""The last images decoded (by path and sha256): an annotator's clicks on one image decode it once."""
_PIXELS_KEPT = 2


def image_pixels(rec: ImageRecord) -> np.ndarray:
    from workbench.assist.pixels import load_rgb

    key = (str(rec.path), rec.sha256)
    if key in _PIXELS:
        return _PIXELS[key]
    arr = load_rgb(Path(str(rec.path)), name=rec.file_name)
    if (arr.shape[1], arr.shape[0]) != rec.size_wh:
        raise ValidationError(
            f"{rec.file_name}: the file is {arr.shape[1]}x{arr.shape[0]}, the store says {rec.width}x{rec.height}"
        )
    arr.setflags(write=False)  # shared by later calls: no tool may paint into it
    while len(_PIXELS) >= _PIXELS_KEPT:
        _PIXELS.pop(next(iter(_PIXELS)))
    _PIXELS[key] = arr
    return arr


_PREDICTORS: dict[tuple[str, int, str], Any] = {}


@requires("annotate")
def run_predictor(ws: Workspace, slug: str, run_id: int, device: str = "cpu") -> Any:
    """The run's Predictor, loaded once per model file (its mtime) and device: one per click is slow."""
    from workbench.services.review import run_model_path
    from workbench.train.predict import Predictor

    path = run_model_path(ws, slug, run_id)
    key = (str(path), path.stat().st_mtime_ns, device)
    if key not in _PREDICTORS:
        _PREDICTORS.clear()  # one model in memory at a time
        _PREDICTORS[key] = Predictor(path, device=device)
    return _PREDICTORS[key]


@requires("annotate")
def assist(
    ws: Workspace,
    slug: str,
    image: int | str,
    method: str,
    *,
    box_xywh: tuple[float, float, float, float] | None = None,
    points: Sequence[Point] = (),
    tolerance: float | None = None,
    simplify: float = DEFAULT_TOLERANCE,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    sam_model: str | None = None,
    device: str = "cpu",
) -> AssistResult:
    """Run one tool on one image; an empty result is an error that says what to try."""
    name, run_id = parse_method(method)
    rec = find_image(ws, slug, image)
    prompt = Prompt(box_xywh=box_xywh, points=tuple(points)).checked(rec.size_wh, where=rec.file_name)
    if tolerance is not None and name != "wand":
        raise ValidationError(f"--tolerance is the magic wand's colour tolerance; method {method} takes none")
    score: float | None = None
    category: str | None = None
    if name == "run":
        assert run_id is not None
        mask, score, category = _run_mask(ws, slug, run_id, rec, prompt, device)
    else:
        pixels = image_pixels(rec)
        if name == "sam":
            from workbench.assist.sam import segment

            mask, score = segment(ws.root / "assist", pixels, rec.sha256, prompt, model=sam_model, device=device)
        else:
            from workbench.assist import classic

            if name == "grabcut":
                mask = classic.grabcut(pixels, prompt)
            elif name == "wand":
                t = classic.DEFAULT_WAND_TOLERANCE if tolerance is None else float(tolerance)
                mask = classic.magic_wand(pixels, prompt, tolerance=t)
            else:
                mask = classic.scissors(pixels, prompt)
    shape = mask_to_shape(mask, tolerance=simplify, max_vertices=max_vertices, score=score, method=method)
    if shape.empty:
        raise WorkbenchError(f"{rec.file_name}: {method} found no object for this prompt; try another box or click")
    return AssistResult(image=rec, shape=shape, category=category)


def _box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    iw = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    ih = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _run_mask(
    ws: Workspace, slug: str, run_id: int, rec: ImageRecord, prompt: Prompt, device: str
) -> tuple[np.ndarray, float, str]:
    """The run's best detection for the prompt: the highest score among those whose box overlaps the
    prompt's box (IoU >= RUN_MATCH_IOU) and whose mask holds every positive click."""
    from workbench.geometry import rle_to_mask
    from workbench.services.review import check_inference_options

    if prompt.box_xywh is None and not prompt.positives:
        raise ValidationError("method run:RUN needs a box (--box X,Y,W,H) or a click on the object (--point X,Y)")
    check_inference_options(device, NEXT_SCORE_FLOOR)
    predictor = run_predictor(ws, slug, run_id, device)
    found = predictor.predict_records([rec], score_threshold=NEXT_SCORE_FLOOR)[int(rec.id)]  # type: ignore[arg-type]
    for inst in found:  # highest score first
        if inst.rle is None or inst.bbox_xywh is None:
            continue
        if prompt.box_xywh is not None and _box_iou(inst.bbox_xywh, prompt.box_xywh) < RUN_MATCH_IOU:
            continue
        mask = rle_to_mask(inst.rle)
        if all(mask[int(y), int(x)] for x, y in prompt.positives):
            return mask, float(inst.score or 0.0), inst.category
    raise WorkbenchError(
        f"{rec.file_name}: run {run_id} detects nothing here (score >= {NEXT_SCORE_FLOOR}) for this prompt; "
        "draw it by hand or with another method"
    )


# ------------------------------------------------------------------------------------------ label next


@dataclass(frozen=True)
class NextImage:
    image_id: int
    file_name: str
    uncertainty: float
    detections: int
    mean_score: float | None


def order_by_rank(images: Sequence[ImageRecord], ranked_ids: Sequence[int]) -> list[ImageRecord]:
    """The ranked images first, in rank order ("label next"), then the others in their order."""
    rank = {int(i): n for n, i in enumerate(ranked_ids)}
    return sorted(images, key=lambda im: (0, rank[int(im.id)]) if im.id in rank else (1, 0))  # type: ignore[arg-type]


def uncertainty(scores: Sequence[float]) -> float:
    """``1 - mean(scores)`` of the detections at or above the floor; 1.0 when there is none."""
    kept = [float(s) for s in scores if s >= NEXT_SCORE_FLOOR]
    return 1.0 - float(np.mean(kept)) if kept else 1.0


@requires("project.read")
def rank_next(
    ws: Workspace,
    slug: str,
    run_id: int,
    *,
    count: int | None = None,
    device: str = "cpu",
    progress: Progress = None,
) -> list[NextImage]:
    """The unlabelled images, most uncertain first (see the module docstring for the formula)."""
    from workbench.services.review import check_inference_options, run_model_path, select_images
    from workbench.train.predict import Predictor

    if count is not None and count < 1:
        raise ValidationError(f"--count must be at least 1, got {count}")
    check_inference_options(device, NEXT_SCORE_FLOOR)
    model = run_model_path(ws, slug, run_id)
    records = select_images(ws, slug, unlabeled=True)
    if not records:
        return []
    predictor = Predictor(model, device=device)
    project_dir = ws.project_dir(slug)
    ranked: list[NextImage] = []
    for i, rec in enumerate(records):
        if not rec.path:
            raise NotFoundError(f"{rec.file_name}: the image has no stored file")
        found = predictor.predict_records([replace(rec, path=str(project_dir / rec.path))], score_threshold=NEXT_SCORE_FLOOR)
        scores = [float(x.score or 0.0) for x in found[int(rec.id)]]  # type: ignore[arg-type]
        ranked.append(
            NextImage(
                image_id=int(rec.id),  # type: ignore[arg-type]
                file_name=rec.file_name,
                uncertainty=round(uncertainty(scores), 6),
                detections=len(scores),
                mean_score=round(float(np.mean(scores)), 6) if scores else None,
            )
        )
        if progress:
            progress(i + 1, len(records))
    ranked.sort(key=lambda n: (-n.uncertainty, n.image_id))
    return ranked[:count] if count is not None else ranked
