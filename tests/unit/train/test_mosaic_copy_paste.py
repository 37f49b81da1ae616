"""Mosaic and copy-paste keep masks, boxes, labels and keypoints together; close_mosaic stops them.

The exact checks read where each output pixel came from out of the image itself: every test image
encodes its pixel's own column, row and tile in its colour, so a mosaic's masks and keypoints are
compared with the source pixels they must show, independently of how the mosaic placed them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.augment import Augmenter, Sample
from workbench.augment_mix import FILL_VALUE, MixPolicy, copy_paste, mirror, mosaic
from workbench.train.config import ConfigError, TrainConfig
from workbench.train.dataset import (
    MaskRCNNDataset,
    collate,
    load_coco_split,
    make_loader,
    mix_policy,
)

PAIR = {1: [1, 0, 2]}  # label 1: keypoints (left, right, mid); other labels have no flip pairs


def loop_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes by a plain loop (the reference for the vectorised one)."""
    out = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        if len(xs):
            out[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return out


def coded_image(h: int, w: int, tag: int) -> np.ndarray:
    """Red = column, green = row, blue = ``tag``: each pixel says where it came from."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w)[None, :]
    img[..., 1] = np.arange(h)[:, None]
    img[..., 2] = tag
    return img


def random_sample(rng: np.random.Generator, h: int, w: int, n: int, *, label0: int, tag: int, solid: bool) -> Sample:
    """``n`` instances (rectangles, ragged unless ``solid``) with keypoints inside them.

    Ragged: keypoints at centres of mask pixels. Solid: keypoint 0 a quarter into the rectangle and 1
    three quarters (left stays left under a flip only when the pair is swapped), 2 at the centre or not
    labelled (v=0). Solid rectangles are at least 9 pixels a side, so that they stay more than 2 pixels
    wide when shrunk to a quarter, where nearest-pixel resampling keeps those keypoints inside.
    """
    masks = np.zeros((n, h, w), np.uint8)
    kps = np.zeros((n, 3, 3), np.float32)
    lo = 9 if solid else 4
    for i in range(n):
        rw = int(rng.integers(max(lo, w // 3), max(w // 2, lo, w // 3) + 1))
        rh = int(rng.integers(max(lo, h // 3), max(h // 2, lo, h // 3) + 1))
        x0, y0 = int(rng.integers(0, w - rw + 1)), int(rng.integers(0, h - rh + 1))
        masks[i, y0 : y0 + rh, x0 : x0 + rw] = 1
        if not solid:
            masks[i, y0 : y0 + rh, x0 : x0 + rw] &= (rng.random((rh, rw)) < 0.7).astype(np.uint8)
        ys, xs = np.nonzero(masks[i])
        if len(xs) == 0:
            continue
        if solid:  # pixel centres within the rectangle's halves; the centre of the rectangle
            kps[i, 0] = (x0 + rw / 4, y0 + rh / 2, 2)
            kps[i, 1] = (x0 + 3 * rw / 4, y0 + rh / 2, 2)
            kps[i, 2] = (x0 + rw / 2, y0 + rh / 2, 2 * int(rng.integers(0, 2)))
        else:
            j = rng.integers(0, len(xs), size=2)
            kps[i, 0] = (xs[j[0]] + 0.5, ys[j[0]] + 0.5, 2)
            kps[i, 1] = (xs[j[1]] + 0.5, ys[j[1]] + 0.5, 1)
    kps[kps[..., 2] == 0] = 0.0
    labels = np.arange(label0, label0 + n, dtype=np.int64)
    return Sample(coded_image(h, w, tag), masks, labels, kps)


def in_mask(masks: np.ndarray, i: int, x: float, y: float) -> bool:
    h, w = masks.shape[1:]
    return 0 <= x < w and 0 <= y < h and bool(masks[i, int(y), int(x)])


def check_consistent(out: Sample, out_hw: tuple[int, int], min_area: float) -> None:
    n = len(out.labels)
    assert out.image.shape == (*out_hw, 3) and out.image.dtype == np.uint8
    assert out.masks.shape == (n, *out_hw) and out.keypoints.shape[:1] == (n,)
    assert np.array_equal(out.boxes_xyxy, loop_boxes(out.masks))
    assert (out.masks.sum(axis=(1, 2)) >= max(min_area, 1)).all()
    gone = out.keypoints[..., 2] == 0
    assert (out.keypoints[gone] == 0).all()
    xy = out.keypoints[~gone][:, :2]
    assert ((xy >= 0) & (xy < np.array(out_hw[::-1]))).all()


# ------------------------------------------------------------------------------------ mosaic
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    hw=st.tuples(st.integers(8, 40), st.integers(8, 40)),
    counts=st.lists(st.integers(0, 4), min_size=4, max_size=4),
    min_area=st.sampled_from([1.0, 6.0]),
)
def test_mosaic_of_same_size_tiles_shows_each_source_pixel_with_its_masks_and_keypoints(seed, hw, counts, min_area):
    rng = np.random.default_rng(seed)
    h, w = hw
    srcs = [random_sample(rng, h, w, n, label0=10 * t + 1, tag=40 * t + 1, solid=False) for t, n in enumerate(counts)]
    out = mosaic(srcs, (h, w), rng, min_area_px=min_area)
    check_consistent(out, (h, w), min_area)
    fill = (out.image == FILL_VALUE).all(axis=2)
    tile = np.where(fill, -1, (out.image[..., 2].astype(int) - 1) // 40)
    sx, sy = out.image[..., 0].astype(int), out.image[..., 1].astype(int)
    found = {int(label): i for i, label in enumerate(out.labels)}
    for t, src in enumerate(srcs):
        here = tile == t
        offset = None
        if here.any():  # where tile t landed: output position minus the source position it shows
            ys, xs = np.nonzero(here)
            offset = (xs[0] - sx[ys[0], xs[0]], ys[0] - sy[ys[0], xs[0]])
        for i, label in enumerate(src.labels):
            expected = np.zeros((h, w), np.uint8)
            expected[here] = src.masks[i][sy[here], sx[here]]
            if expected.sum() < max(min_area, 1):
                assert int(label) not in found  # cut off below the minimum area: gone from every array
                continue
            j = found[int(label)]
            assert np.array_equal(out.masks[j], expected)
            for k in range(3):
                x, y, v = src.keypoints[i, k]
                if v > 0:
                    ex, ey = x + offset[0], y + offset[1]
                    if 0 <= ex < w and 0 <= ey < h:
                        assert tuple(out.keypoints[j, k]) == (ex, ey, v)
                        assert in_mask(out.masks, j, ex, ey) == in_mask(src.masks, i, x, y)
                        continue
                assert (out.keypoints[j, k] == 0).all()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.tuples(st.integers(12, 48), st.integers(12, 48)), min_size=5, max_size=5),
    counts=st.lists(st.integers(0, 4), min_size=4, max_size=4),
)
def test_mosaic_of_resized_tiles_keeps_targets_aligned(seed, sizes, counts):
    rng = np.random.default_rng(seed)
    out_hw, tiles = sizes[0], sizes[1:]
    srcs = [random_sample(rng, h, w, n, label0=10 * t + 1, tag=40 * t + 1, solid=True) for t, ((h, w), n) in enumerate(zip(tiles, counts, strict=True))]
    out = mosaic(srcs, out_hw, rng, min_area_px=2.0)
    check_consistent(out, out_hw, 2.0)
    assert len(out.labels) <= sum(counts) and len(set(out.labels.tolist())) == len(out.labels)
    # a keypoint inside a solid rectangle at least 4 source pixels wide stays inside its mask
    for j in range(len(out.labels)):
        for x, y, v in out.keypoints[j]:
            if v > 0:
                assert in_mask(out.masks, j, x, y), (j, x, y)


# -------------------------------------------------------------------------------- copy-paste
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dst_hw=st.tuples(st.integers(10, 40), st.integers(10, 40)),
    src_hw=st.tuples(st.integers(10, 30), st.integers(10, 30)),
    counts=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    flip_p=st.sampled_from([0.0, 1.0]),
    min_area=st.sampled_from([1.0, 8.0]),
)
def test_copy_paste_covers_what_lies_below_and_keeps_the_pasted_aligned(seed, dst_hw, src_hw, counts, flip_p, min_area):
    rng = np.random.default_rng(seed)
    dst = random_sample(rng, *dst_hw, counts[0], label0=1, tag=1, solid=False)
    dst = Sample(dst.image, dst.masks, np.arange(101, 101 + counts[0], dtype=np.int64), dst.keypoints)
    src = random_sample(rng, *src_hw, counts[1], label0=1, tag=41, solid=True)
    src = Sample(src.image, src.masks, np.ones(counts[1], np.int64), src.keypoints)  # label 1: flip pairs
    out = copy_paste(dst, src, rng, flip_p=flip_p, flip_permutations=PAIR, min_area_px=min_area)
    check_consistent(out, dst_hw, min_area)
    pasted = out.labels == 1
    assert pasted.sum() <= counts[1]
    cover = out.masks[pasted].any(axis=0) if pasted.any() else np.zeros(dst_hw, bool)
    # outside the pasted objects the image is the destination's; inside it is the source's
    assert np.array_equal(out.image[~cover], dst.image[~cover])
    assert (out.image[cover][:, 2] == 41).all()
    found = {int(label): i for i, label in enumerate(out.labels) if label != 1}
    for i, label in enumerate(dst.labels):
        left = dst.masks[i] & ~cover
        if left.sum() < max(min_area, 1):
            assert int(label) not in found
            continue
        j = found[int(label)]
        assert np.array_equal(out.masks[j], left)
        for k in range(3):
            x, y, v = dst.keypoints[i, k]
            if v > 0 and not cover[int(y), int(x)]:
                assert tuple(out.keypoints[j, k]) == (x, y, v)
                assert in_mask(out.masks, j, x, y) == in_mask(dst.masks, i, x, y)
            else:
                assert (out.keypoints[j, k] == 0).all()
    for j in np.flatnonzero(pasted):  # solid rectangles: their keypoints stay inside, left stays left
        kp = out.keypoints[j]
        for x, y, v in kp:
            if v > 0:
                assert in_mask(out.masks, j, x, y)
        if kp[0, 2] > 0 and kp[1, 2] > 0:
            assert kp[0, 0] < kp[1, 0]


def test_an_instance_pasted_over_loses_the_covered_pixels_and_goes_below_the_minimum_area():
    h, w = 20, 30
    dst_masks = np.zeros((2, h, w), np.uint8)
    dst_masks[0, 5:15, 5:15] = 1  # 100 px, 80 of them covered below
    dst_masks[1, 2:6, 22:28] = 1  # untouched
    kps = np.zeros((2, 3, 3), np.float32)
    kps[0, 0] = (6.5, 6.5, 2)  # under the paste
    kps[0, 1] = (13.5, 6.5, 2)  # in the strip that stays visible
    dst = Sample(coded_image(h, w, 1), dst_masks, np.array([2, 3]), kps)
    src_mask = np.zeros((1, h, w), np.uint8)
    src_mask[0, 3:17, 4:13] = 1  # covers columns 5..12 of the square
    src = Sample(coded_image(h, w, 41), src_mask, np.array([1]), np.zeros((1, 3, 3), np.float32))

    kept = copy_paste(dst, src, np.random.default_rng(0), flip_p=0.0, min_area_px=4)
    assert kept.labels.tolist() == [2, 3, 1]
    expected = dst_masks[0].copy()
    expected[3:17, 4:13] = 0
    assert np.array_equal(kept.masks[0], expected) and kept.masks[0].sum() == 20
    assert kept.boxes_xyxy[0].tolist() == [13, 5, 15, 15]  # the tight box of the visible strip
    assert kept.keypoints[0, 0].tolist() == [0, 0, 0] and kept.keypoints[0, 1].tolist() == [13.5, 6.5, 2]
    assert np.array_equal(kept.masks[1], dst_masks[1]) and np.array_equal(kept.masks[2], src_mask[0])

    gone = copy_paste(dst, src, np.random.default_rng(0), flip_p=0.0, min_area_px=21)
    assert gone.labels.tolist() == [3, 1]
    assert gone.masks.shape[0] == gone.keypoints.shape[0] == 2


def test_mirror_swaps_left_and_right_by_the_schema():
    s = random_sample(np.random.default_rng(3), 20, 30, 2, label0=1, tag=1, solid=True)
    m = mirror(s, PAIR)
    assert np.array_equal(m.masks, s.masks[:, :, ::-1])
    assert np.allclose(m.keypoints[0, 0, :2], [30 - s.keypoints[0, 1, 0], s.keypoints[0, 1, 1]])  # label 1: swapped
    assert np.allclose(m.keypoints[1, 0, :2], [30 - s.keypoints[1, 0, 0], s.keypoints[1, 0, 1]])  # label 2: not


# --------------------------------------------------------------------------- in the dataset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):  # noqa: ANN201 - the synthetic run's train items and schema
    from tests.support.training import tiny_config
    from workbench.train.dataset import schema_from_categories
    from workbench.train.synthetic import write_shapes_run

    run = write_shapes_run(tmp_path_factory.mktemp("mix") / "r", tiny_config(), n_train=6, size_wh=(80, 64))
    ds = load_coco_split(run / "dataset" / "coco_train.json", run / "dataset" / "images")
    return ds.items, schema_from_categories(ds.categories)


def test_dataset_mosaic_then_pipeline_flip_keeps_left_keypoints_left(shapes):
    items, schema = shapes
    flip = Augmenter([{"name": "HorizontalFlip", "params": {"p": 1.0}}], min_area_px=4)
    data = MaskRCNNDataset(items, schema, flip, mix=MixPolicy(mosaic=1.0, copy_paste=1.0))
    tri = schema.label_of("triangle")
    seen = 0
    for i in range(len(data)):
        image, t = data[(i, 1000 + i)]
        assert image.shape == (3, 64, 80)
        n = len(t["labels"])
        assert t["masks"].shape == (n, 64, 80) and t["keypoints"].shape == (n, 3, 3) and t["boxes"].shape == (n, 4)
        assert np.array_equal(t["boxes"].numpy(), loop_boxes(t["masks"].numpy()))
        assert torch.equal(t["area"], t["masks"].flatten(1).sum(1).float())
        for j in np.flatnonzero((t["labels"] == tri).numpy()):
            kp = t["keypoints"][j]
            if kp[0, 2] > 0 and kp[1, 2] > 0:  # the synthetic triangle's left corner is left of its right one
                assert kp[0, 0] < kp[1, 0]
                seen += 1
    assert seen > 0


def test_close_mosaic_stops_mixing_for_the_last_epochs_also_in_persistent_workers(shapes):
    items, schema = shapes
    policy = MixPolicy(mosaic=1.0, copy_paste=0.5, close_mosaic=2, epochs=5)
    assert [policy.active(e) for e in range(5)] == [True, True, True, False, False]
    assert [policy.active(e, 7) for e in range(7)] == [True] * 5 + [False] * 2  # a budget made the run longer
    assert not MixPolicy(mosaic=0, copy_paste=0, close_mosaic=2, epochs=5).active(0)
    assert MixPolicy(mosaic=0.5, copy_paste=0, close_mosaic=0, epochs=5).active(4)

    aug = Augmenter("none", min_area_px=4)
    mixed = MaskRCNNDataset(items, schema, aug, mix=policy, cache_bytes=0)
    plain = MaskRCNNDataset(items, schema, aug, cache_bytes=0)
    keys = [[(i, 77 + i)] for i in range(len(items))]
    loader = make_loader(mixed, keys, num_workers=2, pin_memory=False)
    assert loader.persistent_workers

    def differs() -> list[bool]:
        got = list(loader)
        return [not torch.equal(g[0][0], plain[k[0]][0]) for g, k in zip(got, keys, strict=True)]

    mixed.set_epoch(2)
    assert all(differs())  # every image a mosaic (probability 1)
    mixed.set_epoch(3)
    assert not any(differs())  # the same persistent workers now give the plain images
    mixed.set_epoch(3, 6)
    assert all(differs())  # the run got longer: epoch 3 of 6 mixes again
    assert mixed.epoch == 3 and mixed.mixing()


def test_default_config_leaves_mixing_off_and_bad_values_are_refused():
    cfg = TrainConfig()
    assert (cfg.mosaic, cfg.copy_paste, cfg.close_mosaic) == (0.0, 0.0, 0)
    assert not mix_policy(cfg).enabled
    on = TrainConfig(mosaic=1.0, copy_paste=0.3, close_mosaic=3, epochs=10)
    assert mix_policy(on) == MixPolicy(mosaic=1.0, copy_paste=0.3, close_mosaic=3, epochs=10)
    assert TrainConfig.from_dict(on.to_dict()) == on
    with pytest.raises(ConfigError, match="mosaic is a probability in"):
        TrainConfig(mosaic=1.5)
    with pytest.raises(ConfigError, match="close_mosaic must be >= 0"):
        TrainConfig(close_mosaic=-1)


def test_a_tiny_mask_rcnn_trains_a_step_on_a_mosaic_batch(shapes):
    from workbench.train.model import build_model

    items, schema = shapes
    data = MaskRCNNDataset(items, schema, Augmenter("light", min_area_px=4), mix=MixPolicy(mosaic=1.0, copy_paste=1.0))
    images, targets = collate([data[(i, 5 + i)] for i in range(4)])
    assert sum(len(t["labels"]) for t in targets) > 0
    torch.manual_seed(0)
    model = build_model("tiny", num_classes=schema.num_classes, num_keypoints=schema.num_keypoints, min_size=64, max_size=96)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_dict = model(images, targets)
    assert {"loss_mask", "loss_keypoint", "loss_box_reg"} <= set(loss_dict)
    loss = sum(loss_dict.values())
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    assert model.roi_heads.mask_predictor.mask_fcn_logits.weight.grad.abs().sum() > 0
    opt.step()


def test_the_trainer_tells_the_dataset_its_epoch(make_run):
    from workbench.train.loop import Trainer

    run = make_run(n_train=2, epochs=2, batch_size=2, mosaic=1.0, copy_paste=0.5, close_mosaic=1)
    trainer = Trainer(run)
    assert trainer.train() == "succeeded"
    assert trainer.train_set.mix is not None and trainer.train_set.epoch == 1
    assert not trainer.train_set.mixing()  # the last epoch closed mosaic
