"""Augmentation: presets and custom pipelines validate; masks, boxes and keypoints stay aligned."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.augment import (
    PRESET_NAMES,
    AugmentationConfigError,
    Augmenter,
    Sample,
    augment_preview,
    masks_to_boxes_xyxy,
    validate_pipeline_spec,
)


def rect_sample(size_wh, rects, kp_pixels):
    """Instances as filled rectangles; keypoints at pixel centres inside them (v=2)."""
    w, h = size_wh
    masks = np.zeros((len(rects), h, w), np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(rects):
        masks[i, y0:y1, x0:x1] = 1
    kps = np.array([[[x + 0.5, y + 0.5, 2] for x, y in pts] for pts in kp_pixels], np.float32).reshape(len(rects), -1, 3)
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return Sample(image=image, masks=masks, labels=np.ones(len(rects), np.int64), keypoints=kps)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_presets_are_valid_and_keep_targets_consistent(preset):
    s = rect_sample((40, 30), [(2, 3, 20, 15), (22, 10, 38, 28)], [[(5, 5), (15, 10)], [(25, 12), (30, 20)]])
    for out in augment_preview(s, preset, count=4, seed=1, flip_permutations={1: [1, 0]}):
        n = len(out.labels)
        assert out.masks.shape[0] == n == out.keypoints.shape[0] == out.boxes_xyxy.shape[0]
        assert out.masks.shape[1:] == out.image.shape[:2]
        assert out.keypoints.shape[1:] == (2, 3)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("wild", "unknown augmentation preset 'wild'"),
        ('[{"name": "Nope"}]', "unknown transform 'Nope'"),
        ("[{bad json", "not valid JSON"),
        ([{"name": "HorizontalFlip", "params": {"q": 1}}], "unknown parameter(s) ['q']"),
        ([{"name": "HorizontalFlip", "params": {"p": 3}}], "HorizontalFlip): bad parameter"),
        ([{"name": "Affine", "params": {"scale": "big"}}], "Affine): bad parameter"),
        ([{"params": {}}], "each transform is an object with a 'name'"),
        ({"name": "HorizontalFlip"}, "a pipeline is a list of transforms"),
    ],
)
def test_bad_pipelines_get_clear_errors(spec, message):
    with pytest.raises(AugmentationConfigError) as err:
        validate_pipeline_spec(spec)
    assert message in str(err.value)


def test_flat_step_form_is_accepted():
    assert validate_pipeline_spec([{"name": "HorizontalFlip", "p": 0.5}]) == [{"name": "HorizontalFlip", "params": {"p": 0.5}}]


def _mirror(name: str, x: float, y: float, w: int, h: int) -> tuple[float, float]:
    return {"HorizontalFlip": (w - x, y), "VerticalFlip": (x, h - y), "Transpose": (y, x)}[name]


rects = st.tuples(st.integers(0, 20), st.integers(0, 15), st.integers(2, 12), st.integers(2, 12))


@settings(max_examples=40, deadline=None)
@given(
    w=st.integers(24, 48),
    h=st.integers(18, 40),
    boxes=st.lists(rects, min_size=1, max_size=3),
    flip=st.sampled_from(["HorizontalFlip", "VerticalFlip", "Transpose"]),
    data=st.data(),
)
def test_flips_swap_keypoint_pairs_and_keep_everything_aligned(w, h, boxes, flip, data):
    rects_ = []
    for x0, y0, bw, bh in boxes:
        x0, y0 = min(x0, w - 2), min(y0, h - 2)
        rects_.append((x0, y0, min(x0 + bw, w), min(y0 + bh, h)))
    kp_pixels = [
        [(data.draw(st.integers(x0, x1 - 1)), data.draw(st.integers(y0, y1 - 1))) for _ in range(3)]
        for x0, y0, x1, y1 in rects_
    ]
    s = rect_sample((w, h), rects_, kp_pixels)
    perm = [1, 0, 2]  # keypoints 0 and 1 are a left/right pair, 2 is central
    out = Augmenter([{"name": flip, "params": {"p": 1.0}}]).apply(s, {1: perm})
    oh, ow = out.image.shape[:2]
    assert len(out.labels) == len(rects_)
    for i in range(len(rects_)):
        for j in range(3):
            # Keypoint j now carries what keypoint perm[j] was, mirrored.
            x, y, v = s.keypoints[i, perm[j]]
            ex, ey = _mirror(flip, float(x), float(y), w, h)
            assert out.keypoints[i, j, 2] == v
            assert out.keypoints[i, j, :2] == pytest.approx([ex, ey], abs=1e-4)
            # ...and it lies on its own instance's mask and inside its box.
            px, py = int(out.keypoints[i, j, 0]), int(out.keypoints[i, j, 1])
            assert out.masks[i, py, px] == 1
            bx0, by0, bx1, by1 = out.boxes_xyxy[i]
            assert bx0 <= out.keypoints[i, j, 0] <= bx1 and by0 <= out.keypoints[i, j, 1] <= by1
    # Masks are the mirrored masks, pixel for pixel.
    expected = {"HorizontalFlip": s.masks[:, :, ::-1], "VerticalFlip": s.masks[:, ::-1, :], "Transpose": s.masks.transpose(0, 2, 1)}[flip]
    assert np.array_equal(out.masks, expected)


def test_rotation_does_not_swap_but_double_flip_does_not_either():
    s = rect_sample((30, 30), [(5, 5, 25, 25)], [[(6, 6), (20, 6), (12, 20)]])
    two_flips = Augmenter([{"name": "HorizontalFlip", "params": {"p": 1}}, {"name": "VerticalFlip", "params": {"p": 1}}])
    out = two_flips.apply(s, {1: [1, 0, 2]})
    # A 180 degree rotation: point i goes to (W - x, H - y), no swap.
    for j in range(3):
        x, y, _ = s.keypoints[0, j]
        assert out.keypoints[0, j, :2] == pytest.approx([30 - x, 30 - y], abs=1e-4)


def test_instances_pushed_out_or_too_small_are_dropped_from_every_target():
    s = rect_sample((40, 40), [(0, 0, 6, 6), (20, 20, 40, 40), (10, 0, 12, 2)], [[(1, 1)], [(30, 30)], [(10, 0)]])
    shift = [{"name": "Affine", "params": {"translate_px": {"x": -10, "y": 0}, "p": 1.0}}]
    out = Augmenter(shift, min_area_px=8).apply(s)
    # Instance 0 leaves the image, instance 2 (4 px) is below min area: only instance 1 stays.
    assert len(out.labels) == 1 and out.masks.shape[0] == 1 and out.keypoints.shape[0] == 1
    assert out.keypoints[0, 0, :2] == pytest.approx([20.5, 30.5], abs=1e-3)
    assert out.boxes_xyxy[0].tolist() == [10.0, 20.0, 30.0, 40.0]


def test_keypoints_leaving_the_image_become_invisible_zeros():
    s = rect_sample((40, 40), [(0, 0, 30, 30)], [[(2, 2), (25, 25)]])
    out = Augmenter([{"name": "Affine", "params": {"translate_px": {"x": -5, "y": 0}, "p": 1.0}}]).apply(s)
    assert out.keypoints[0, 0].tolist() == [0.0, 0.0, 0.0]
    assert out.keypoints[0, 1, 2] == 2


def test_empty_sample_passes_through_any_pipeline():
    image = np.zeros((20, 30, 3), np.uint8)
    s = Sample(image, np.zeros((0, 20, 30), np.uint8), np.zeros(0, np.int64), np.zeros((0, 4, 3), np.float32))
    out = Augmenter("heavy", seed=3).apply(s)
    assert out.masks.shape[0] == 0 and out.keypoints.shape == (0, 4, 3)


def test_same_seed_same_result():
    s = rect_sample((40, 30), [(2, 3, 20, 15)], [[(5, 5)]])
    a, b = Augmenter("heavy"), Augmenter("heavy")
    a.reseed(7)
    b.reseed(7)
    assert np.array_equal(a.apply(s).image, b.apply(s).image)


def test_boxes_from_masks_use_pixel_corners():
    m = np.zeros((1, 10, 10), np.uint8)
    m[0, 2, 3] = 1
    assert masks_to_boxes_xyxy(m).tolist() == [[3.0, 2.0, 4.0, 3.0]]
