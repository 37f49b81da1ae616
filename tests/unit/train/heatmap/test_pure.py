"""Crops, targets, flips, decoding and metrics of the heatmap pose task, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.domain import KeypointSchema, ValidationError
from workbench.train.heatmap.crops import CropTransform, keypoints_to_crop
from workbench.train.heatmap.decode import decode_heatmaps, heatmap_peaks, unflip_heatmaps
from workbench.train.heatmap.layout import ChannelLayout, flip_pairs, inferred_flip_pairs
from workbench.train.heatmap.metrics import KeypointPrediction, oks_ap, pck, pck_counts
from workbench.train.heatmap.targets import gaussian_targets


@pytest.mark.parametrize("rotation", [0.0, 30.0])
@pytest.mark.parametrize("flip", [False, True])
def test_crop_round_trip_is_exact_and_keeps_the_aspect(rotation, flip):
    t = CropTransform.from_box((37.5, 12.25, 40.0, 90.0), (48, 64), scale=1.1, rotation_deg=rotation, flip=flip)
    pts = np.array([[37.5, 12.25], [77.5, 102.25], [50.1, 60.7], [-3.0, 400.0]])
    back = t.to_image(t.to_crop(pts))
    assert np.abs(back - pts).max() < 1e-9
    # the box centre is the crop centre; the padded box's longer side (90 x 1.25 x 1.1) spans 64 px
    assert np.allclose(t.to_crop([[57.5, 57.25]]), [[24.0, 32.0]])
    assert t.scale == pytest.approx(64 / (90 * 1.25 * 1.1))


def test_unrotated_crop_is_a_plain_scale_and_shift():
    # box 20 x 10 at (10, 20); padding 1.25 -> 25 x 12.5, widened to 2:1 -> 25 x 12.5; 50 x 25 crop: s = 2
    t = CropTransform.from_box((10, 20, 20, 10), (50, 25))
    assert np.allclose(t.matrix, [[2, 0, -2 * (20 - 12.5)], [0, 2, -2 * (25 - 6.25)]])
    assert np.allclose(t.to_crop([[20, 25]]), [[25, 12.5]])


def test_warp_samples_the_pixels_the_transform_names():
    img = np.zeros((40, 60, 3), np.uint8)
    img[10, 30] = 255  # pixel (30, 10): COCO point (30.5, 10.5)
    t = CropTransform.from_box((20, 0, 20, 20), (50, 50), padding=1.0)  # s = 2.5
    crop = t.warp(img)
    cx, cy = t.to_crop([[30.5, 10.5]])[0]  # (26.25, 26.25): pixel centre 25.75..26.75 -> index 26
    peak = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert peak == (int(cy), int(cx))
    flipped = CropTransform.from_box((20, 0, 20, 20), (50, 50), padding=1.0, flip=True).warp(img)
    assert np.array_equal(flipped, crop[:, ::-1])


def test_gaussian_target_peaks_at_the_keypoints_pixel_with_weights():
    kp = np.array([[13.3, 7.9, 2], [2.0, 2.0, 0], [70.0, 5.0, 2], [5.0, 30.5, 1]])
    hm, w = gaussian_targets(kp, (16, 12), stride=4, sigma=6.0)
    assert hm.shape == (4, 12, 16) and w.tolist() == [1, 0, 0, 1]
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (int(7.9 // 4), int(13.3 // 4))
    assert np.unravel_index(hm[3].argmax(), hm[3].shape) == (7, 1)
    assert not hm[1].any() and not hm[2].any()  # unlabelled, and outside the crop
    # the value at a pixel is the Gaussian of its centre's distance, sigma 6 / 4 = 1.5 heatmap px
    mx, my = 13.3 / 4 - 0.5, 7.9 / 4 - 0.5
    assert hm[0, 1, 3] == pytest.approx(math.exp(-((3 - mx) ** 2 + (1 - my) ** 2) / (2 * 1.5**2)), rel=1e-6)
    with pytest.raises(ValidationError, match="sigma"):
        gaussian_targets(kp, (16, 12), stride=4, sigma=0)


def test_flip_pairs_from_the_schema_or_the_names():
    names = ("nose", "left_eye", "right_eye", "l_knee", "r_knee", "Wrist_Left", "Wrist_Right", "tail")
    assert inferred_flip_pairs(names) == ((1, 2), (3, 4), (5, 6))
    assert flip_pairs(KeypointSchema(names)) == ((1, 2), (3, 4), (5, 6))
    assert flip_pairs(KeypointSchema(("left", "right", "apex"), flip_pairs=((0, 1),))) == ((0, 1),)
    assert inferred_flip_pairs(("left", "right", "apex")) == ((0, 1),)
    assert inferred_flip_pairs(("lip", "rim", "left_ear")) == ()


def test_a_flipped_crop_swaps_left_and_right():
    layout = ChannelLayout.from_schemas([("tri", KeypointSchema(("apex", "left", "right")))])
    perm = layout.class_flip_permutation("tri")
    assert perm == [0, 2, 1]
    kp = np.array([[50, 10, 2], [30, 60, 2], [70, 60, 1]], float)  # left is at smaller x
    box = (30, 10, 40, 50)
    t = CropTransform.from_box(box, (64, 64), flip=True)
    crop = keypoints_to_crop(t, kp, perm)
    plain = keypoints_to_crop(CropTransform.from_box(box, (64, 64)), kp, perm)
    # "left" is still the keypoint at the smaller crop x, and it is where the right one was, mirrored
    assert crop[1, 0] < crop[2, 0]
    assert np.allclose(crop[1, :2], [64 - plain[2, 0], plain[2, 1]]) and crop[1, 2] == 1
    # a mirrored heatmap stack, unflipped, is the original one
    hm, _ = gaussian_targets(plain, (16, 16), 4, 4.0)
    hm_f, _ = gaussian_targets(crop, (16, 16), 4, 4.0)
    assert np.allclose(unflip_heatmaps(hm_f, layout.channel_flip_permutation()), hm, atol=1e-6)


def test_channel_layout_gives_each_class_its_own_channels():
    a, b = KeypointSchema(("left_a", "right_a")), KeypointSchema(("x", "l_y", "r_y"))
    layout = ChannelLayout.from_schemas([("a", a), ("b", b)])
    assert layout.num_channels == 5 and layout.channels("b") == slice(2, 5)
    assert layout.channel_flip_permutation() == [1, 0, 2, 4, 3]
    assert ChannelLayout.from_dict(layout.to_dict()) == layout
    with pytest.raises(ValidationError, match="not keypoint classes"):
        ChannelLayout.from_schemas([("a", a)], {"zzz": [[0, 1]]})


@pytest.mark.parametrize("method, tol", [("quarter", None), ("taylor", 0.01)])
def test_decoding_a_target_gives_the_keypoints_back(method, tol):
    rng = np.random.default_rng(0)
    box = (103.0, 41.0, 31.0, 47.0)
    t = CropTransform.from_box(box, (48, 64))  # about 0.87 crop px per image px
    gt = np.column_stack([rng.uniform(105, 132, 20), rng.uniform(43, 86, 20), np.full(20, 2.0)])
    crop = keypoints_to_crop(t, gt)
    hm, w = gaussian_targets(crop, (12, 16), stride=4, sigma=8.0)
    assert w.all()
    out = decode_heatmaps(hm, t, 4, method=method)
    err = np.abs(out[:, :2] - gt[:, :2]).max()
    # the quarter offset is within a quarter heatmap pixel of the centre: 0.25 x 4 crop px, in image px
    bound = 0.25 * 4 / t.scale + 1e-6 if tol is None else tol
    assert err <= bound, (err, bound)
    assert np.allclose(out[:, 2], hm.reshape(20, -1).max(1))


def test_quarter_offset_on_an_exact_heatmap_is_within_half_an_image_pixel():
    # an image crop at 2 crop px per image px and a stride-1 heatmap: a heatmap px is half an image px
    t = CropTransform.from_box((10, 10, 12.8, 12.8), (32, 32))
    gt = np.array([[15.3, 17.8, 2], [11.05, 20.6, 2]])
    hm, _ = gaussian_targets(keypoints_to_crop(t, gt), (32, 32), stride=1, sigma=2.0)
    out = decode_heatmaps(hm, t, 1)
    assert np.abs(out[:, :2] - gt[:, :2]).max() <= 0.5


def test_quarter_offset_by_hand():
    hm = np.zeros((1, 5, 5), np.float32)
    hm[0, 2, 2], hm[0, 2, 3], hm[0, 2, 1], hm[0, 1, 2], hm[0, 3, 2] = 1.0, 0.6, 0.2, 0.5, 0.5
    peaks, scores = heatmap_peaks(hm)
    assert peaks.tolist() == [[2.25, 2.0]] and scores.tolist() == [1.0]


def test_pck_equals_a_hand_count():
    gt = np.array([[10, 10, 2], [20, 10, 2], [30, 30, 1], [0, 0, 0]], float)
    box = (0, 0, 50, 40)  # normaliser max(w, h) = 50: threshold 0.2 x 50 = 10 px
    pred = np.array([[16, 18, 0.9], [20, 21, 0.8], [30, 30, 0.7], [100, 100, 0.1]], float)
    # distances 10 (correct: <=), 11 (wrong), 0 (correct); the unlabelled one does not count
    assert pck_counts(pred[:, :2], gt, box) == (2, 3)
    other = KeypointPrediction(2, "b", (0, 0, 10, 10), gt[:1], np.array([[13.0, 10, 1.0]]))  # 3 > 2: wrong
    res = pck([KeypointPrediction(1, "a", box, gt, pred), other])
    assert res == {"pck": 0.5, "per_class": {"a": 2 / 3, "b": 0.0}, "labelled": 4}


def _coco_one_instance() -> dict:
    return {
        "images": [{"id": 1, "width": 100, "height": 100, "file_name": "a.png"}],
        "categories": [{"id": 1, "name": "tri", "keypoints": ["a", "b"], "skeleton": []}],
        "annotations": [{
            "id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 900.0, "iscrowd": 0,
            "keypoints": [20, 20, 2, 40, 40, 2], "num_keypoints": 2, "segmentation": [],
        }],
    }


def test_oks_ap_equals_a_hand_computation():
    gt = _coco_one_instance()
    # OKS = mean_j exp(-d_j^2 / (2 * area * (2 sigma)^2)); sigma 0.05 each, area 900:
    # d_0 = 3 -> exp(-9 / 18) = 0.6065; d_1 = 0 -> 1; OKS = 0.8033 -> matched at thresholds 0.50..0.80
    pred = np.array([[23.0, 20.0, 0.9], [40.0, 40.0, 0.9]])
    oks = (math.exp(-9 / (2 * 900 * 0.1**2)) + 1) / 2
    assert 0.80 < oks < 0.85
    res = oks_ap(gt, [KeypointPrediction(1, "tri", (10, 10, 40, 40), np.zeros((2, 3)), pred)])
    assert res["oks_ap"] == pytest.approx(7 / 10) and res["oks_ap50"] == pytest.approx(1.0) and res["oks_ap75"] == pytest.approx(1.0)
    # sigmas from the project: 0.1 for keypoint a -> exp(-9 / 72) = 0.8825, OKS 0.9412: 9 of 10
    res = oks_ap(gt, [KeypointPrediction(1, "tri", (10, 10, 40, 40), np.zeros((2, 3)), pred)],
                 kpt_oks_sigmas={"tri": [0.1, 0.05]})
    assert res["oks_ap"] == pytest.approx(9 / 10)
