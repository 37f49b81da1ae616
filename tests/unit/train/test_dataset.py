"""Records -> targets: shapes and dtypes, empty images, image paths, seeded grouped batches."""

from __future__ import annotations

import json

import pytest
import torch

from workbench.augment import Augmenter
from workbench.train.dataset import (
    DatasetError,
    MaskRCNNDataset,
    load_coco_split,
    schema_from_categories,
)
from workbench.train.sampler import GroupedBatchSampler


@pytest.mark.parametrize("absolute", [False, True])
def test_targets_have_the_documented_shapes_and_types(tmp_path, absolute):
    from tests.support.training import tiny_config
    from workbench.train.synthetic import write_shapes_run

    run = write_shapes_run(tmp_path / "r", tiny_config(), n_train=4, empty_every=2, size_wh=(48, 32), absolute_paths=absolute)
    ds = load_coco_split(run / "dataset" / "coco_train.json", run / "dataset" / "images")
    schema = schema_from_categories(ds.categories)
    assert schema.class_names == ("circle", "square", "triangle") and schema.num_keypoints == 3
    data = MaskRCNNDataset(ds.items, schema, Augmenter("medium"), seed=1)
    sizes = []
    for i in range(len(data)):
        image, t = data[(i, 123)]
        n = len(t["labels"])
        sizes.append(n)
        assert image.dtype == torch.float32 and image.shape == (3, 32, 48) and 0 <= image.min() <= image.max() <= 1
        assert t["boxes"].dtype == torch.float32 and t["boxes"].shape == (n, 4)
        assert t["labels"].dtype == torch.int64
        assert t["masks"].dtype == torch.uint8 and t["masks"].shape == (n, 32, 48)
        assert t["keypoints"].dtype == torch.float32 and t["keypoints"].shape == (n, 3, 3)
        assert bool((t["boxes"][:, 2:] > t["boxes"][:, :2]).all())
    assert 0 in sizes and max(sizes) > 0  # images without instances are kept, as empty targets


def test_classes_without_keypoints_get_invisible_keypoints(tmp_path):
    from tests.support.training import tiny_config
    from workbench.train.synthetic import write_shapes_run

    run = write_shapes_run(tmp_path / "r", tiny_config(), n_train=6, size_wh=(64, 48))
    ds = load_coco_split(run / "dataset" / "coco_train.json", run / "dataset" / "images")
    schema = schema_from_categories(ds.categories)
    data = MaskRCNNDataset(ds.items, schema)
    for i in range(len(data)):
        _, t = data[i]
        tri = t["labels"] == schema.label_of("triangle")
        assert bool((t["keypoints"][~tri][..., 2] == 0).all())
        assert bool((t["keypoints"][tri][..., 2] == 2).all())


def test_missing_image_and_size_mismatch_are_clear(tmp_path):
    from tests.support.training import tiny_config
    from workbench.train.synthetic import write_shapes_run

    run = write_shapes_run(tmp_path / "r", tiny_config(), n_train=2, size_wh=(48, 32))
    coco = json.loads((run / "dataset" / "coco_train.json").read_text())
    coco["images"][0]["width"] = 50
    (run / "dataset" / "coco_train.json").write_text(json.dumps(coco))
    ds = load_coco_split(run / "dataset" / "coco_train.json", run / "dataset" / "images")
    data = MaskRCNNDataset(ds.items, schema_from_categories(ds.categories))
    with pytest.raises(DatasetError, match="is 48x32 but the dataset says 50x32"):
        data[0]
    (run / "dataset" / "images" / coco["images"][1]["file_name"]).unlink()
    with pytest.raises(DatasetError, match="cannot read image"):
        data[1]
    with pytest.raises(DatasetError, match="missing"):
        load_coco_split(run / "dataset" / "nope.json", None)


def test_grouped_sampler_is_seeded_grouped_and_resumable():
    ratios = [1.5, 0.7, 1.5, 0.7, 1.5, 0.7, 1.5]
    s = GroupedBatchSampler(ratios, 2, seed=3)
    s.set_epoch(1)
    batches = [[i for i, _ in b] for b in s]
    assert sorted(i for b in batches for i in b) == list(range(7))
    full = [b for b in batches if len(b) == 2]
    assert all(len({ratios[i] >= 1 for i in b}) == 1 for b in full)
    s.set_epoch(1, start_batch=2)
    assert [[i for i, _ in b] for b in s] == batches[2:]
    s.set_epoch(2)
    assert [[i for i, _ in b] for b in s] != batches
    ranks = [GroupedBatchSampler(ratios, 2, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(1)
    assert len(ranks[0]) == len(ranks[1])
