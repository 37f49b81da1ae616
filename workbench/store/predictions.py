"""Predictions in the store: keep a run's outputs, list them, accept them as annotations or reject them.

A prediction never changes the ground truth until a reviewer accepts it; accepting writes an
annotation with source ``predicted`` and bumps the image version the way an annotator save does, so
an annotator that has the image open gets a conflict instead of silently overwriting the new object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from workbench.domain import (
    PREDICTION_STATUSES,
    Accepted,
    Category,
    Instance,
    NotFoundError,
    Prediction,
    ValidationError,
    WorkbenchError,
    plural,
)
from workbench.geometry import mask_to_polygons, rle_to_mask, with_bbox_area
from workbench.store.annotations import instance_from_values, instance_to_values
from workbench.store.categories import list_categories
from workbench.store.images import image_row
from workbench.store.models import AnnotationRow, CategoryRow, ImageRow, PredictionRow, RunRow, utcnow

# ------------------------------------------------------------------------------------------- storing


def _run_project(s: Session, run_id: int) -> int:
    pid = s.scalar(select(RunRow.project_id).where(RunRow.id == run_id))
    if pid is None:
        raise NotFoundError(f"no run with id {run_id}")
    return pid


def _keypoints_for(inst: Instance, cat: Category) -> list[float] | None:
    """The instance's keypoints if its class has a schema of that length (the keypoint head is
    class-agnostic, so a model gives keypoints for squares too; those are dropped)."""
    if inst.keypoints is None or cat.keypoints is None:
        return None
    if len(inst.keypoints) != 3 * cat.keypoints.num_keypoints:
        return None
    return [float(v) if k % 3 != 2 else int(v) for k, v in enumerate(inst.keypoints)]


def store_predictions(s: Session, run_id: int, image_id: int, instances: Sequence[Instance]) -> list[int]:
    """Replace the run's pending predictions on an image by ``instances``; returns the new ids.

    Accepted and rejected predictions stay (they record a reviewer's decision). Every instance must
    name a class of the image's project; bbox and area are filled from the shape when missing.
    """
    pid = _run_project(s, run_id)
    img = image_row(s, pid, image_id)
    cats = {c.name: c for c in list_categories(s, pid)}
    rows: list[dict[str, Any]] = []
    for inst in instances:
        cat = cats.get(inst.category)
        if cat is None:
            raise ValidationError(
                f"prediction for image {img.original_name!r} names unknown class {inst.category!r}; "
                f"classes: {sorted(cats)}"
            )
        inst = with_bbox_area(inst, (img.width, img.height))
        if inst.rle is not None and tuple(inst.rle.size_hw) != (img.height, img.width):
            raise ValidationError(
                f"prediction for image {img.original_name!r}: mask size {list(inst.rle.size_hw)} (h, w) "
                f"does not match the image {img.width}x{img.height} (w x h)"
            )
        vals = instance_to_values(inst, cat.id, image_id)  # type: ignore[arg-type]
        rows.append(
            {
                "run_id": run_id,
                "image_id": image_id,
                "category_id": cat.id,
                "segmentation": vals["segmentation"],
                "bbox": vals["bbox"],
                "keypoints": _keypoints_for(inst, cat),
                "area": vals["area"],
                "score": float(inst.score) if inst.score is not None else 0.0,
                "status": "pending",
                "created_at": utcnow(),
            }
        )
    s.execute(
        delete(PredictionRow).where(
            PredictionRow.run_id == run_id,
            PredictionRow.image_id == image_id,
            PredictionRow.status == "pending",
        )
    )
    if not rows:
        return []
    # RETURNING keeps the ids in insert order on SQLite >= 3.35 and PostgreSQL.
    return list(
        s.scalars(insert(PredictionRow).returning(PredictionRow.id, sort_by_parameter_order=True), rows)
    )


_PRED_COLUMNS = (
    PredictionRow.id,
    PredictionRow.run_id,
    PredictionRow.image_id,
    PredictionRow.status,
    PredictionRow.annotation_id,
    CategoryRow.name,
    PredictionRow.segmentation,
    PredictionRow.keypoints,
    PredictionRow.bbox,
    PredictionRow.area,
    PredictionRow.score,
)


def _prediction(r: Any) -> Prediction:
    pred_id, run_id, image_id, status, ann_id, cat, seg, kps, bbox, area, score = r
    inst = instance_from_values(cat, seg, kps, bbox, area, False, "predicted", score, None, 1, None)
    return Prediction(
        id=pred_id, run_id=run_id, image_id=image_id, instance=inst, status=status, annotation_id=ann_id
    )


def list_predictions(
    s: Session,
    pid: int,
    *,
    run_id: int | None = None,
    image_id: int | None = None,
    status: str | None = None,
    min_score: float | None = None,
) -> list[Prediction]:
    """The project's predictions, by image then highest score first."""
    if status is not None and status not in PREDICTION_STATUSES:
        raise ValidationError(f"prediction status must be one of {PREDICTION_STATUSES}, got {status!r}")
    q = (
        select(*_PRED_COLUMNS)
        .join(CategoryRow, CategoryRow.id == PredictionRow.category_id)
        .join(ImageRow, ImageRow.id == PredictionRow.image_id)
        .where(ImageRow.project_id == pid)
    )
    if run_id is not None:
        q = q.where(PredictionRow.run_id == run_id)
    if image_id is not None:
        q = q.where(PredictionRow.image_id == image_id)
    if status is not None:
        q = q.where(PredictionRow.status == status)
    if min_score is not None:
        q = q.where(PredictionRow.score >= min_score)
    q = q.order_by(PredictionRow.image_id, PredictionRow.score.desc(), PredictionRow.id)
    return [_prediction(r) for r in s.execute(q)]


def get_prediction(s: Session, pid: int, prediction_id: int) -> Prediction:
    r = s.execute(
        select(*_PRED_COLUMNS)
        .join(CategoryRow, CategoryRow.id == PredictionRow.category_id)
        .join(ImageRow, ImageRow.id == PredictionRow.image_id)
        .where(PredictionRow.id == prediction_id, ImageRow.project_id == pid)
    ).first()
    if r is None:
        raise NotFoundError(f"no prediction with id {prediction_id} in this project")
    return _prediction(r)


def predicted_image_ids(s: Session, pid: int, run_id: int) -> list[int]:
    """Images of the project that carry at least one prediction of the run."""
    q = (
        select(PredictionRow.image_id)
        .join(ImageRow, ImageRow.id == PredictionRow.image_id)
        .where(ImageRow.project_id == pid, PredictionRow.run_id == run_id)
        .distinct()
        .order_by(PredictionRow.image_id)
    )
    return list(s.scalars(q))


# ----------------------------------------------------------------------------------- accept / reject


def _bump_image(s: Session, image_id: int) -> None:
    """What a save does to the image: version + 1 (open annotators then see a conflict), and an
    unlabelled image becomes in progress."""
    s.execute(
        update(ImageRow)
        .where(ImageRow.id == image_id)
        .values(version=ImageRow.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    s.execute(
        update(ImageRow)
        .where(ImageRow.id == image_id, ImageRow.status == "unlabeled")
        .values(status="in_progress")
        .execution_options(synchronize_session=False)
    )


def prediction_to_annotation(
    pred: Prediction, size_wh: tuple[int, int], *, as_polygons: bool = True
) -> Instance:
    """The annotation a prediction becomes: polygons traced from its mask (editable in the annotator)
    when ``as_polygons`` and the trace is not empty, else the mask as is; bbox and area recomputed."""
    inst = replace(pred.instance, source="predicted", id=None, version=1)
    if as_polygons and inst.rle is not None:
        polys = mask_to_polygons(rle_to_mask(inst.rle))
        if polys:
            inst = replace(inst, rle=None, polygons=polys)
    if inst.has_shape:
        inst = with_bbox_area(inst, size_wh, from_shape=True)
    return inst


def fit_keypoints(inst: Instance, num_keypoints: int) -> tuple[Instance, str | None]:
    """The instance without keypoints that no longer fit its class (now ``num_keypoints``), and why.

    Predictions keep the keypoints that fitted when they were stored; the schema may change after
    (keypoints added or removed, or none any more). The mask is still worth having, so it is kept,
    as CVAT and Label Studio keep a shape whose attributes no longer match the label config.
    """
    got = len(inst.keypoints or ()) // 3
    if not got or got == num_keypoints:
        return inst, None
    if num_keypoints == 0:
        why = f"class {inst.category!r} has no keypoints now"
    else:
        why = f"class {inst.category!r} has {plural(num_keypoints, 'keypoint')} now, the prediction {got}"
    return replace(inst, keypoints=None), why


def _accept(s: Session, pid: int, pred: Prediction, as_polygons: bool) -> tuple[int, str | None]:
    """The annotation id the prediction became, and the note on dropped keypoints if any."""
    if pred.status == "accepted" and pred.annotation_id is not None:
        return pred.annotation_id, None
    img = image_row(s, pid, pred.image_id)
    inst = prediction_to_annotation(pred, (img.width, img.height), as_polygons=as_polygons)
    cat = s.execute(
        select(CategoryRow.id, CategoryRow.keypoint_names)
        .join(PredictionRow, PredictionRow.category_id == CategoryRow.id)
        .where(PredictionRow.id == pred.id)
    ).one()
    inst, misfit = fit_keypoints(inst, len(cat.keypoint_names or ()))
    vals = instance_to_values(inst, cat.id, pred.image_id)
    ann_id = s.scalar(insert(AnnotationRow).values(**vals).returning(AnnotationRow.id))
    assert ann_id is not None
    note = (
        f"{misfit}: the predicted keypoints of annotation #{ann_id} were dropped, its mask was kept; "
        "place keypoints on the Annotate page"
    ) if misfit else None
    s.execute(
        update(PredictionRow)
        .where(PredictionRow.id == pred.id)
        .values(status="accepted", annotation_id=ann_id)
        .execution_options(synchronize_session=False)
    )
    return ann_id, note


def accept_prediction(s: Session, pid: int, prediction_id: int, *, as_polygons: bool = True) -> Accepted:
    """Turn a prediction into an annotation (source ``predicted``, with its score).

    Accepting twice gives the same annotation. The image version is bumped like a save. Keypoints
    that no longer fit the class are dropped (:func:`fit_keypoints`), said in the notes.
    """
    pred = get_prediction(s, pid, prediction_id)
    was = pred.annotation_id if pred.status == "accepted" else None
    ann_id, note = _accept(s, pid, pred, as_polygons)
    if ann_id != was:
        _bump_image(s, pred.image_id)
    return Accepted(annotation_ids=[ann_id], notes=[note] if note else [])


def mark_accepted_onto(s: Session, prediction_id: int, annotation_id: int, image_id: int) -> None:
    """A prediction accepted onto an annotation that already existed (a heatmap model's keypoints
    for a stored box): the prediction points at it, and the annotation and its image count as
    edited (version + 1), as a save would, so an open annotator sees the change."""
    s.execute(
        update(AnnotationRow)
        .where(AnnotationRow.id == annotation_id)
        .values(version=AnnotationRow.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    s.execute(
        update(PredictionRow)
        .where(PredictionRow.id == prediction_id)
        .values(status="accepted", annotation_id=annotation_id)
        .execution_options(synchronize_session=False)
    )
    _bump_image(s, image_id)


def reject_prediction(s: Session, pid: int, prediction_id: int) -> None:
    """Mark a prediction rejected. One already accepted is refused while its annotation exists:
    the annotation is ground truth now and is deleted in the annotator."""
    pred = get_prediction(s, pid, prediction_id)
    if pred.status == "accepted" and pred.annotation_id is not None:
        raise WorkbenchError(
            f"prediction {prediction_id} was accepted as annotation {pred.annotation_id}; "
            "delete that annotation in the annotator instead"
        )
    s.execute(update(PredictionRow).where(PredictionRow.id == prediction_id).values(status="rejected"))


def accept_all(s: Session, pid: int, image_id: int, run_id: int, *, min_score: float) -> Accepted:
    """Accept every pending prediction of the run on the image with score >= ``min_score``. The image
    version is bumped once; dropped keypoints are said in the notes."""
    image_row(s, pid, image_id)
    preds = list_predictions(s, pid, run_id=run_id, image_id=image_id, status="pending", min_score=min_score)
    done = [_accept(s, pid, pred, True) for pred in preds]
    if preds:
        _bump_image(s, image_id)
    return Accepted(annotation_ids=[a for a, _ in done], notes=[n for _, n in done if n])


def delete_predictions(s: Session, pid: int, run_id: int, *, status: str | None = "pending") -> int:
    """Drop a run's predictions in the project (by default the pending ones); returns how many."""
    ids = select(ImageRow.id).where(ImageRow.project_id == pid)
    q = delete(PredictionRow).where(PredictionRow.run_id == run_id, PredictionRow.image_id.in_(ids))
    if status is not None:
        q = q.where(PredictionRow.status == status)
    return s.execute(q).rowcount or 0
