"""The optimised loader gives exactly the targets of a straightforward implementation.

The reference below is the loader as first written: one ``instance_to_mask`` per instance, stacked,
the augmenter applied to every sample (also an empty pipeline), boxes from a per-mask loop, areas as
pixel sums. Random images mix multi-part polygons, RLE masks, box-only instances, crowd and unknown
classes, keypoints, images without instances, and instances below the minimum area; the optimised
path is compared with the cache off, on its first (cold) visit, and on cache hits.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.augment import Augmenter, Sample, drop_small_instances, mask_areas, masks_to_boxes_xyxy
from workbench.domain import AnnotatedImage, ImageRecord, Instance, KeypointSchema
from workbench.geometry.masks import instance_to_mask
from workbench.geometry.rle import mask_to_rle, polygons_to_rle, rle_to_mask, rles_to_masks
from workbench.train.dataset import MaskRCNNDataset, TrainingSchema, load_image_rgb_array

PAIR_SCHEMA = KeypointSchema(("left", "right", "mid"), ((0, 2), (1, 2)), ((0, 1),))
SCHEMA = TrainingSchema(("blob", "person", "box"), (("person", PAIR_SCHEMA),))


# ------------------------------------------------------------------------------------ reference
def reference_boxes(masks: np.ndarray) -> np.ndarray:
    boxes = np.zeros((masks.shape[0], 4), np.float32)
    for i in range(masks.shape[0]):
        ys = np.flatnonzero(masks[i].any(axis=1))
        xs = np.flatnonzero(masks[i].any(axis=0))
        if len(xs) and len(ys):
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def reference_sample(item: AnnotatedImage, image: np.ndarray, schema: TrainingSchema) -> Sample:
    h, w = image.shape[:2]
    k = schema.num_keypoints
    masks, labels, keypoints = [], [], []
    for inst in item.instances:
        if inst.iscrowd or inst.category not in schema.class_names:
            continue
        if inst.has_shape:
            mask = instance_to_mask(inst, (w, h))
        elif inst.bbox_xywh is not None:
            mask = np.zeros((h, w), np.uint8)
            x, y, bw, bh = inst.bbox_xywh
            x0, y0 = max(int(math.floor(x)), 0), max(int(math.floor(y)), 0)
            x1, y1 = min(int(math.ceil(x + bw)), w), min(int(math.ceil(y + bh)), h)
            mask[y0:y1, x0:x1] = 1
        else:
            continue
        kp = np.zeros((k, 3), np.float32)
        if k and inst.keypoints is not None:
            arr = np.asarray(inst.keypoints, np.float32).reshape(-1, 3)[:k]
            kp[: len(arr)] = arr
        masks.append(mask)
        labels.append(schema.label_of(inst.category))
        keypoints.append(kp)
    return Sample(
        image=image,
        masks=np.stack(masks).astype(np.uint8) if masks else np.zeros((0, h, w), np.uint8),
        labels=np.asarray(labels, np.int64),
        keypoints=np.stack(keypoints) if keypoints else np.zeros((0, k, 3), np.float32),
    )


def reference_item(dataset: MaskRCNNDataset, index: int, seed: int) -> tuple[torch.Tensor, dict]:
    item = dataset.items[index]
    sample = reference_sample(item, load_image_rgb_array(item.image.path), dataset.schema)
    if dataset.augmenter is not None:
        dataset.augmenter.reseed(seed)
        sample = dataset.augmenter.apply(sample, dataset.schema.flip_permutations())
    image = torch.from_numpy(np.array(sample.image, copy=True)).permute(2, 0, 1).float().div_(255.0)
    target = {
        "boxes": torch.from_numpy(reference_boxes(sample.masks)).reshape(-1, 4),
        "labels": torch.from_numpy(sample.labels).to(torch.int64),
        "masks": torch.from_numpy(np.ascontiguousarray(sample.masks)).to(torch.uint8),
        "area": torch.from_numpy(sample.masks.sum(axis=(1, 2)).astype(np.float32)),
        "iscrowd": torch.zeros((len(sample.labels),), dtype=torch.int64),
        "keypoints": torch.from_numpy(np.ascontiguousarray(sample.keypoints, dtype=np.float32)),
        "image_id": torch.tensor(dataset.image_id(index)),
    }
    return image, target


# ------------------------------------------------------------------------------------ random data
def random_polygon(rng: random.Random, w: int, h: int) -> tuple[float, ...]:
    cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1.0, min(w, h) / 3)
    n = rng.randint(3, 9)
    pts = []
    for j in range(n):
        a = 2 * math.pi * j / n + rng.uniform(-0.3, 0.3)
        rr = r * rng.uniform(0.4, 1.0)
        pts += [round(cx + rr * math.cos(a), 2), round(cy + rr * math.sin(a), 2)]
    return tuple(pts)


def random_instance(rng: random.Random, w: int, h: int) -> Instance:
    category = rng.choice(["blob", "person", "box", "unknown"])
    kps = None
    if category == "person":
        kps = []
        for _ in range(3):
            v = rng.choice([0, 1, 2, 2])
            kps += [0.0, 0.0, 0] if v == 0 else [round(rng.uniform(0, w), 2), round(rng.uniform(0, h), 2), v]
        kps = tuple(kps)
    kind = rng.choice(["poly", "poly", "multi", "rle", "box", "tiny"])
    if kind == "box" or category == "box":
        x, y = rng.uniform(-3, w - 2), rng.uniform(-3, h - 2)
        return Instance(category, bbox_xywh=(x, y, rng.uniform(0.5, w / 2), rng.uniform(0.5, h / 2)), keypoints=kps)
    if kind == "rle":
        mask = np.zeros((h, w), np.uint8)
        mask[rng.randrange(h) :, rng.randrange(w) :] = 1
        mask[rng.randrange(h), :] = 0  # a hole: what only an RLE can hold
        return Instance(category, rle=mask_to_rle(mask), keypoints=kps, iscrowd=rng.random() < 0.15)
    if kind == "tiny":  # about a pixel: dropped by min-area filters
        x, y = rng.uniform(0, w - 2), rng.uniform(0, h - 2)
        return Instance(category, polygons=((x, y, x + 1.2, y, x + 1.2, y + 1.2),), keypoints=kps)
    parts = tuple(random_polygon(rng, w, h) for _ in range(2 if kind == "multi" else 1))
    return Instance(category, polygons=parts, keypoints=kps)


def write_items(folder: Path, n: int, seed: int) -> list[AnnotatedImage]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        w, h = rng.randint(17, 48), rng.randint(13, 40)
        pixels = np.random.default_rng(seed * 1000 + i).integers(0, 256, (h, w, 3), dtype=np.uint8)
        path = folder / f"im{i}.png"
        Image.fromarray(pixels).save(path)
        count = 0 if i % 5 == 4 else rng.randint(1, 6)
        instances = tuple(random_instance(rng, w, h) for _ in range(count))
        items.append(AnnotatedImage(ImageRecord(f"im{i}.png", w, h, id=i + 1, path=str(path)), instances))
    return items


PIPELINES = {
    "no augmenter": None,
    "none": "none",
    "none, min area 6": ("none", 6.0),
    "hflip always": [{"name": "HorizontalFlip", "params": {"p": 1.0}}],
    "vflip+transpose": [{"name": "VerticalFlip", "params": {"p": 0.7}}, {"name": "Transpose", "params": {"p": 0.5}}],
    "light": "light",
    "heavy, min area 4": ("heavy", 4.0),
}


def make_augmenter(spec) -> Augmenter | None:  # noqa: ANN001
    if spec is None:
        return None
    spec, min_area = spec if isinstance(spec, tuple) else (spec, 1.0)
    return Augmenter(spec, min_area_px=min_area)


def assert_same(got: tuple[torch.Tensor, dict], want: tuple[torch.Tensor, dict]) -> None:
    assert torch.equal(got[0], want[0])
    assert set(got[1]) == set(want[1])
    for key, value in want[1].items():
        assert got[1][key].dtype == value.dtype, key
        assert got[1][key].shape == value.shape, key
        assert torch.equal(got[1][key], value), key


@pytest.mark.parametrize("pipeline", list(PIPELINES))
@pytest.mark.parametrize("cache_bytes", [0, 1 << 24, 2_000])
def test_optimised_items_equal_the_reference(tmp_path, pipeline, cache_bytes):
    items = write_items(tmp_path, 10, seed=len(pipeline))
    ours = MaskRCNNDataset(items, SCHEMA, make_augmenter(PIPELINES[pipeline]), seed=5, cache_bytes=cache_bytes)
    ref = MaskRCNNDataset(items, SCHEMA, make_augmenter(PIPELINES[pipeline]), seed=5, cache_bytes=0)
    dropped = 0
    for epoch in range(3):  # the first epoch fills the cache, the next ones read it
        for index in range(len(items)):
            seed = 1000 * epoch + index
            got = ours[(index, seed)]
            want = reference_item(ref, index, seed)
            assert_same(got, want)
            pixels = load_image_rgb_array(items[index].image.path)
            dropped += len(reference_sample(items[index], pixels, SCHEMA).labels) - len(want[1]["labels"])
    if cache_bytes == 1 << 24:
        assert len(ours._cache) == len(items)  # everything fit, so later epochs were all hits
    if cache_bytes == 2_000:
        assert 0 < len(ours._cache) < len(items)  # a budget is a budget
    if pipeline == "none, min area 6":
        assert dropped > 0  # the case of min-area drops was exercised


def test_cached_items_cannot_be_changed_through_what_they_hand_out(tmp_path):
    items = write_items(tmp_path, 4, seed=3)
    data = MaskRCNNDataset(items, SCHEMA, Augmenter("none"), cache_bytes=1 << 24)
    first = [data[i] for i in range(4)]
    for image, target in first:  # a consumer that writes into its batch in place
        image.zero_()
        for value in target.values():
            value.zero_()
    for i in range(4):
        assert_same(data[i], reference_item(data, i, 0))
    sample = data.load_sample(1)
    sample.masks[:] = 7
    sample.keypoints[:] = 7
    assert_same(data[1], reference_item(data, 1, 0))


def test_flip_on_cached_items_swaps_keypoint_pairs(tmp_path):
    items = write_items(tmp_path, 8, seed=11)
    data = MaskRCNNDataset(items, SCHEMA, Augmenter([{"name": "HorizontalFlip", "params": {"p": 1.0}}]))
    plain = MaskRCNNDataset(items, SCHEMA, None)
    person = SCHEMA.label_of("person")
    seen = 0
    for index in range(len(items)):
        for _ in range(2):  # cold, then from the cache
            image, t = data[(index, 1)]
            image0, t0 = plain[index]
            w = image0.shape[-1]
            assert torch.equal(image, image0.flip(-1))
            keep = t0["area"] >= 1
            assert torch.equal(t["masks"], t0["masks"][keep].flip(-1))
            for kp, kp0, label in zip(t["keypoints"], t0["keypoints"][keep], t["labels"], strict=True):
                if label != person:
                    continue
                for j, src in enumerate([1, 0, 2]):
                    if kp0[src, 2] > 0 and 0 < kp0[src, 0] < w:
                        assert kp[j, 2] == kp0[src, 2]
                        assert float(kp[j, 0]) == pytest.approx(w - float(kp0[src, 0]), abs=1e-4)
                        seen += 1
    assert seen > 0


def test_batch_helpers_equal_their_per_mask_versions():
    rng = np.random.default_rng(0)
    masks = (rng.random((7, 23, 31)) < 0.02).astype(np.uint8)
    masks[2] = 0
    masks[3, 22, 30] = 1
    assert np.array_equal(masks_to_boxes_xyxy(masks), reference_boxes(masks))
    assert np.array_equal(masks_to_boxes_xyxy(masks.astype(bool)), reference_boxes(masks))
    assert masks_to_boxes_xyxy(np.zeros((0, 5, 5), np.uint8)).shape == (0, 4)
    assert mask_areas(masks).tolist() == masks.sum(axis=(1, 2)).tolist()
    s = Sample(np.zeros((23, 31, 3), np.uint8), masks, np.arange(7, dtype=np.int64), np.zeros((7, 0, 3), np.float32))
    assert drop_small_instances(s, 5).labels.tolist() == [i for i in range(7) if masks[i].sum() >= 5]
    polys = [random_polygon(random.Random(i), 31, 23) for i in range(4)]
    rles = [polygons_to_rle([p], (31, 23)) for p in polys] + [None]
    stacked = rles_to_masks(rles, (23, 31))
    assert np.array_equal(stacked[:4], np.stack([rle_to_mask(r) for r in rles[:4]]))
    assert not stacked[4].any()
