"""image_disagreement: the review's error kinds on hand-built masks, and agreement with the evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.domain import IGNORE_LABEL, Instance
from workbench.evaluate.matching import image_disagreement
from workbench.geometry import mask_to_rle

SIZE_WH = (40, 30)


def box(x: int, y: int, w: int, h: int, category: str = "a", score: float | None = None, **kw) -> Instance:  # noqa: ANN003
    m = np.zeros((SIZE_WH[1], SIZE_WH[0]), np.uint8)
    m[y : y + h, x : x + w] = 1
    return Instance(category=category, rle=mask_to_rle(m), score=score, **kw)


GT = [box(0, 0, 10, 10), box(20, 10, 10, 10, "b")]


@pytest.mark.parametrize(
    ("preds", "kinds", "missed"),
    [
        (
            [box(0, 0, 10, 10, score=0.9), box(20, 10, 10, 10, "b", 0.8)],
            ["true_positive", "true_positive"],
            [],
        ),
        ([box(0, 0, 10, 10, "b", 0.9)], ["wrong_class"], [1]),
        ([box(5, 0, 10, 10, score=0.9)], ["poor_localisation"], [1]),  # IoU 50/150
        ([box(32, 0, 5, 5, score=0.9)], ["spurious"], [0, 1]),
        # a duplicate of a found object is spurious (its ground truth is taken)
        ([box(0, 0, 10, 10, score=0.9), box(0, 0, 10, 9, score=0.5)], ["true_positive", "spurious"], [1]),
        # the higher score takes the ground truth, whatever the input order
        ([box(0, 0, 10, 9, score=0.5), box(0, 0, 10, 10, score=0.9)], ["spurious", "true_positive"], [1]),
        ([], [], [0, 1]),
    ],
)
def test_error_kinds(preds, kinds, missed) -> None:  # noqa: ANN001
    result = image_disagreement(preds, GT, SIZE_WH)
    assert [v.kind for v in result.verdicts] == kinds
    assert list(result.missed) == missed
    assert result.num_errors == sum(k != "true_positive" for k in kinds) + len(missed)


def test_disagreement_is_one_minus_best_same_class_iou_and_misses_count_one() -> None:
    result = image_disagreement([box(5, 0, 10, 10, score=0.9)], GT, SIZE_WH)
    assert result.verdicts[0].best_iou == pytest.approx(50 / 150)
    assert result.disagreement == pytest.approx(((1 - 50 / 150) + 1) / 2)
    assert image_disagreement([], [], SIZE_WH).disagreement == 0.0


def test_crowd_and_ignore_regions_are_not_missed_and_absorb_predictions() -> None:
    crowd = box(0, 20, 10, 10, iscrowd=True)
    ignore = box(30, 0, 10, 10, IGNORE_LABEL)
    result = image_disagreement([box(0, 20, 10, 10, score=0.7)], [*GT, crowd, ignore], SIZE_WH)
    assert result.verdicts[0].kind == "true_positive"  # lies on a crowd region: not an error
    assert list(result.missed) == [0, 1]  # indices into the list given, crowd and ignore not missed


def test_box_only_ground_truth_compares_as_its_box() -> None:
    gt = [Instance(category="a", bbox_xywh=(0.0, 0.0, 10.0, 10.0))]
    result = image_disagreement([box(0, 0, 10, 10, score=0.9)], gt, SIZE_WH)
    assert result.verdicts[0].kind == "true_positive" and result.verdicts[0].best_iou == pytest.approx(1.0)


def test_kinds_agree_with_the_evaluation_error_list() -> None:
    """Same inputs through workbench.evaluate.coco_eval give the same errors (segm, score >= 0)."""
    from workbench.evaluate import coco_eval

    preds = [box(0, 0, 10, 10, "b", 0.9), box(21, 10, 10, 10, "b", 0.6), box(32, 0, 5, 5, score=0.3)]
    ours = image_disagreement(preds, GT, SIZE_WH)
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    gt = {
        "images": [{"id": 1, "file_name": "x.png", "width": SIZE_WH[0], "height": SIZE_WH[1]}],
        "categories": cats,
        "annotations": [
            {"id": k + 1, "image_id": 1, "category_id": 1 if g.category == "a" else 2,
             "segmentation": g.rle.to_coco(), "area": 100.0, "bbox": [0, 0, 10, 10], "iscrowd": 0}
            for k, g in enumerate(GT)
        ],
    }  # fmt: skip
    dt = [
        {"image_id": 1, "category_id": 1 if p.category == "a" else 2, "segmentation": p.rle.to_coco(),
         "score": p.score}
        for p in preds
    ]  # fmt: skip
    res = coco_eval.evaluate_coco(gt, dt, iou_types=("segm",), score_threshold=0.0)
    theirs = sorted(e["kind"] for e in res.errors)
    mine = sorted(
        [v.kind for v in ours.verdicts if v.kind != "true_positive"] + ["missed"] * len(ours.missed)
    )
    assert mine == theirs
