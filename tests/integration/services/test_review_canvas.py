"""What the Review canvas starts from: the end-of-training evaluation's predictions (stored, so no
second Predict), the best-F1 score threshold, and mask outlines to draw."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.predictions import as_prediction, run_with_model
from workbench.domain import AnnotatedImage, Category, Dataset, ImageRecord, Instance, RunInfo
from workbench.geometry import instance_to_rle, rle_iou
from workbench.services import evaluation, review, training
from workbench.store import runs as run_repo

SIZE = (100, 80)


def _square(x: float, y: float, s: float = 20, category: str = "a", **kw) -> Instance:  # noqa: ANN003
    return Instance(category, polygons=((x, y, x + s, y, x + s, y + s, x, y + s),), **kw)


def _dataset(items: list[list[Instance]]) -> Dataset:
    images = [
        AnnotatedImage(
            image=ImageRecord(id=k + 1, file_name=f"{k}.png", width=SIZE[0], height=SIZE[1]),
            instances=tuple(gts),
        )
        for k, gts in enumerate(items)
    ]
    return Dataset(categories=[Category("a")], items=images)


def test_best_f1_picks_the_score_where_f1_peaks() -> None:
    gt = [[_square(0, 0), _square(40, 0)], [_square(0, 40)]]
    ds = _dataset(gt)
    preds = {
        1: [
            replace(_square(0, 0), score=0.9, source="predicted"),  # hit
            replace(_square(40, 0), score=0.7, source="predicted"),  # hit
            replace(_square(70, 50, 5), score=0.6, source="predicted"),  # spurious
        ],
        2: [
            replace(_square(0, 40), score=0.3, source="predicted"),  # hit, but below many spurious ones
            *(replace(_square(60 + k, 40, 5), score=0.5 - 0.01 * k, source="predicted") for k in range(5)),
        ],
    }
    best = evaluation.best_f1(ds, preds)
    # top 2: P=1, R=2/3 -> F1 0.8; everything (9 predictions): 3 hits -> F1 2*3/(9+3) = 0.5
    assert best == pytest.approx({"score": 0.7, "f1": 0.8, "precision": 1.0, "recall": 2 / 3})
    assert evaluation.best_f1(ds, {}) is None
    assert evaluation.best_f1(_dataset([[]]), {1: [replace(_square(0, 0), score=0.5)]}) is None


def test_equal_scores_pass_the_threshold_together() -> None:
    ds = _dataset([[_square(0, 0)]])
    preds = {1: [replace(_square(50, 50, 10), score=0.8), replace(_square(0, 0), score=0.8)]}
    best = evaluation.best_f1(ds, preds)
    assert best is not None and best["score"] == 0.8 and best["precision"] == 0.5


def _run(metrics: dict | None) -> RunInfo:
    from datetime import datetime

    return RunInfo(
        id=1, project_id=1, name="r", status="succeeded", config={}, device=None, pid=None, heartbeat_at=None,
        progress=None, metrics=metrics, error=None, run_dir="", created_at=datetime.now(), started_at=None,
        finished_at=None,
    )  # fmt: skip


def test_default_threshold_is_the_best_f1_score_else_005() -> None:
    assert review.default_threshold(_run(None))[0] == review.DEFAULT_THRESHOLD == 0.05
    assert review.default_threshold(_run({"eval": {"val": {"segm": {}}}}))[0] == 0.05
    no_hit = {"eval": {"val": {"best_f1": {"score": 0.99, "f1": 0.0}}}}
    assert review.default_threshold(_run(no_hit))[0] == 0.05
    train_only = {"eval": {"train": {"best_f1": {"score": 0.4, "f1": 0.5}}}}
    assert review.default_threshold(_run(train_only)) == (0.4, "the score at the best F1 (0.50) on train")
    both = {
        "eval": {
            "train": {"best_f1": {"score": 0.4, "f1": 0.5}},
            "val": {"best_f1": {"score": 0.62, "f1": 0.7}},
        }
    }
    value, why = review.default_threshold(_run(both))
    assert value == 0.62 and "val" in why


def test_outline_of_a_mask_covers_the_same_pixels() -> None:
    gt = _square(10, 10, 30)
    pred = as_prediction(gt, SIZE, 0.9)
    assert pred.rle is not None and not pred.polygons
    drawn = review.outline(pred)
    assert drawn.rle is None and drawn.polygons
    iou = rle_iou([instance_to_rle(drawn, SIZE)], [pred.rle], [False])[0][0]
    assert iou > 0.9
    assert review.outline(gt) is gt  # polygons already


def test_evaluation_stores_its_predictions_and_best_f1_for_review(ws, demo, tmp_path) -> None:  # noqa: ANN001
    run = run_with_model(ws, demo, tmp_path)
    assert not review.list_predictions(ws, demo, run_id=run)
    evaluation.evaluate_run(ws, demo, run, split="val", score_threshold=0.05)
    val_ids = {it.image.id for it in training.labelled_dataset(ws, demo, ["val"]).items}
    stored = review.list_predictions(ws, demo, run_id=run)
    assert stored and {p.image_id for p in stored} <= val_ids
    assert all(p.status == "pending" and p.score >= 0.05 for p in stored)
    with ws.store.transaction() as s:
        info = run_repo.get_run(s, run)
    summary = info.metrics["eval"]["val"]
    assert summary["predictions_stored"] == len(stored)
    best = summary["best_f1"]
    assert best is not None and 0.0 <= best["f1"] <= 1.0
    assert best["score"] in {p.score for p in stored}
    value, _ = review.default_threshold(info)
    assert value == (best["score"] if best["f1"] > 0 else review.DEFAULT_THRESHOLD)
    # the review list shows those images at once, with no second prediction
    rows = review.list_review_images(ws, demo, run, min_score=value)
    assert {r.image.id for r in rows} == {p.image_id for p in stored}

    # evaluating again replaces the pending ones and keeps a decision
    first = stored[0]
    review.reject(ws, demo, first.id)
    evaluation.evaluate_run(ws, demo, run, split="val", score_threshold=0.05)
    again = review.list_predictions(ws, demo, run_id=run)
    assert sum(p.status == "rejected" for p in again) == 1
    assert sum(p.status == "pending" for p in again) == len(stored)
