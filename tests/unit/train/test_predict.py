"""Prediction: torchvision outputs become Instances; a wrong label or size is refused."""

from __future__ import annotations

import pytest
import torch

from tests.support.predictions import DEMO_SCHEMA
from workbench.domain import ValidationError
from workbench.geometry import rle_to_mask
from workbench.train.predict import output_to_instances


def _output(h: int = 20, w: int = 30) -> dict[str, torch.Tensor]:
    masks = torch.zeros(4, 1, h, w)
    masks[0, 0, 2:8, 3:9] = 0.9  # triangle
    masks[1, 0, 10:15, 10:20] = 0.7  # square
    masks[2, 0, 0:5, 0:5] = 0.4  # below the mask threshold: empty, dropped
    masks[3, 0, 5:9, 5:9] = 0.9  # low score
    kps = torch.tensor([[[4.0, 2.0, 1.0], [3.0, 8.0, 1.0], [9.0, 8.0, 1.0], [1.0, 1.0, 1.0]]] * 4)
    kps[0, 2, 0] = 99.0  # outside the image: clipped to the border
    return {
        "boxes": torch.tensor([[3.0, 2.0, 9.0, 8.0], [10.0, 10.0, 20.0, 15.0], [0, 0, 5, 5], [5, 5, 9, 9]]),
        "labels": torch.tensor([3, 2, 1, 1]),
        "scores": torch.tensor([0.9, 0.8, 0.7, 0.1]),
        "masks": masks,
        "keypoints": kps,
    }


def test_output_to_instances() -> None:
    tri, sq = output_to_instances(_output(), DEMO_SCHEMA, (30, 20), score_threshold=0.5)
    assert (tri.category, sq.category) == ("triangle", "square")
    assert tri.source == "predicted" and tri.score == pytest.approx(0.9)
    assert rle_to_mask(tri.rle).sum() == 36 and tri.rle.size_hw == (20, 30)
    assert tri.bbox_xywh == (3.0, 2.0, 6.0, 6.0)
    assert tri.keypoints == (4.0, 2.0, 2, 3.0, 8.0, 2, 30.0, 8.0, 2)  # K=3 of the head's 4, clipped, visible
    assert sq.keypoints is None  # squares have no keypoint schema
    assert len(output_to_instances(_output(), DEMO_SCHEMA, (30, 20))) == 3  # the empty mask is still dropped


def test_output_with_an_unknown_label_or_wrong_size_is_refused() -> None:
    out = _output()
    out["labels"] = torch.tensor([7, 2, 1, 1])
    with pytest.raises(ValidationError, match="label 7"):
        output_to_instances(out, DEMO_SCHEMA, (30, 20))
    with pytest.raises(ValidationError, match="image is 31x20"):
        output_to_instances(_output(), DEMO_SCHEMA, (31, 20))
