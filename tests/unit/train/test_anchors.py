"""Anchor coverage (issue 16) against torchvision's own anchors on hand-made boxes, and the fit on thin
and tiny objects."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

from workbench.domain import AnnotatedImage, ImageRecord, Instance
from workbench.train.anchors import BoxSet, best_iou, coverage, fit_anchors, resized_boxes
from workbench.train.detector import BACKBONE_ANCHOR_SIZES, BACKBONE_STRIDES, DEFAULT_ASPECT_RATIOS
from workbench.train.model import build_model

# hand-made boxes (x1, y1, x2, y2) on two padded image sizes: 96 x 160 has an odd number of
# stride-32 cells, so the pooled level's grid is 2 x 3 cells of torchvision's derived stride 48 x 53
BOXES = {
    (160, 224): [(3, 5, 9, 11), (100, 20, 104, 90), (10, 60, 150, 140), (0, 0, 12, 12), (40, 40, 72, 56),
                 (200, 100, 223, 159), (57.5, 33.2, 121.7, 61.9)],
    (96, 160): [(1, 1, 95, 95), (120, 10, 160, 20), (30, 30, 46, 46), (70, 80, 78, 82)],
}
CLASSES = ["tiny", "thin", "large", "tiny", "wide", "large", "wide", "large", "thin", "square", "thin"]


def _boxset() -> BoxSet:
    xyxy = [b for boxes in BOXES.values() for b in boxes]
    hw = [hw for hw, boxes in BOXES.items() for _ in boxes]
    return BoxSet(np.asarray(xyxy, dtype=np.float64), np.asarray(hw), tuple(CLASSES))


@functools.cache
def _features() -> dict[tuple[int, int], list[torch.Tensor]]:
    """The tiny backbone's real feature maps of each image size (what the RPN's grids are)."""
    model = build_model("tiny", num_classes=2).eval()
    with torch.no_grad():
        return {hw: list(model.backbone(torch.zeros(1, 3, *hw)).values()) for hw in BOXES}


def _brute_force(sizes, ratios) -> np.ndarray:
    """Every anchor torchvision's AnchorGenerator makes on each image, IoU by box_iou."""
    model = build_model("tiny", num_classes=2).eval()
    model.rpn.anchor_generator.sizes = tuple(tuple(float(s) for s in lv) for lv in sizes)
    model.rpn.anchor_generator.aspect_ratios = (tuple(float(r) for r in ratios),) * len(sizes)
    model.rpn.anchor_generator.cell_anchors = [
        model.rpn.anchor_generator.generate_anchors(s, a)
        for s, a in zip(model.rpn.anchor_generator.sizes, model.rpn.anchor_generator.aspect_ratios, strict=True)
    ]
    out = []
    with torch.no_grad():
        for (h, w), boxes in BOXES.items():
            images = ImageList(torch.zeros(1, 3, h, w), [(h, w)])
            anchors = model.rpn.anchor_generator(images, _features()[(h, w)])[0]
            out.append(box_iou(torch.tensor(boxes, dtype=torch.float32), anchors).max(dim=1).values.numpy())
    return np.concatenate(out)


@pytest.mark.parametrize(("sizes", "ratios"), [
    (BACKBONE_ANCHOR_SIZES["tiny"], DEFAULT_ASPECT_RATIOS),
    (((6, 11), (23, 30), (47, 70), (90, 131)), (0.1, 0.37, 1.0, 3.3, 9.0)),
])
def test_best_iou_equals_every_anchor_torchvision_makes(sizes, ratios):
    expected = _brute_force(sizes, ratios)
    got = best_iou(_boxset(), sizes, ratios, BACKBONE_STRIDES["tiny"])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert 0 < got.min() and got.max() <= 1


def test_coverage_equals_a_straightforward_count():
    sizes, ratios = BACKBONE_ANCHOR_SIZES["tiny"], DEFAULT_ASPECT_RATIOS
    iou = _brute_force(sizes, ratios)
    boxes = _boxset()
    cov = coverage(boxes, sizes, ratios, BACKBONE_STRIDES["tiny"])
    assert cov["all"]["boxes"] == 11
    assert cov["all"]["iou>=0.5"] == pytest.approx(sum(v >= 0.5 for v in iou) / 11)
    assert cov["all"]["iou>=0.7"] == pytest.approx(sum(v >= 0.7 for v in iou) / 11)
    for name in set(CLASSES):
        mine = [v for v, c in zip(iou, CLASSES, strict=True) if c == name]
        assert cov["per_class"][name]["boxes"] == len(mine)
        assert cov["per_class"][name]["iou>=0.5"] == pytest.approx(sum(v >= 0.5 for v in mine) / len(mine))
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for bs in BOXES.values() for b in bs]
    small = [v for v, a in zip(iou, areas, strict=True) if a < 32**2]
    assert cov["per_size"]["small"]["boxes"] == len(small) == 7
    assert cov["per_size"]["small"]["iou>=0.5"] == pytest.approx(sum(v >= 0.5 for v in small) / len(small))
    assert set(cov["per_size"]) == {"small", "medium", "large"}


def test_boxes_are_taken_after_the_models_resize():
    rec = ImageRecord("a.png", width=400, height=200, id=1)
    insts = (Instance("a", bbox_xywh=(100.0, 50.0, 40.0, 20.0)), Instance("b", bbox_xywh=(0, 0, 10, 10), iscrowd=True))
    boxes = resized_boxes([AnnotatedImage(rec, insts)], min_size=160, max_size=320)
    # shorter side 200 -> 160 would make the longer 320: scale 0.8 both ways; the crowd box is left out
    np.testing.assert_allclose(boxes.xyxy, [[80.0, 40.0, 112.0, 56.0]])
    assert boxes.image_hw.tolist() == [[160, 320]] and boxes.classes == ("a",)


def _synthetic(kind: str, n: int = 400, seed: int = 0) -> BoxSet:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if kind == "thin":
            w, h = rng.uniform(3, 6), rng.uniform(30, 80)
            if rng.random() < 0.5:
                w, h = h, w
        else:
            w = h = rng.uniform(5, 12)
        x, y = rng.uniform(0, 160 - w), rng.uniform(0, 160 - h)
        out.append((x, y, x + w, y + h))
    return BoxSet(np.asarray(out), np.full((n, 2), 160), (kind,) * n)


@pytest.mark.parametrize(("kind", "gain"), [("thin", 0.25), ("tiny", 0.15)])
def test_fitted_anchors_raise_coverage_on_thin_and_tiny_objects(kind, gain):
    # measured: thin (3-6 x 30-80 px) 0.00 -> 0.33 at IoU 0.5; tiny (5-12 px squares, below the
    # finest level's 8-px grid) 0.00 -> about 0.3. The tiny backbone's defaults reach neither.
    boxes = _synthetic(kind)
    current = coverage(boxes, BACKBONE_ANCHOR_SIZES["tiny"], DEFAULT_ASPECT_RATIOS, BACKBONE_STRIDES["tiny"])
    sizes, ratios = fit_anchors(boxes, BACKBONE_ANCHOR_SIZES["tiny"], DEFAULT_ASPECT_RATIOS, BACKBONE_STRIDES["tiny"])
    fitted = coverage(boxes, sizes, ratios, BACKBONE_STRIDES["tiny"])
    assert len(sizes) == 4 and all(len(lv) == 1 for lv in sizes) and len(ratios) == 3
    assert fitted["all"]["iou>=0.5"] >= current["all"]["iou>=0.5"] + gain
    assert fitted["all"]["mean_best_iou"] > current["all"]["mean_best_iou"]
    # on a held-out draw of the same kind too: the fit is not of these boxes alone
    other = _synthetic(kind, seed=1)
    before = coverage(other, BACKBONE_ANCHOR_SIZES["tiny"], DEFAULT_ASPECT_RATIOS, BACKBONE_STRIDES["tiny"])
    assert coverage(other, sizes, ratios, BACKBONE_STRIDES["tiny"])["all"]["iou>=0.5"] >= before["all"]["iou>=0.5"] + gain


def test_a_fit_never_loses_coverage_and_keeps_a_shared_layout():
    # boxes the defaults already cover well: the fit keeps at least their coverage
    rng = np.random.default_rng(3)
    wh = rng.uniform(40, 70, (300, 2))
    xy = rng.uniform(0, 80, (300, 2))
    boxes = BoxSet(np.hstack([xy, xy + wh]), np.full((300, 2), 160), ("a",) * 300)
    sizes, ratios = fit_anchors(boxes, BACKBONE_ANCHOR_SIZES["tiny"], DEFAULT_ASPECT_RATIOS, BACKBONE_STRIDES["tiny"])
    before = coverage(boxes, BACKBONE_ANCHOR_SIZES["tiny"], DEFAULT_ASPECT_RATIOS, BACKBONE_STRIDES["tiny"])["all"]
    after = coverage(boxes, sizes, ratios, BACKBONE_STRIDES["tiny"])["all"]
    assert after["iou>=0.5"] + after["iou>=0.7"] >= before["iou>=0.5"] + before["iou>=0.7"]
    # MobileNet's layout (every size at every level) stays that layout
    shared, _ = fit_anchors(boxes, BACKBONE_ANCHOR_SIZES["mobilenet_v3_large_fpn"], DEFAULT_ASPECT_RATIOS,
                            BACKBONE_STRIDES["mobilenet_v3_large_fpn"])
    assert len(shared) == 3 and len(shared[0]) == 5 and shared[0] == shared[1] == shared[2]
