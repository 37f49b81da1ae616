"""Predictions through a real workspace: store, list, accept, reject, accept-all, sorting, cascades."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select

from tests.support.images import image_bytes
from tests.support.predictions import as_prediction, ground_truth, make_run, run_with_model
from workbench.domain import (
    Category,
    ConflictError,
    Instance,
    KeypointSchema,
    NotFoundError,
    ValidationError,
    WorkbenchError,
)
from workbench.geometry import instance_to_rle, mask_to_rle, rle_iou, rle_to_mask
from workbench.images.decode import ImageSource
from workbench.services import annotate, classes, export, imports, projects, review
from workbench.store import categories as category_repo
from workbench.store import projects as project_repo
from workbench.store.models import PredictionRow, RunRow


def _first_image(ws, slug: str):  # noqa: ANN001, ANN202
    return annotate.list_images(ws, slug)[0]


def _predict_gt(ws, slug: str, run_id: int, image_id: int, scores=None) -> list[int]:  # noqa: ANN001
    """Store one prediction per ground truth of the image (its exact mask), scores 0.9, 0.8, ..."""
    size_wh, gts = ground_truth(ws, slug, image_id)
    scores = scores or [0.9 - 0.1 * k for k in range(len(gts))]
    preds = [as_prediction(g, size_wh, sc) for g, sc in zip(gts, scores, strict=False)]
    review.store_run_predictions(ws, slug, run_id, {image_id: preds})
    return [p.id for p in review.list_predictions(ws, slug, run_id=run_id, image_id=image_id)]


def test_store_and_list_predictions_with_filters(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    im = _first_image(ws, demo)
    size_wh, gts = ground_truth(ws, demo, im.id)
    preds = [as_prediction(g, size_wh, 0.3 + 0.2 * k) for k, g in enumerate(gts)]
    got = review.store_run_predictions(ws, demo, run, {im.id: preds})
    assert (got.images, got.predictions) == (1, len(gts))
    listed = review.list_predictions(ws, demo, run_id=run, image_id=im.id)
    assert [p.score for p in listed] == sorted((p.score for p in preds), reverse=True)
    top = listed[0]
    assert top.status == "pending" and top.run_id == run and top.image_id == im.id
    assert top.instance.source == "predicted" and top.instance.rle is not None
    assert top.instance.bbox_xywh is not None and top.instance.area and top.instance.area > 0
    assert len(review.list_predictions(ws, demo, run_id=run, min_score=0.45)) == sum(
        p.score >= 0.45 for p in preds
    )
    assert review.list_predictions(ws, demo, run_id=run, status="accepted") == []
    assert review.list_predictions(ws, demo, run_id=make_run(ws, demo, "other")) == []


def test_storing_again_replaces_pending_but_keeps_decisions(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    im = next(i for i in annotate.list_images(ws, demo) if len(ground_truth(ws, demo, i.id)[1]) >= 2)
    ids = _predict_gt(ws, demo, run, im.id)
    review.accept(ws, demo, ids[0])
    review.reject(ws, demo, ids[1])
    size_wh, gts = ground_truth(ws, demo, im.id)
    review.store_run_predictions(ws, demo, run, {im.id: [as_prediction(gts[0], size_wh, 0.5)]})
    statuses = sorted(p.status for p in review.list_predictions(ws, demo, run_id=run, image_id=im.id))
    assert statuses == ["accepted", "pending", "rejected"]


def test_score_threshold_drops_low_predictions(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    im = _first_image(ws, demo)
    size_wh, gts = ground_truth(ws, demo, im.id)
    preds = [as_prediction(gts[0], size_wh, s) for s in (0.2, 0.6, 0.9)]
    got = review.store_run_predictions(ws, demo, run, {im.id: preds}, score_threshold=0.5)
    assert got.predictions == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: replace(i, category="dog"), "unknown class 'dog'"),
        (lambda i: replace(i, rle=mask_to_rle(np.ones((5, 7), np.uint8))), "does not match the image"),
    ],
)
def test_bad_predictions_are_refused_and_nothing_is_stored(ws, demo, change, message) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    im = _first_image(ws, demo)
    size_wh, gts = ground_truth(ws, demo, im.id)
    good = as_prediction(gts[0], size_wh, 0.9)
    with pytest.raises(ValidationError, match=message):
        review.store_run_predictions(ws, demo, run, {im.id: [good, change(good)]})
    assert review.list_predictions(ws, demo, run_id=run) == []


def test_run_and_image_of_another_project_are_refused(ws, demo) -> None:  # noqa: ANN001
    other = projects.create_project(ws, "Other").slug
    foreign_run = make_run(ws, other)
    im = _first_image(ws, demo)
    with pytest.raises(NotFoundError, match="another project"):
        review.store_run_predictions(ws, demo, foreign_run, {im.id: []})
    with pytest.raises(NotFoundError, match="no image"):
        review.store_run_predictions(ws, other, foreign_run, {im.id: []})
    with pytest.raises(NotFoundError, match="no run"):
        review.list_review_images(ws, demo, 9999)


def test_accept_makes_an_editable_predicted_annotation_in_annotator_and_export(ws, demo, tmp_path) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    im = _first_image(ws, demo)
    size_wh, gts = ground_truth(ws, demo, im.id)
    before = annotate.load_image(ws, demo, im.id)
    # a prediction of a new object: the first ground truth shifted right a little, as a mask
    mask = np.roll(annotate_mask(gts[0], size_wh), 3, axis=1)
    pred = Instance(category=gts[0].category, rle=mask_to_rle(mask), score=0.77, source="predicted")
    review.store_run_predictions(ws, demo, run, {im.id: [pred]})
    (p,) = review.list_predictions(ws, demo, run_id=run)

    ann_id = review.accept(ws, demo, p.id).annotation_ids[0]

    after = annotate.load_image(ws, demo, im.id)
    assert after.version == before.version + 1
    new = next(i for i in after.instances if i.id == ann_id)
    assert new.source == "predicted" and new.score == pytest.approx(0.77)
    assert new.polygons and new.rle is None  # polygons: editable in the annotator
    iou = rle_iou([instance_to_rle(new, size_wh)], [pred.rle], [False])[0, 0]
    assert iou > 0.9
    assert new.area == pytest.approx(float(mask.sum()), rel=0.1)
    (p2,) = review.list_predictions(ws, demo, run_id=run)
    assert p2.status == "accepted" and p2.annotation_id == ann_id
    # an annotator that had the image open before the accept gets a conflict, not an overwrite
    with pytest.raises(ConflictError):
        annotate.save_image(ws, demo, im.id, before.instances, expected_version=before.version)
    # accepting again is a no-op that names the same annotation
    assert review.accept(ws, demo, p.id).annotation_ids[0] == ann_id
    assert annotate.load_image(ws, demo, im.id).version == after.version

    paths = export.export_coco(ws, demo, tmp_path / "out")
    anns = [a for path in paths for a in json.loads(Path(path).read_text())["annotations"]]
    images = {i["id"]: i["file_name"] for path in paths for i in json.loads(Path(path).read_text())["images"]}
    on_image = [a for a in anns if images[a["image_id"]] == im.file_name]
    assert len(on_image) == len(gts) + 1
    exported = max(on_image, key=lambda a: a.get("score") or 0)
    assert isinstance(exported["segmentation"], list) and exported["area"] == pytest.approx(new.area)


def annotate_mask(inst: Instance, size_wh: tuple[int, int]) -> np.ndarray:
    from workbench.geometry import instance_to_mask

    return instance_to_mask(inst, size_wh)


def test_accept_as_mask_keeps_rle_and_unlabeled_image_becomes_in_progress(ws, demo) -> None:  # noqa: ANN001
    imports.import_images(ws, demo, [ImageSource(name="blank.png", data=image_bytes(40, 30, seed=7))])
    blank = annotate.list_images(ws, demo, unannotated=True)[0]
    assert blank.status == "unlabeled"
    run = make_run(ws, demo)
    m = np.zeros((blank.height, blank.width), np.uint8)
    m[5:15, 10:30] = 1
    m[8:11, 15:20] = 0  # a hole: only a mask keeps it
    review.store_run_predictions(
        ws, demo, run, {blank.id: [Instance(category="square", rle=mask_to_rle(m), score=0.6)]}
    )
    (p,) = review.list_predictions(ws, demo, run_id=run)
    ann_id = review.accept(ws, demo, p.id, as_polygons=False).annotation_ids[0]
    loaded = annotate.load_image(ws, demo, blank.id)
    (inst,) = loaded.instances
    assert inst.id == ann_id and inst.rle == p.instance.rle and inst.area == float(m.sum())
    assert loaded.image.status == "in_progress"


def test_keypoints_kept_only_for_classes_with_a_schema(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    im = _first_image(ws, demo)
    m = np.zeros((im.height, im.width), np.uint8)
    m[10:30, 10:30] = 1
    kps = (20.0, 10.0, 2, 10.0, 30.0, 2, 30.0, 30.0, 1)
    preds = [
        Instance(category="triangle", rle=mask_to_rle(m), keypoints=kps, score=0.9),
        Instance(category="circle", rle=mask_to_rle(m), keypoints=kps, score=0.8),
    ]
    review.store_run_predictions(ws, demo, run, {im.id: preds})
    tri, circ = review.list_predictions(ws, demo, run_id=run)
    assert tri.instance.keypoints == kps and circ.instance.keypoints is None
    ann_id = review.accept(ws, demo, tri.id).annotation_ids[0]
    new = next(i for i in annotate.load_image(ws, demo, im.id).instances if i.id == ann_id)
    assert new.keypoints == kps and new.num_keypoints == 3


def test_reject_and_its_limits(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    im = next(i for i in annotate.list_images(ws, demo) if len(ground_truth(ws, demo, i.id)[1]) >= 2)
    ids = _predict_gt(ws, demo, run, im.id)
    n_before = len(annotate.load_image(ws, demo, im.id).instances)
    review.reject(ws, demo, ids[0])
    assert review.list_predictions(ws, demo, run_id=run, status="rejected")[0].id == ids[0]
    assert len(annotate.load_image(ws, demo, im.id).instances) == n_before
    ann_id = review.accept(ws, demo, ids[1]).annotation_ids[0]
    with pytest.raises(WorkbenchError, match=f"accepted as annotation {ann_id}"):
        review.reject(ws, demo, ids[1])
    with pytest.raises(NotFoundError, match="no prediction"):
        review.reject(ws, demo, 123456)
    # once its annotation is deleted in the annotator, the prediction can be rejected
    loaded = annotate.load_image(ws, demo, im.id)
    annotate.save_image(
        ws, demo, im.id, [i for i in loaded.instances if i.id != ann_id], expected_version=loaded.version
    )
    (p,) = [p for p in review.list_predictions(ws, demo, run_id=run) if p.id == ids[1]]
    assert p.status == "accepted" and p.annotation_id is None  # ON DELETE SET NULL
    review.reject(ws, demo, ids[1])


@pytest.mark.parametrize(("threshold", "expected"), [(0.0, 3), (0.65, 2), (0.85, 1), (0.95, 0)])
def test_accept_all_above_a_threshold(ws, demo, threshold, expected) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    im = _first_image(ws, demo)
    size_wh, gts = ground_truth(ws, demo, im.id)
    preds = [as_prediction(gts[0], size_wh, s) for s in (0.9, 0.7, 0.6)]
    review.store_run_predictions(ws, demo, run, {im.id: preds})
    version = annotate.load_image(ws, demo, im.id).version
    assert len(review.accept_all_above(ws, demo, im.id, run, threshold).annotation_ids) == expected
    after = annotate.load_image(ws, demo, im.id)
    assert sum(i.source == "predicted" for i in after.instances) == expected
    assert after.version == version + (1 if expected else 0)
    accepted = review.list_predictions(ws, demo, run_id=run, status="accepted")
    assert all(p.score >= threshold for p in accepted) and len(accepted) == expected
    assert len(review.accept_all_above(ws, demo, im.id, run, threshold).annotation_ids) == 0  # nothing pending is left above


def test_accept_all_refuses_a_threshold_outside_0_1(ws, demo) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="within 0..1"):
        review.accept_all_above(ws, demo, _first_image(ws, demo).id, make_run(ws, demo), 1.5)


def test_prelabel_predicts_only_unlabelled_images(ws, demo) -> None:  # noqa: ANN001
    imports.import_images(
        ws, demo, [ImageSource(name=f"new{i}.png", data=image_bytes(40, 30, seed=50 + i)) for i in range(2)]
    )
    run = make_run(ws, demo)
    seen: list = []

    def predict(records):  # noqa: ANN001, ANN202
        seen.extend(records)
        out = []
        for r in records:
            assert Path(r.path).is_file()  # absolute paths the predictor can open
            m = np.zeros((r.height, r.width), np.uint8)
            m[2:12, 3:13] = 1
            out.append([Instance(category="square", rle=mask_to_rle(m), score=0.8)])
        return out

    got = review.prelabel_unlabeled(ws, demo, run, predict)
    unlabeled = annotate.list_images(ws, demo, unannotated=True)
    assert {r.id for r in seen} == {r.id for r in unlabeled} and len(seen) == 2
    assert (got.images, got.predictions) == (2, 2)
    assert {p.image_id for p in review.list_predictions(ws, demo, run_id=run)} == {r.id for r in unlabeled}


def test_prelabel_refuses_a_predictor_that_loses_images(ws, demo) -> None:  # noqa: ANN001
    imports.import_images(ws, demo, [ImageSource(name="n.png", data=image_bytes(40, 30, seed=99))])
    with pytest.raises(ValidationError, match="results for 0 images, 1 was asked for"):
        review.prelabel_unlabeled(ws, demo, make_run(ws, demo), lambda records: [])


def _noisy_predictions(ws, demo, run):  # noqa: ANN001, ANN202
    """Per image a different quality: exact, shifted, wrong class, spurious-only, missing one."""
    all_images = annotate.list_images(ws, demo)
    images = [all_images[i] for i in (0, 1, 2, 4, 3)]  # the last one has 4 objects, 3 to miss
    results = {}
    plan = {}
    for k, im in enumerate(images):
        size_wh, gts = ground_truth(ws, demo, im.id)
        g = gts[0]
        mask = annotate_mask(g, size_wh)
        if k == 0:  # exact copies of every object, confident
            preds = [as_prediction(x, size_wh, 0.95) for x in gts]
        elif k == 1:  # the first object shifted: poor localisation
            shift = max(int(np.sqrt(mask.sum()) * 0.6), 4)
            preds = [Instance(category=g.category, rle=mask_to_rle(np.roll(mask, shift, axis=1)), score=0.6)]
            preds += [as_prediction(x, size_wh, 0.9) for x in gts[1:]]
        elif k == 2:  # right place, wrong class
            other = "circle" if g.category != "circle" else "square"
            preds = [as_prediction(x, size_wh, 0.9) for x in gts[1:]]
            preds.append(replace(as_prediction(g, size_wh, 0.85), category=other, keypoints=None))
        elif k == 3:  # a box in an empty corner plus all objects; low confidence
            corner = np.zeros_like(mask)
            corner[0:3, 0:3] = 1
            preds = [as_prediction(x, size_wh, 0.5) for x in gts]
            preds.append(Instance(category="square", rle=mask_to_rle(corner), score=0.2))
        else:  # the model found nothing but one object
            preds = [as_prediction(gts[-1], size_wh, 0.7)]
        results[im.id] = preds
        plan[k] = (im.id, len(gts))
    review.store_run_predictions(ws, demo, run, results)
    return plan


def test_review_list_sorts_and_filters(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    plan = _noisy_predictions(ws, demo, run)
    rows = review.list_review_images(ws, demo, run, sort="confidence")
    by_id = {r.image.id: r for r in rows}
    assert set(by_id) == {im_id for im_id, _ in plan.values()}  # only images with predictions
    assert rows[0].image.id == plan[3][0] and rows[0].min_score == pytest.approx(0.2)
    assert [r.min_score for r in rows] == sorted(r.min_score for r in rows)

    exact = by_id[plan[0][0]]
    assert exact.num_errors == 0 and exact.disagreement == pytest.approx(0.0, abs=1e-9)
    assert exact.errors["true_positive"] == plan[0][1]
    assert by_id[plan[1][0]].errors["poor_localisation"] == 1
    assert by_id[plan[2][0]].errors["wrong_class"] == 1
    assert by_id[plan[3][0]].errors["spurious"] == 1
    assert by_id[plan[4][0]].errors["missed"] == plan[4][1] - 1

    dis = review.list_review_images(ws, demo, run, sort="disagreement")
    assert [r.disagreement for r in dis] == sorted((r.disagreement for r in dis), reverse=True)
    assert dis[-1].image.id == plan[0][0]
    err = review.list_review_images(ws, demo, run, sort="errors")
    assert [r.num_errors for r in err] == sorted((r.num_errors for r in err), reverse=True)

    only_wrong = review.list_review_images(ws, demo, run, error_type="wrong_class")
    assert [r.image.id for r in only_wrong] == [plan[2][0]]
    assert {r.image.id for r in review.list_review_images(ws, demo, run, error_type="spurious")} == {
        plan[3][0]
    }
    # ignoring low scores hides the corner box
    assert review.list_review_images(ws, demo, run, error_type="spurious", min_score=0.3) == []

    with ws.store.transaction() as s:
        cats = {c.name: c.id for c in category_repo.list_categories(s, project_repo.project_id(s, demo))}
    for name, cid in cats.items():
        for r in review.list_review_images(ws, demo, run, category_id=cid):
            gts = ground_truth(ws, demo, r.image.id)[1]
            preds = review.list_predictions(ws, demo, run_id=run, image_id=r.image.id)
            assert any(i.category == name for i in (*gts, *(p.instance for p in preds)))
    with pytest.raises(ValidationError, match="sort must be one of"):
        review.list_review_images(ws, demo, run, sort="random")  # type: ignore[arg-type]


def test_rejecting_the_spurious_prediction_clears_the_error(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    plan = _noisy_predictions(ws, demo, run)
    image_id = plan[3][0]
    detail = review.predictions_for_image(ws, demo, image_id, run)
    (spurious,) = [p for p in detail.predictions if detail.verdicts[p.id].kind == "spurious"]
    review.reject(ws, demo, spurious.id)
    assert review.list_review_images(ws, demo, run, error_type="spurious") == []
    again = review.predictions_for_image(ws, demo, image_id, run)
    assert spurious.id not in again.verdicts and len(again.predictions) == len(detail.predictions)


def test_accepted_predictions_do_not_count_as_their_own_ground_truth(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    plan = _noisy_predictions(ws, demo, run)
    image_id, n_gt = plan[4]
    detail = review.predictions_for_image(ws, demo, image_id, run)
    assert len(detail.missed) == n_gt - 1
    (p,) = detail.predictions
    review.accept(ws, demo, p.id)
    after = review.predictions_for_image(ws, demo, image_id, run)
    assert len(after.ground_truth) == n_gt + 1
    assert after.verdicts[p.id].kind == "true_positive" and len(after.missed) == n_gt - 1
    (row,) = [r for r in review.list_review_images(ws, demo, run) if r.image.id == image_id]
    assert row.errors["true_positive"] == 1 and row.errors["missed"] == n_gt - 1
    assert row.num_ground_truth == n_gt + 1 and row.num_pending == 0


def test_split_includes_images_without_predictions(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    val = annotate.list_images(ws, demo, split="val")
    assert val
    rows = review.list_review_images(ws, demo, run, split="val", sort="confidence")
    assert {r.image.id for r in rows} == {v.id for v in val}
    assert all(r.min_score is None and r.errors["missed"] == r.num_ground_truth for r in rows)


def test_deleting_image_run_or_class_cascades(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    images = annotate.list_images(ws, demo)
    for im in images[:3]:
        _predict_gt(ws, demo, run, im.id)
    total = len(review.list_predictions(ws, demo))
    n_first = len(review.list_predictions(ws, demo, image_id=images[0].id))
    annotate.delete_image(ws, demo, images[0].id)
    assert len(review.list_predictions(ws, demo)) == total - n_first

    run2 = make_run(ws, demo, "second")
    _predict_gt(ws, demo, run2, images[1].id)
    with ws.store.transaction() as s:
        s.execute(delete(RunRow).where(RunRow.id == run))
    left = review.list_predictions(ws, demo)
    assert left and {p.run_id for p in left} == {run2}

    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, demo)
        cat = next(c for c in category_repo.list_categories(s, pid) if c.name == left[0].instance.category)
        category_repo.delete_category(s, pid, cat.id, delete_annotations=True)
        remaining = s.scalars(select(PredictionRow.category_id)).all()
    assert cat.id not in remaining


def test_deleting_the_project_removes_its_predictions(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    _predict_gt(ws, demo, run, _first_image(ws, demo).id)
    projects.delete_project(ws, demo)
    with ws.store.transaction() as s:
        assert s.scalars(select(PredictionRow.id)).all() == []


BAD_INFERENCE = {
    "unknown device": ({"device": "banana"}, "unknown device 'banana'"),
    "absent gpu": ({"device": "cuda:7"}, "device cuda:7 asks for a GPU"),
    "negative threshold": ({"score_threshold": -3.0}, "between 0 and 1, got -3.0"),
    "threshold above one": ({"score_threshold": 2.0}, "between 0 and 1, got 2.0"),
}


@pytest.mark.parametrize("case", list(BAD_INFERENCE), ids=list(BAD_INFERENCE))
@pytest.mark.parametrize("use", ["predict", "evaluate"])
def test_predict_and_evaluate_refuse_a_bad_device_or_threshold_before_loading(
    ws, project: str, case: str, use: str  # noqa: ANN001
) -> None:
    from workbench.services import evaluation, review

    kwargs, message = BAD_INFERENCE[case]
    # run 999 does not exist: the options are checked first, so the message is about them
    with pytest.raises(ValidationError, match=message):
        if use == "predict":
            review.predict_images(ws, project, 999, [], **kwargs)
        else:
            evaluation.evaluate_run(ws, project, 999, **kwargs)


KPS = (20.0, 10.0, 2, 10.0, 30.0, 2, 30.0, 30.0, 1)

THREE = KeypointSchema(names=("top", "left", "right"))


def _pose_prediction(ws, slug: str) -> tuple[int, int, int]:  # noqa: ANN001
    """A class 'pose' with 3 keypoints (no annotations yet, so its schema may change) and a pending
    prediction of it with 3 keypoints; returns (class id, image id, prediction id)."""
    cat = classes.add_category(ws, slug, Category(name="pose", keypoints=THREE))
    run = make_run(ws, slug)
    im = annotate.list_images(ws, slug)[0]
    m = np.zeros((im.height, im.width), np.uint8)
    m[10:30, 10:30] = 1
    review.store_run_predictions(
        ws, slug, run, {im.id: [Instance(category="pose", rle=mask_to_rle(m), keypoints=KPS, score=0.9)]}
    )
    (p,) = review.list_predictions(ws, slug, run_id=run)
    assert p.instance.keypoints == KPS
    return cat.id, im.id, p.id  # type: ignore[return-value]


def _accepted(ws, slug: str, image_id: int, ann_id: int) -> Instance:  # noqa: ANN001
    return next(i for i in annotate.load_image(ws, slug, image_id).instances if i.id == ann_id)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (None, "class 'pose' has no keypoints now"),
        (KeypointSchema(names=("a", "b", "c", "d")), "class 'pose' has 4 keypoints now, the prediction 3"),
        (KeypointSchema(names=("a", "b")), "class 'pose' has 2 keypoints now, the prediction 3"),
    ],
)
def test_accept_drops_keypoints_that_no_longer_fit_and_says_so(ws, demo, tmp_path, schema, message) -> None:  # noqa: ANN001
    cat_id, image_id, pred_id = _pose_prediction(ws, demo)
    classes.update_category(ws, demo, cat_id, keypoints=schema)
    before = annotate.load_image(ws, demo, image_id).version

    got = review.accept(ws, demo, pred_id)

    (ann_id,) = got.annotation_ids
    assert annotate.load_image(ws, demo, image_id).version == before + 1  # one change, like a save
    assert len(got.notes) == 1 and message in got.notes[0] and "mask was kept" in got.notes[0]
    new = _accepted(ws, demo, image_id, ann_id)
    assert new.keypoints is None and new.polygons  # the mask is still there, traced to polygons
    # the annotation is well formed: the annotator can save the image again as it is
    loaded = annotate.load_image(ws, demo, image_id)
    annotate.save_image(ws, demo, image_id, loaded.instances, expected_version=loaded.version)
    # and the COCO export gives the class's own keypoint count (or none)
    paths = export.export_coco(ws, demo, tmp_path / "out")
    anns = [a for path in paths for a in json.loads(Path(path).read_text())["annotations"]]
    (exported,) = [a for a in anns if a["id"] == ann_id or a.get("score") == pytest.approx(0.9)]
    k = 0 if schema is None else schema.num_keypoints
    assert len(exported.get("keypoints") or []) in (0, 3 * k)
    assert exported.get("num_keypoints", 0) == 0


def test_accept_keeps_keypoints_that_still_fit(ws, demo) -> None:  # noqa: ANN001
    cat_id, image_id, pred_id = _pose_prediction(ws, demo)
    classes.update_category(ws, demo, cat_id, keypoints=KeypointSchema(names=("head", "l", "r")))
    got = review.accept(ws, demo, pred_id)
    assert got.notes == []
    assert _accepted(ws, demo, image_id, got.annotation_ids[0]).keypoints == KPS


def test_accept_all_above_drops_misfit_keypoints_too(ws, demo) -> None:  # noqa: ANN001
    cat_id, image_id, pred_id = _pose_prediction(ws, demo)
    classes.update_category(ws, demo, cat_id, keypoints=None)
    run_id = review.list_predictions(ws, demo)[0].run_id
    got = review.accept_all_above(ws, demo, image_id, run_id, 0.5)
    assert len(got.annotation_ids) == 1 and "no keypoints now" in got.notes[0]
    assert _accepted(ws, demo, image_id, got.annotation_ids[0]).keypoints is None
    assert review.list_predictions(ws, demo, run_id=run_id)[0].status == "accepted"


def test_accept_names_the_annotation_it_wrote(ws, demo) -> None:  # noqa: ANN001
    cat_id, image_id, pred_id = _pose_prediction(ws, demo)
    classes.update_category(ws, demo, cat_id, keypoints=None)
    (ann_id,) = review.accept(ws, demo, pred_id).annotation_ids
    assert _accepted(ws, demo, image_id, ann_id).keypoints is None


def test_predict_images_stores_model_outputs(ws, demo, tmp_path) -> None:  # noqa: ANN001
    run = run_with_model(ws, demo, tmp_path)
    val = review.select_images(ws, demo, split="val")
    got = review.predict_images(ws, demo, run, val, score_threshold=0.5, chunk_size=1)
    assert got.images == len(val) and got.predictions > 0
    preds = review.list_predictions(ws, demo, run_id=run)
    assert {p.image_id for p in preds} == {r.id for r in val}
    sizes = {r.id: (r.height, r.width) for r in val}
    for p in preds:
        assert p.instance.category == "circle" and p.score >= 0.5 and p.status == "pending"
        assert p.instance.rle.size_hw == sizes[p.image_id] and p.instance.area > 0
        assert p.instance.keypoints is None  # circles carry no keypoints
    # and they review like any other: accept one, it is an annotation now
    ann_id = review.accept(ws, demo, preds[0].id).annotation_ids[0]
    assert ann_id in {i.id for i in annotate.load_image(ws, demo, preds[0].image_id).instances}


def test_run_without_model_file_is_explained(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    with pytest.raises(WorkbenchError, match="has no model file"):
        review.predict_images(ws, demo, run, review.select_images(ws, demo))


def test_select_images(ws, demo) -> None:  # noqa: ANN001
    every = review.select_images(ws, demo)
    assert len(every) == 6
    assert review.select_images(ws, demo, images=[str(every[1].id), every[2].file_name]) == every[1:3]
    assert review.select_images(ws, demo, unlabeled=True) == []
    with pytest.raises(ValidationError, match="choose one"):
        review.select_images(ws, demo, split="val", unlabeled=True)
    with pytest.raises(Exception, match="no image 'nope.png'"):
        review.select_images(ws, demo, images=["nope.png"])


def test_predicted_masks_have_a_real_shape(ws, demo, tmp_path) -> None:  # noqa: ANN001
    run = run_with_model(ws, demo, tmp_path)
    (im,) = review.select_images(ws, demo, images=[review.select_images(ws, demo)[0].file_name])
    review.predict_images(ws, demo, run, [im], score_threshold=0.5)
    for p in review.list_predictions(ws, demo, run_id=run):
        m = rle_to_mask(p.instance.rle)
        x, y, w, h = p.instance.bbox_xywh
        assert m.sum() == pytest.approx(p.instance.area)
        ys, xs = np.nonzero(m)
        assert xs.min() >= np.floor(x) - 1 and xs.max() <= np.ceil(x + w) + 1  # the mask lies in its box
        assert ys.min() >= np.floor(y) - 1 and ys.max() <= np.ceil(y + h) + 1
