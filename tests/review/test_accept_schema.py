"""Accepting a prediction after its class's keypoint schema changed: the mask is kept, keypoints that
no longer fit are dropped and the result says so (never a malformed annotation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.predictions import make_run
from workbench.domain import Category, Instance, KeypointSchema
from workbench.geometry import mask_to_rle
from workbench.services import annotate, classes, export, review

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
