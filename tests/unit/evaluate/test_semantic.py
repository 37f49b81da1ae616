"""Label-map metrics on hand-made maps: intersections and unions summed over images."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.domain import ValidationError
from workbench.evaluate import label_map_metrics


def maps(*planes: list[list[int]]) -> np.ndarray:
    return np.array(planes, dtype=np.uint8)


def test_iou_is_accumulated_over_images_not_averaged() -> None:
    # image 1: class a gt 4 px, pred 2 px inside -> I=2, U=4; image 2: a gt 1 px, pred 1 px elsewhere -> I=0, U=2
    g1 = maps([[1, 1], [1, 1]], [[0, 0], [0, 0]])
    p1 = maps([[1, 1], [0, 0]], [[0, 0], [0, 0]])
    g2 = maps([[1, 0], [0, 0]], [[0, 0], [0, 1]])
    p2 = maps([[0, 1], [0, 0]], [[0, 0], [0, 1]])
    m = label_map_metrics([g1, g2], [p1, p2], ["a", "b"])
    assert m["per_class"]["a"]["iou"] == pytest.approx(2 / 6)  # not mean(2/4, 0/2) = 0.25
    assert m["per_class"]["b"]["iou"] == 1.0
    assert m["mean_iou"] == pytest.approx((2 / 6 + 1) / 2)
    # pixels where the predicted class set equals the gt set: image 1: 2 of 4, image 2: 2 of 4
    assert m["pixel_accuracy"] == pytest.approx(4 / 8)


def test_ignore_pixels_do_not_count_and_absent_classes_are_none() -> None:
    g = maps([[1, 0], [0, 0]], [[0, 0], [0, 0]])
    p = maps([[1, 1], [0, 0]], [[0, 0], [0, 0]])
    ignore = np.array([[False, True], [False, False]])
    m = label_map_metrics([g], [p], ["a", "b"], ignore=[ignore])
    assert m["per_class"]["a"]["iou"] == 1.0
    assert m["per_class"]["b"]["iou"] is None
    assert m["mean_iou"] == 1.0
    assert m["pixel_accuracy"] == 1.0 and m["num_pixels"] == 3


def test_overlapping_classes_are_scored_independently() -> None:
    g = maps([[1, 1]], [[1, 0]])
    p = maps([[1, 1]], [[0, 0]])
    m = label_map_metrics([g], [p], ["a", "b"])
    assert m["per_class"]["a"]["iou"] == 1.0 and m["per_class"]["b"]["iou"] == 0.0
    assert m["pixel_accuracy"] == 0.5


@pytest.mark.parametrize(
    ("gt", "pred", "message"),
    [
        (np.zeros((3, 2, 2)), np.zeros((3, 2, 2)), "C=2"),
        (np.zeros((2, 2, 2)), np.zeros((2, 3, 2)), "differs"),
    ],
)
def test_shape_errors_name_the_image(gt: np.ndarray, pred: np.ndarray, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        label_map_metrics([gt], [pred], ["a", "b"])
