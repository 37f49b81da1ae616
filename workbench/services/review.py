"""Review use cases: keep a run's predictions, find the images worth a look, accept or reject.

The UI's Review page and the ``workbench predict`` command call these. Predictions stay apart from
the ground truth until accepted; an accepted prediction is an ordinary annotation (source
``predicted``) that the annotator edits like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from PIL import Image

from workbench.domain import (
    Accepted,
    ImageRecord,
    Instance,
    NotFoundError,
    Prediction,
    Progress,
    RunInfo,
    ValidationError,
    WorkbenchError,
    plural,
)
from workbench.evaluate.matching import ERROR_KINDS, ImageDisagreement, PredictionVerdict, image_disagreement
from workbench.images import storage
from workbench.images.overlay import MISSED, Layer, draw_overlay
from workbench.runs.devices import check_inference_device
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import annotations as annotation_repo
from workbench.store import categories as category_repo
from workbench.store import datasets as dataset_repo
from workbench.store import images as image_repo
from workbench.store import predictions as pstore
from workbench.store import projects as project_repo
from workbench.store.run_metrics import run_evaluations

SortKey = Literal["errors", "confidence", "disagreement"]
SORT_KEYS = ("errors", "confidence", "disagreement")
ERROR_FILTERS = (*ERROR_KINDS, "missed")

DEFAULT_THRESHOLD = 0.05
"""Review's starting score threshold for a run without an evaluation: low enough that an early,
unsure model still shows something (0.5 showed nothing of a run trained for a few minutes)."""

PredictFn = Callable[[list[ImageRecord]], Mapping[int, Sequence[Instance]] | Sequence[Sequence[Instance]]]
"""Takes image records (``path`` absolute) and gives instances per image: a mapping by image id, or
a sequence in the order of the records."""


@dataclass(frozen=True)
class ReviewImage:
    """One row of the review list: an image, its predictions' summary and its errors."""

    image: ImageRecord
    num_predictions: int
    num_pending: int
    num_ground_truth: int
    min_score: float | None
    max_score: float | None
    disagreement: float
    """Mean of 1 - best same-class IoU over predictions, each missed ground truth counting 1."""
    errors: dict[str, int] = field(default_factory=dict)
    """Counts per kind: true_positive, wrong_class, poor_localisation, spurious, missed."""

    @property
    def num_errors(self) -> int:
        return sum(n for k, n in self.errors.items() if k != "true_positive")


@dataclass(frozen=True)
class ImageReview:
    """Everything the Review page draws for one image: ground truth, predictions and their verdicts."""

    image: ImageRecord
    version: int
    ground_truth: list[Instance]
    predictions: list[Prediction]
    verdicts: dict[int, PredictionVerdict]
    """Per prediction id (rejected predictions have none: they take no part in the comparison)."""
    missed: list[Instance]


@dataclass(frozen=True)
class StoredPredictions:
    images: int
    predictions: int


def _check_run(s, pid: int, run_id: int) -> None:  # noqa: ANN001 - a store session
    from workbench.store.runs import get_run

    run = get_run(s, run_id)
    if run.project_id != pid:
        raise NotFoundError(f"run {run_id} belongs to another project")


def _compare(
    rec: ImageRecord, preds: list[Prediction], gts: list[Instance]
) -> tuple[ImageDisagreement, list[Prediction]]:
    """Compare the predictions that are still in play (pending or accepted) with the ground truth,
    leaving out the annotations that accepted predictions became (they would match themselves)."""
    live = [p for p in preds if p.status != "rejected"]
    own = {p.annotation_id for p in live if p.annotation_id is not None}
    truth = [g for g in gts if g.id not in own]
    return image_disagreement([p.instance for p in live], truth, rec.size_wh), live


# ------------------------------------------------------------------------------------------- storing


@requires("train")
def store_run_predictions(
    ws: Workspace,
    slug: str,
    run_id: int,
    results: Mapping[int, Sequence[Instance]],
    *,
    score_threshold: float = 0.0,
) -> StoredPredictions:
    """Store a run's outputs, image by image, in one transaction; each image's pending predictions of
    the run are replaced. Instances below ``score_threshold`` are dropped."""
    n_img = n_pred = 0
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        _check_run(s, pid, run_id)
        for image_id, instances in results.items():
            keep = [
                replace(i, source="predicted", id=None)
                for i in instances
                if (i.score if i.score is not None else 1.0) >= score_threshold
            ]
            n_pred += len(pstore.store_predictions(s, run_id, int(image_id), keep))
            n_img += 1
    return StoredPredictions(images=n_img, predictions=n_pred)


@requires("train")
def prelabel_unlabeled(
    ws: Workspace, slug: str, run_id: int, predict_fn: PredictFn, *, score_threshold: float = 0.0
) -> StoredPredictions:
    """Predict every image without annotations and store the results as pending predictions."""
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        _check_run(s, pid, run_id)
        images = image_repo.list_images(s, pid, unannotated=True)
    if not images:
        return StoredPredictions(images=0, predictions=0)
    project_dir = ws.project_dir(slug)
    records = [replace(r, path=str(project_dir / r.path)) if r.path else r for r in images]
    out = predict_fn(records)
    if isinstance(out, Mapping):
        results = {int(k): list(v) for k, v in out.items()}
    else:
        out = list(out)
        if len(out) != len(records):
            raise ValidationError(
                f"the predictor gave results for {plural(len(out), 'image')}, {len(records)} "
                f"{'was' if len(records) == 1 else 'were'} asked for"
            )
        results = {r.id: list(v) for r, v in zip(records, out, strict=True)}  # type: ignore[misc]
    return store_run_predictions(ws, slug, run_id, results, score_threshold=score_threshold)


# ------------------------------------------------------------------------------------------- reading


@requires("project.read")
def list_predictions(
    ws: Workspace,
    slug: str,
    *,
    run_id: int | None = None,
    image_id: int | None = None,
    status: str | None = None,
    min_score: float | None = None,
) -> list[Prediction]:
    with ws.store.transaction() as s:
        return pstore.list_predictions(
            s,
            project_repo.project_id(s, slug),
            run_id=run_id,
            image_id=image_id,
            status=status,
            min_score=min_score,
        )


@requires("project.read")
def list_review_images(
    ws: Workspace,
    slug: str,
    run_id: int,
    *,
    sort: SortKey = "errors",
    error_type: str | None = None,
    category_id: int | None = None,
    min_score: float = 0.0,
    split: str | None = None,
) -> list[ReviewImage]:
    """Images with predictions of the run (and every image of ``split`` when given, so that images
    where the model found nothing show their misses), summarised and sorted.

    ``errors``: most errors first, then largest disagreement; ``confidence``: lowest prediction
    score first (images without predictions last); ``disagreement``: largest first. ``error_type``
    keeps images with at least one error of that kind (``missed`` included); ``category_id`` keeps
    images where that class is predicted or annotated. Predictions below ``min_score`` and rejected
    ones are left out of the comparison.
    """
    if sort not in SORT_KEYS:
        raise ValidationError(f"sort must be one of {SORT_KEYS}, got {sort!r}")
    if error_type is not None and error_type not in ERROR_FILTERS:
        raise ValidationError(f"error type must be one of {ERROR_FILTERS}, got {error_type!r}")
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        _check_run(s, pid, run_id)
        ids = set(pstore.predicted_image_ids(s, pid, run_id))
        if split is not None:
            ids |= {r.id for r in image_repo.list_images(s, pid, split=split)}  # type: ignore[misc]
        wanted_cat = None
        if category_id is not None:
            names = {c.id: c.name for c in category_repo.list_categories(s, pid)}
            if category_id not in names:
                raise NotFoundError(f"no class with id {category_id} in this project")
            wanted_cat = names[category_id]
        by_image: dict[int, list[Prediction]] = {}
        for p in pstore.list_predictions(s, pid, run_id=run_id):
            by_image.setdefault(p.image_id, []).append(p)
        # two queries for the whole project rather than two per image
        items = {it.image.id: it for it in dataset_repo.load_dataset(s, pid).items if it.image.id in ids}
        rows: list[ReviewImage] = []
        for image_id in sorted(items):
            rec, gts = items[image_id].image, list(items[image_id].instances)
            all_preds = by_image.get(image_id, [])
            preds = [p for p in all_preds if p.score >= min_score]
            if wanted_cat is not None and not any(
                i.category == wanted_cat for i in (*gts, *(p.instance for p in preds))
            ):
                continue
            result, live = _compare(rec, preds, gts)
            if error_type is not None and not result.counts.get(error_type):
                continue
            scores = [p.score for p in live]
            rows.append(
                ReviewImage(
                    image=rec,
                    num_predictions=len(all_preds),
                    num_pending=sum(p.status == "pending" for p in all_preds),
                    num_ground_truth=len(gts),
                    min_score=min(scores) if scores else None,
                    max_score=max(scores) if scores else None,
                    disagreement=result.disagreement,
                    errors=dict(result.counts),
                )
            )
    if sort == "errors":
        rows.sort(key=lambda r: (-r.num_errors, -r.disagreement, r.image.id))
    elif sort == "confidence":
        rows.sort(key=lambda r: (r.min_score is None, r.min_score or 0.0, r.image.id))
    else:
        rows.sort(key=lambda r: (-r.disagreement, r.image.id))
    return rows


@requires("project.read")
def predictions_for_image(
    ws: Workspace, slug: str, image_id: int, run_id: int | None = None, *, min_score: float = 0.0
) -> ImageReview:
    """An image's ground truth, the run's predictions on it (all statuses) and their verdicts."""
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        if run_id is not None:
            _check_run(s, pid, run_id)
        rec, version = image_repo.get_image(s, pid, image_id)
        gts = annotation_repo.load_instances(s, image_id)
        preds = pstore.list_predictions(s, pid, run_id=run_id, image_id=image_id, min_score=min_score)
    result, live = _compare(rec, preds, gts)
    own = {p.annotation_id for p in live if p.annotation_id is not None}
    truth = [g for g in gts if g.id not in own]
    return ImageReview(
        image=rec,
        version=version,
        ground_truth=gts,
        predictions=preds,
        verdicts={p.id: v for p, v in zip(live, result.verdicts, strict=True)},
        missed=[truth[i] for i in result.missed],
    )


def default_threshold(run: RunInfo) -> tuple[float, str]:
    """Where Review's score threshold starts for a run, and why: the score at the best F1 of the
    run's evaluation (val first), else :data:`DEFAULT_THRESHOLD` (also where no prediction was
    right: an F1 of 0 peaks anywhere, and its 'best' score would hide all but the top one)."""
    evals = run_evaluations(run.metrics)
    for split in dict.fromkeys(("val", *sorted(evals))):
        best = (evals.get(split) or {}).get("best_f1")
        if isinstance(best, dict) and best.get("score") is not None and float(best.get("f1") or 0) > 0:
            return float(best["score"]), f"the score at the best F1 ({float(best['f1']):.2f}) on {split}"
    return DEFAULT_THRESHOLD, "no evaluation with a best F1 yet: a low start so that something shows"


def outline(inst: Instance) -> Instance:
    """The instance with polygons to draw: a mask's outer contours (masks are RLE, which the browser
    cannot draw), its box where the mask is empty. For display only: accepting uses the prediction."""
    if inst.polygons or inst.rle is None:
        return inst
    from workbench.geometry import mask_to_polygons, rle_to_mask

    polys = mask_to_polygons(rle_to_mask(inst.rle), tolerance=1.0)
    if not polys and inst.bbox_xywh is not None:
        x, y, w, h = inst.bbox_xywh
        polys = ((x, y, x + w, y, x + w, y + h, x, y + h),)
    return replace(inst, polygons=tuple(polys), rle=None, bbox_xywh=inst.bbox_xywh)


# ------------------------------------------------------------------------------------------ deciding


@requires("project.read")
def draw_image_review(
    ws: Workspace,
    slug: str,
    detail: ImageReview,
    colors: Mapping[str, str],
    *,
    ground_truth: bool = True,
    predictions: bool = True,
    missed: bool = True,
    opacity: float = 0.35,
) -> Image.Image:
    """The image's display copy with what the Review page shows over it: the ground truth tinted,
    pending predictions tinted with boxes and scores, missed objects outlined in red."""
    rec = detail.image
    if not rec.path:
        raise ValidationError(f"{rec.file_name}: no image file")
    path = storage.make_display_copy(ws.project_dir(slug), rec.path)
    layers = []
    if ground_truth:
        layers.append(Layer(detail.ground_truth, filled=True))
    if predictions:
        live = [p.instance for p in detail.predictions if p.status == "pending"]
        layers.append(Layer(live, filled=True, boxes=True, labels=True, width_px=2))
    if missed:
        layers.append(Layer(detail.missed, filled=False, boxes=True, color=MISSED, width_px=3))
    with Image.open(path) as img:
        return draw_overlay(img, rec.size_wh, layers, colors, opacity=opacity)


@requires("annotate", prediction="prediction_id")
def accept(ws: Workspace, slug: str, prediction_id: int, *, as_polygons: bool = True) -> Accepted:
    """Accept a prediction as an annotation (source ``predicted``); keypoints that no longer fit the
    class's schema are dropped (mask kept) and named in the notes."""
    from workbench.services import pose

    if pose.is_heatmap_run(ws, pose.prediction_run(ws, slug, prediction_id)):  # keypoints onto their instance
        return pose.accept_keypoints(ws, slug, prediction_id)
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        return pstore.accept_prediction(s, pid, prediction_id, as_polygons=as_polygons)


@requires("annotate", prediction="prediction_id")
def reject(ws: Workspace, slug: str, prediction_id: int) -> None:
    with ws.store.transaction() as s:
        pstore.reject_prediction(s, project_repo.project_id(s, slug), prediction_id)


@requires("annotate", image="image_id")
def accept_all_above(ws: Workspace, slug: str, image_id: int, run_id: int, threshold: float) -> Accepted:
    """Accept every pending prediction of the run on the image with score >= ``threshold``;
    keypoints that no longer fit their class are dropped (masks kept) and named in the notes."""
    if not 0.0 <= threshold <= 1.0:
        raise ValidationError(f"score threshold must be within 0..1, got {threshold}")
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        _check_run(s, pid, run_id)
    from workbench.services import pose

    if pose.is_heatmap_run(ws, run_id):
        return pose.accept_all_keypoints(ws, slug, image_id, run_id, threshold)
    with ws.store.transaction() as s:
        return pstore.accept_all(s, pid, image_id, run_id, min_score=threshold)


# ----------------------------------------------------------------------------------------- predicting


@requires("project.read", run="run_id")
def run_project_slug(ws: Workspace, run_id: int) -> str:
    """The slug of the project a run belongs to (the CLI names runs by id alone)."""
    from workbench.store.runs import get_run

    with ws.store.transaction() as s:
        pid = get_run(s, run_id).project_id
        for info in project_repo.list_projects(s):
            if info.id == pid:
                return info.slug
    raise NotFoundError(f"run {run_id} has no project")


@requires("project.read")
def run_model_path(ws: Workspace, slug: str, run_id: int) -> Path:
    """The run's single-file model (``model.pt``), written when training finishes."""
    from workbench.store.runs import get_run

    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        _check_run(s, pid, run_id)
        run = get_run(s, run_id)
    run_dir = Path(run.run_dir)
    if not run_dir.is_absolute():
        candidates = [ws.project_dir(slug) / run_dir, ws.root / run_dir]
        run_dir = next((c for c in candidates if (c / "model.pt").exists()), candidates[0])
    path = run_dir / "model.pt"
    if not run.run_dir or not path.is_file():
        raise WorkbenchError(
            f"run {run_id} ({run.name}, {run.status}) has no model file at {path}; "
            "a run writes model.pt when its training finishes"
        )
    return path


@requires("project.read")
def select_images(
    ws: Workspace,
    slug: str,
    *,
    split: str | None = None,
    unlabeled: bool = False,
    images: Sequence[int | str] = (),
) -> list[ImageRecord]:
    """The images a prediction covers: a split, the unlabelled ones, some by id or file name, or all."""
    if sum(bool(x) for x in (split, unlabeled, images)) > 1:
        raise ValidationError("choose one of a split, the unlabelled images or a list of images")
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        if split:
            return image_repo.list_images(s, pid, split=split)
        if unlabeled:
            return image_repo.list_images(s, pid, unannotated=True)
        every = image_repo.list_images(s, pid)
    if not images:
        return every
    by_id = {r.id: r for r in every}
    by_name: dict[str, list[ImageRecord]] = {}
    for r in every:
        by_name.setdefault(r.file_name, []).append(r)
    chosen: list[ImageRecord] = []
    for ref in images:
        key = str(ref)
        if key.isdigit() and int(key) in by_id:
            chosen.append(by_id[int(key)])
        elif key in by_name:
            chosen.extend(by_name[key])
        else:
            raise NotFoundError(f"no image {key!r} (id or file name) in project {slug!r}")
    return list({r.id: r for r in chosen}.values())


def check_inference_options(device: str, score_threshold: float) -> None:
    """Refuse, before a model loads, a device torch does not know or this machine lacks, and a score
    threshold outside 0..1 (a negative one kept every box; above 1, none)."""
    if not 0.0 <= score_threshold <= 1.0:
        raise ValidationError(f"the score threshold is a confidence between 0 and 1, got {score_threshold}")
    check_inference_device(device)


@requires("train")
def predict_images(
    ws: Workspace,
    slug: str,
    run_id: int,
    records: Sequence[ImageRecord],
    *,
    score_threshold: float = 0.5,
    device: str = "cpu",
    chunk_size: int = 16,
    progress: Progress = None,
) -> StoredPredictions:
    """Run the run's model on the images and store the results, a chunk per transaction (so a long
    prediction keeps what it has done if stopped, and memory stays flat)."""
    from workbench.train.predict import Predictor  # torch only when predicting

    check_inference_options(device, score_threshold)
    from workbench.services import pose

    if pose.is_heatmap_run_model(run_model_path(ws, slug, run_id)):  # keypoints for the stored boxes
        n_img, n_pred = pose.predict_images(ws, slug, run_id, list(records), device=device, progress=progress)
        return StoredPredictions(images=n_img, predictions=n_pred)
    predictor = Predictor(run_model_path(ws, slug, run_id), device=device)
    project_dir = ws.project_dir(slug)
    n_img = n_pred = 0
    for start in range(0, len(records), chunk_size):
        part = [
            replace(r, path=str(project_dir / r.path)) if r.path else r
            for r in records[start : start + chunk_size]
        ]
        got = store_run_predictions(
            ws, slug, run_id, predictor.predict_records(part, score_threshold=score_threshold)
        )
        n_img += got.images
        n_pred += got.predictions
        if progress:
            progress(min(start + chunk_size, len(records)), len(records))
    return StoredPredictions(images=n_img, predictions=n_pred)
