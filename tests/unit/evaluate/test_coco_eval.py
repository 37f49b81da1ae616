"""Our numbers against pycocotools COCOeval on the same inputs: equal, not close."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.support.coco_reference import make_dataset, make_keypoint_dataset, reference
from workbench.domain import ValidationError
from workbench.evaluate import evaluate_coco, keypoint_sigmas


def assert_equal_to_reference(ours, ref) -> None:
    np.testing.assert_array_equal(ours.stats_array, ref.stats)
    np.testing.assert_array_equal(ours.precision, ref.eval["precision"])
    np.testing.assert_array_equal(ours.recall, ref.eval["recall"])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_equals_cocoeval_with_crowd_empty_images_and_class_without_gt(seed: int, iou_type: str) -> None:
    gt, dt = make_dataset(seed)
    assert any(a["iscrowd"] for a in gt["annotations"]) or seed != 0
    result = evaluate_coco(gt, dt, iou_types=(iou_type,))
    assert_equal_to_reference(result.types[iou_type], reference(gt, dt, iou_type))


@pytest.mark.parametrize("rle_rate", [0.0, 1.0], ids=["polygons", "rle"])
def test_segm_equals_cocoeval_for_polygon_and_rle_ground_truth(rle_rate: float) -> None:
    gt, dt = make_dataset(7, rle_rate=rle_rate, crowd_rate=0.0)
    result = evaluate_coco(gt, dt, iou_types=("segm",))
    assert_equal_to_reference(result.types["segm"], reference(gt, dt, "segm"))


def test_class_without_ground_truth_is_minus_one_and_left_out_of_means() -> None:
    gt, dt = make_dataset(3)
    assert any(d["category_id"] == 4 for d in dt)  # predictions of the class without ground truth
    per_class = evaluate_coco(gt, dt, iou_types=("bbox",)).types["bbox"].per_class()
    assert per_class["nogt"]["AP"] == -1.0
    assert all(per_class[c]["AP"] >= 0 for c in ("c1", "c2", "c3"))


def test_per_class_ap_is_cocoeval_per_category_precision_mean() -> None:
    gt, dt = make_dataset(4)
    ours = evaluate_coco(gt, dt, iou_types=("segm",)).types["segm"]
    ref = reference(gt, dt, "segm")
    for k, name in enumerate(ours.category_names):
        p = ref.eval["precision"][:, :, k, 0, -1]
        expected = float(np.mean(p[p > -1])) if (p > -1).any() else -1.0
        assert ours.per_class()[name]["AP"] == expected
        p50 = ref.eval["precision"][0, :, k, 0, -1]
        assert ours.per_class()[name]["AP50"] == (float(np.mean(p50[p50 > -1])) if (p50 > -1).any() else -1.0)


def test_no_predictions_gives_zero_where_gt_exists_as_cocoeval_with_an_empty_result_set() -> None:
    gt, _ = make_dataset(5)
    result = evaluate_coco(gt, [])
    for t in ("bbox", "segm"):
        assert_equal_to_reference(result.types[t], reference(gt, [], t))
        assert result.types[t].stats["AP"] == 0.0
        assert result.types[t].per_class()["nogt"]["AP"] == -1.0
    assert result.notes and "no detections" in result.notes[0]
    assert result.confusion is not None and result.confusion.matrix[:-1, -1].sum() == sum(
        1 for a in gt["annotations"] if not a["iscrowd"]
    )


def test_max_dets_other_than_100_is_summarised_at_that_value() -> None:
    """COCOeval's summarize looks for maxDets 100 for AP and so reports -1; we report the real AP."""
    gt, dt = make_dataset(6, max_objects=15, n_cats=1)  # 3 images with more than 11 predictions
    ours = evaluate_coco(gt, dt, iou_types=("bbox",), max_dets=11).types["bbox"]
    ref = reference(gt, dt, "bbox", max_dets=11)
    assert ref.stats[0] == -1  # the pitfall
    p = ref.eval["precision"][:, :, :, 0, -1]
    assert ours.stats["AP"] == float(np.mean(p[p > -1]))
    np.testing.assert_array_equal(ours.stats_array[1:], ref.stats[1:])
    assert list(ours.stats)[8] == "AR11"
    with pytest.raises(ValidationError, match="above 10"):
        evaluate_coco(gt, dt, max_dets=10)


@pytest.mark.parametrize("k", [3, 17])
@pytest.mark.parametrize("seed", [0, 1])
def test_keypoints_equal_cocoeval_with_the_schema_sigmas(k: int, seed: int) -> None:
    gt, dt = make_keypoint_dataset(seed, k)
    result = evaluate_coco(gt, dt, iou_types=("keypoints",))
    sig = keypoint_sigmas(k)
    if k == 17:
        assert sig[0] == pytest.approx(0.026)  # COCO's person sigmas, COCOeval's default
    else:
        assert np.all(sig == 0.05)
    assert_equal_to_reference(result.types["keypoints"], reference(gt, dt, "keypoints", sigmas=sig))


def test_keypoint_sigmas_can_be_set_per_category() -> None:
    gt, dt = make_keypoint_dataset(2, 3)
    sig = [0.02, 0.1, 0.07]
    result = evaluate_coco(gt, dt, iou_types=("keypoints",), kpt_oks_sigmas={1: sig})
    assert_equal_to_reference(result.types["keypoints"], reference(gt, dt, "keypoints", sigmas=np.array(sig)))
    with pytest.raises(ValidationError, match="3 values"):
        evaluate_coco(gt, dt, iou_types=("keypoints",), kpt_oks_sigmas={1: [0.1, 0.1]})


def test_keypoint_categories_with_different_k_are_each_scored_with_their_own_sigmas() -> None:
    gt3, dt3 = make_keypoint_dataset(3, 3, n_images=8)
    gt5, dt5 = make_keypoint_dataset(4, 5, n_images=8)
    # merge: images shared by id, the K=5 set becomes category 2
    gt = {"images": gt3["images"], "categories": gt3["categories"] + [{**gt5["categories"][0], "id": 2, "name": "five"}],
          "annotations": gt3["annotations"] + [{**a, "id": a["id"] + 1000, "category_id": 2} for a in gt5["annotations"]]}
    dt = dt3 + [{**d, "category_id": 2} for d in dt5]
    ours = evaluate_coco(gt, dt, iou_types=("keypoints",)).types["keypoints"]
    refs = [reference(gt, [d for d in dt if d["category_id"] == c], "keypoints", cat_ids=[c], sigmas=keypoint_sigmas(k))
            for c, k in ((1, 3), (2, 5))]
    pooled = np.concatenate([r.eval["precision"] for r in refs], axis=2)
    np.testing.assert_array_equal(ours.precision, pooled)
    s = pooled[:, :, :, 0, 0]
    assert ours.stats["AP"] == float(np.mean(s[s > -1]))
    for r, name in zip(refs, ("kp1", "five"), strict=True):
        p = r.eval["precision"][:, :, 0, 0, 0]
        assert ours.per_class()[name]["AP"] == float(np.mean(p[p > -1]))


def _hand_made() -> tuple[dict, list[dict]]:
    def ann(i: int, img: int, cat: int, box: list[float], crowd: int = 0) -> dict:
        return {"id": i, "image_id": img, "category_id": cat, "bbox": box, "area": box[2] * box[3], "iscrowd": crowd}

    gt = {
        "images": [{"id": 1, "width": 100, "height": 100, "file_name": "a.png"},
                   {"id": 2, "width": 100, "height": 100, "file_name": "b.png"}],
        "categories": [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}],
        "annotations": [ann(1, 1, 1, [0, 0, 10, 10]), ann(2, 1, 2, [20, 20, 10, 10]), ann(3, 1, 1, [50, 50, 10, 10]),
                        ann(4, 1, 1, [70, 70, 20, 20], crowd=1)],
    }
    dt = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},  # hit
        {"image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10], "score": 0.8},  # B seen as A
        {"image_id": 1, "category_id": 2, "bbox": [80, 0, 5, 5], "score": 0.7},  # spurious
        {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 4], "score": 0.6},  # IoU 0.4: poor localisation
        {"image_id": 1, "category_id": 1, "bbox": [70, 70, 20, 20], "score": 0.9},  # on a crowd region
        {"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.3},  # below the score threshold
        {"image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10], "score": 0.95},  # image without gt
    ]
    return gt, dt


def test_confusion_matrix_counts_on_a_hand_made_case() -> None:
    gt, dt = _hand_made()
    result = evaluate_coco(gt, dt)
    cm = result.confusion
    assert cm is not None and cm.iou_type == "bbox"
    # rows gt A, gt B, background; columns pred A, pred B, background
    np.testing.assert_array_equal(cm.matrix, [[1, 0, 1], [1, 0, 0], [2, 1, 0]])
    assert cm.to_dict()["labels"] == ["A", "B", "background"]
    assert_equal_to_reference(result.types["bbox"], reference(gt, dt, "bbox"))


def test_error_list_kinds_and_severity_order() -> None:
    gt, dt = _hand_made()
    errors = evaluate_coco(gt, dt).errors
    assert [(e["kind"], e["file_name"]) for e in errors] == [
        ("spurious", "b.png"), ("wrong_class", "a.png"), ("spurious", "a.png"), ("poor_localisation", "a.png")]
    wrong = errors[1]
    assert (wrong["category"], wrong["predicted"], wrong["detection"]) == ("B", "A", 1)
    assert errors[3]["iou"] == pytest.approx(0.4) and errors[3]["severity"] == pytest.approx(0.6 * 0.6)


def test_missed_objects_are_listed() -> None:
    gt, dt = _hand_made()
    errors = evaluate_coco(gt, dt[:1]).errors
    assert sorted(e["gt_id"] for e in errors if e["kind"] == "missed") == [2, 3]


def test_score_threshold_changes_the_matrix_not_the_ap() -> None:
    gt, dt = _hand_made()
    lo = evaluate_coco(gt, dt, score_threshold=0.0)
    hi = evaluate_coco(gt, dt)
    assert lo.confusion.matrix[1, 1] == 0 and lo.confusion.matrix[-1, 1] == 2
    assert lo.stats("bbox") == hi.stats("bbox")


def test_result_is_json_serialisable() -> None:
    gt, dt = make_dataset(1)
    d = evaluate_coco(gt, dt).to_dict()
    back = json.loads(json.dumps(d))
    assert set(back["types"]) == {"bbox", "segm"}
    assert len(back["recall_grid"]) == 101
    curve = next(iter(back["types"]["segm"]["pr_curves"].values()))
    assert len(curve["precision_iou50"]) == 101 and len(curve["precision_iou50_95"]) == 101
    assert "keypoints: skipped" in " ".join(back["notes"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda dt: dt.append({"image_id": 999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}), "not an image"),
        (lambda dt: dt.append({"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}), "score"),
        (lambda dt: dt.append({"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": float("nan")}), "finite"),
    ],
)
def test_bad_detections_are_refused_with_a_clear_error(change, message: str) -> None:
    gt, dt = _hand_made()
    change(dt)
    with pytest.raises(ValidationError, match=message):
        evaluate_coco(gt, dt)
