"""A keypoint-heatmap run of the demo project through the services: evaluate (PCK, OKS AP, report),
predict (keypoints for the stored boxes, shown as the run's predictions), accept onto the instance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.pose import heatmap_run
from workbench.services import evaluation, review, training
from workbench.services.demo import create_demo_project
from workbench.store import annotations as annotation_repo
from workbench.store import predictions as pstore
from workbench.store import projects as project_repo


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # noqa: ANN201
    from workbench.services.workspace import open_workspace

    ws = open_workspace(tmp_path_factory.mktemp("pose") / "ws")
    slug = create_demo_project(ws, num_images=10, test_images=0).slug
    run_id = heatmap_run(ws, slug)
    yield ws, slug, run_id
    ws.close()


def _triangles(ws, slug: str, split: str) -> dict[int, list]:  # noqa: ANN001
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        from workbench.store import images as image_repo

        recs = image_repo.list_images(s, pid, split=split)
        return {int(r.id): [i for i in annotation_repo.load_instances(s, int(r.id)) if i.category == "triangle"] for r in recs}


def test_evaluate_writes_pck_and_oks_ap(trained):
    ws, slug, run_id = trained
    report = evaluation.evaluate_run(ws, slug, run_id, split="val")
    out = Path(report).parent
    metrics = json.loads((out / "metrics.json").read_text())
    assert "keypoints" in metrics["types"] and "AP" in metrics["types"]["keypoints"]["stats"]
    pck = json.loads((out / "pck.json").read_text())
    tri = _triangles(ws, slug, "val")
    labelled = sum(i.num_keypoints for v in tri.values() for i in v)
    assert pck["labelled"] == labelled > 0 and pck["normaliser"] == "max(box w, box h)"
    assert 0.0 <= pck["pck"] <= 1.0
    summary = training.get_run(ws, slug, run_id).metrics["eval"]["val"]
    assert summary["pck"] == pck["pck"] and summary["keypoints"]["AP"] == metrics["types"]["keypoints"]["stats"]["AP"]
    assert "PCK@0.2" in report.read_text()


def test_predict_gives_keypoints_for_the_stored_boxes_and_accept_writes_them_onto_the_instance(trained):
    ws, slug, run_id = trained
    recs = review.select_images(ws, slug, split="train")
    got = review.predict_images(ws, slug, run_id, recs, device="cpu")
    tri = _triangles(ws, slug, "train")
    assert got.predictions == sum(len(v) for v in tri.values()) > 0
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        preds = pstore.list_predictions(s, pid, run_id=run_id, status="pending")
    image_id = next(i for i, v in tri.items() if v)
    mine = [p for p in preds if p.image_id == image_id]
    boxes = sorted(tuple(round(v, 3) for v in i.bbox_xywh) for i in tri[image_id])
    assert sorted(tuple(round(v, 3) for v in p.instance.bbox_xywh) for p in mine) == boxes
    pred = mine[0]
    assert len(pred.instance.keypoints) == 9 and pred.instance.category == "triangle"
    with ws.store.transaction() as s:
        before = annotation_repo.load_instances(s, image_id)
    accepted = review.accept(ws, slug, pred.id)  # the Review page's accept, for a heatmap run
    with ws.store.transaction() as s:
        after = {i.id: i for i in annotation_repo.load_instances(s, image_id)}
        again = pstore.get_prediction(s, project_repo.project_id(s, slug), pred.id)
    assert len(after) == len(before)  # onto the instance, not a second one
    target = after[accepted.annotation_ids[0]]
    assert np.allclose(target.keypoints, pred.instance.keypoints) and target.category == "triangle"
    assert again.status == "accepted" and again.annotation_id == target.id
    assert target.version == next(i.version for i in before if i.id == target.id) + 1


def test_accept_all_above_puts_each_prediction_onto_its_instance_and_a_moved_box_is_refused(trained):
    ws, slug, run_id = trained
    recs = review.select_images(ws, slug, split="val")
    review.predict_images(ws, slug, run_id, recs, device="cpu")
    tri = _triangles(ws, slug, "val")
    image_id = max(tri, key=lambda i: len(tri[i]))
    with ws.store.transaction() as s:
        n_before = len(annotation_repo.load_instances(s, image_id))
    got = review.accept_all_above(ws, slug, image_id, run_id, 0.0)
    assert sorted(got.annotation_ids) == sorted(i.id for i in tri[image_id])
    with ws.store.transaction() as s:
        after = annotation_repo.load_instances(s, image_id)
        pid = project_repo.project_id(s, slug)
        preds = {p.annotation_id: p for p in pstore.list_predictions(s, pid, run_id=run_id, image_id=image_id)}
    assert len(after) == n_before
    for inst in after:
        if inst.category == "triangle":
            assert np.allclose(inst.keypoints, preds[inst.id].instance.keypoints)
    # a prediction whose annotation's box moved since is refused, in one line, changing nothing
    review.predict_images(ws, slug, run_id, [r for r in recs if r.id == image_id], device="cpu")
    with ws.store.transaction() as s:
        pending = pstore.list_predictions(s, pid, run_id=run_id, image_id=image_id, status="pending")
        target = next(i for i in after if i.category == "triangle")
        x, y, w, h = target.bbox_xywh
        from sqlalchemy import update

        from workbench.store.models import AnnotationRow

        s.execute(update(AnnotationRow).where(AnnotationRow.id == target.id).values(bbox=[x + 3, y, w, h]))
    moved = next(p for p in pending if np.allclose(p.instance.bbox_xywh, (x, y, w, h)))
    with pytest.raises(Exception, match="no triangle annotation with its box"):
        review.accept(ws, slug, moved.id)
    with ws.store.transaction() as s:
        assert pstore.get_prediction(s, pid, moved.id).status == "pending"


def test_review_shows_the_predicted_keypoints(trained):
    ws, slug, run_id = trained
    recs = review.select_images(ws, slug, split="val")
    review.predict_images(ws, slug, run_id, recs, device="cpu")
    tri = _triangles(ws, slug, "val")
    image_id = next(i for i, v in tri.items() if v)
    detail = review.predictions_for_image(ws, slug, image_id, run_id)
    pending = [p for p in detail.predictions if p.status == "pending"]
    assert len(pending) == len(tri[image_id]) and all(len(p.instance.keypoints) == 9 for p in pending)
    colors = {"circle": "#ff0000", "square": "#00ff00", "triangle": "#0000ff"}
    with_preds = np.asarray(review.draw_image_review(ws, slug, detail, colors, ground_truth=False, missed=False))
    without = np.asarray(review.draw_image_review(ws, slug, detail, colors, ground_truth=False, missed=False,
                                                  predictions=False))
    assert with_preds.shape == without.shape
    scale = with_preds.shape[1] / detail.image.width
    for p in pending:  # something is drawn at each predicted keypoint
        kp = np.asarray(p.instance.keypoints).reshape(-1, 3)
        for x, y, _v in kp:
            cx, cy = int(min(x * scale, with_preds.shape[1] - 1)), int(min(y * scale, with_preds.shape[0] - 1))
            patch = (slice(max(cy - 2, 0), cy + 3), slice(max(cx - 2, 0), cx + 3))
            assert (with_preds[patch] != without[patch]).any()
