from __future__ import annotations

import numpy as np
import pytest
from pycocotools.coco import COCO

from workbench.domain import (
    IGNORE_LABEL,
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    ValidationError,
)
from workbench.formats.labelmaps import (
    binary_label_maps,
    keypoint_heatmaps,
    label_classes,
    palette,
    semantic_index_map,
)
from workbench.geometry import coco_rle_to_rle, mask_to_rle

W, H = 16, 12

# pycocotools' annToMask (the reference here) trips NumPy 2's copy-keyword deprecation; harmless.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def square(x: float, y: float, s: float) -> tuple[float, ...]:
    return (x, y, x + s, y, x + s, y + s, x, y + s)


def item_of(*instances: Instance, w: int = W, h: int = H) -> AnnotatedImage:
    return AnnotatedImage(ImageRecord("img.png", w, h, id=1), tuple(instances))


CATS = [Category("cat", 1), Category(IGNORE_LABEL, 2), Category("dog", 3)]


def coco_from_dict(data: dict) -> COCO:
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco


def union_of_ann_to_mask(coco: COCO, image_id: int, cat_id: int, h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w), np.uint8)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[cat_id], iscrowd=None)):
        out |= coco.annToMask(ann)
    return out


def test_label_classes_skip_ignore_and_keep_order():
    assert [c.name for c in label_classes(CATS)] == ["cat", "dog"]


def test_overlapping_classes_are_both_one():
    item = item_of(Instance("cat", polygons=(square(0, 0, 8),)), Instance("dog", polygons=(square(4, 4, 8),)))
    maps = binary_label_maps(item, CATS)
    assert maps.shape == (2, H, W) and maps.dtype == np.uint8
    assert set(np.unique(maps)) <= {0, 1}
    assert maps[0, 5, 5] == 1 and maps[1, 5, 5] == 1  # the overlap
    assert maps[0, 1, 1] == 1 and maps[1, 1, 1] == 0
    assert maps[:, 0, 15].sum() == 0


def test_ignore_is_not_a_channel_and_shapeless_instances_draw_nothing():
    item = item_of(
        Instance(IGNORE_LABEL, polygons=(square(0, 0, 6),)),
        Instance("dog", bbox_xywh=(0.0, 0.0, 5.0, 5.0), keypoints=(1.0, 1.0, 2)),
    )
    assert binary_label_maps(item, CATS).sum() == 0


def test_index_map_draws_later_over_earlier_and_ignore_last():
    item = item_of(
        Instance(IGNORE_LABEL, polygons=(square(0, 0, 3),)),  # first, yet on top of everything
        Instance("cat", polygons=(square(0, 0, 8),)),
        Instance("dog", polygons=(square(4, 4, 8),)),
        Instance("cat", polygons=(square(10, 0, 4),), iscrowd=True),
    )
    index = semantic_index_map(item, CATS)
    assert index.shape == (H, W) and index.dtype == np.uint8
    assert index[1, 1] == 255  # ignore region
    assert index[1, 5] == 1  # cat only
    assert index[5, 5] == 2  # dog drawn after the cat
    assert index[2, 11] == 1  # crowd counts as its class
    assert index[11, 0] == 0  # background
    assert set(np.unique(index)) == {0, 1, 2, 255}
    # drawing order decides: the same two shapes the other way round
    swapped = item_of(
        Instance("dog", polygons=(square(4, 4, 8),)), Instance("cat", polygons=(square(0, 0, 8),))
    )
    assert semantic_index_map(swapped, CATS)[5, 5] == 1


def test_unknown_category_is_named():
    with pytest.raises(ValidationError, match="img.png: instance of 'bird'"):
        binary_label_maps(item_of(Instance("bird", polygons=(square(0, 0, 3),))), CATS)


def test_too_many_classes_for_an_index_map():
    cats = [Category(f"c{i}") for i in range(255)]
    with pytest.raises(ValidationError, match="at most 254"):
        semantic_index_map(item_of(), cats)


def test_binary_maps_equal_union_of_ann_to_mask_per_class():
    """The issue's check: our per-class maps == pycocotools annToMask unioned per class."""
    hole = np.zeros((H, W), np.uint8)
    hole[2:9, 6:13] = 1
    hole[4:6, 8:10] = 0
    hole_rle = mask_to_rle(hole)
    # uncompressed crowd RLE, column-major: a vertical strip in column 14 rows 3..8
    strip = np.zeros((H, W), np.uint8)
    strip[3:9, 14] = 1
    runs, value, run = [], 0, 0
    for px in strip.flatten(order="F"):
        if px != value:
            runs.append(run)
            value, run = px, 0
        run += 1
    runs.append(run)
    anns = [
        (1, "cat", [[0.5, 0.5, 7.2, 0.5, 7.2, 6.9, 0.5, 6.9], [1.0, 8.0, 5.0, 11.5, 0.0, 11.0]], 0),
        (2, "dog", hole_rle.to_coco(), 0),
        (3, "dog", [[3.3, 3.3, 9.9, 4.1, 6.0, 10.2]], 0),
        (4, "cat", {"size": [H, W], "counts": runs}, 1),
    ]
    cat_ids = {"cat": 1, "dog": 3}
    coco = coco_from_dict(
        {
            "images": [{"id": 1, "width": W, "height": H, "file_name": "img.png"}],
            "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
            "annotations": [
                {
                    "id": aid,
                    "image_id": 1,
                    "category_id": cat_ids[name],
                    "segmentation": seg,
                    "area": 0.0,
                    "bbox": [0, 0, 1, 1],
                    "iscrowd": crowd,
                }
                for aid, name, seg, crowd in anns
            ],
        }
    )
    instances = []
    for aid, name, seg, crowd in anns:
        if isinstance(seg, list):
            instances.append(
                Instance(name, polygons=tuple(tuple(p) for p in seg), iscrowd=bool(crowd), id=aid)
            )
        else:
            instances.append(Instance(name, rle=coco_rle_to_rle(seg), iscrowd=bool(crowd), id=aid))
    maps = binary_label_maps(item_of(*instances), CATS)
    for channel, cat in enumerate(label_classes(CATS)):
        expected = union_of_ann_to_mask(coco, 1, cat_ids[cat.name], H, W)
        assert expected.sum() > 0
        np.testing.assert_array_equal(maps[channel], expected)


def test_binary_maps_equal_ann_to_mask_on_our_own_coco_export():
    from workbench.formats.coco.write import dataset_to_coco

    cats = [Category("cat", 1), Category("dog", 2)]
    mask = np.zeros((H, W), np.uint8)
    mask[1:10, 2:12] = 1
    mask[3:5, 4:6] = 0
    ds = Dataset(
        cats,
        [
            item_of(
                Instance("cat", polygons=(square(0.4, 0.4, 6.3), (8.0, 8.0, 15.5, 9.0, 12.0, 11.7))),
                Instance("dog", rle=mask_to_rle(mask)),
                Instance("dog", polygons=((13.0, 0.0, 16.0, 0.0, 16.0, 6.0),), iscrowd=True),
            )
        ],
    )
    coco = coco_from_dict(dataset_to_coco(ds))
    maps = binary_label_maps(ds.items[0], cats)
    ids = {c["name"]: c["id"] for c in coco.dataset["categories"]}
    image_id = coco.dataset["images"][0]["id"]
    for channel, cat in enumerate(cats):
        np.testing.assert_array_equal(
            maps[channel], union_of_ann_to_mask(coco, image_id, ids[cat.name], H, W)
        )


SCHEMA = KeypointSchema(("nose", "tail", "paw"))


def kp_item(*kps: tuple[float, ...]) -> AnnotatedImage:
    return item_of(*(Instance("dog", keypoints=k, bbox_xywh=(0.0, 0.0, 10.0, 10.0)) for k in kps))


def test_heatmap_without_sigma_is_one_at_the_joint_pixel():
    hm = keypoint_heatmaps(kp_item((3.7, 5.2, 2, 0.0, 0.0, 0, 15.9, 11.9, 1)), SCHEMA, "dog")
    assert hm.shape == (3, H, W) and hm.dtype == np.float32
    assert hm[0, 5, 3] == 1.0 and hm[0].sum() == 1.0
    assert hm[1].sum() == 0.0  # v = 0: no target
    assert hm[2, 11, 15] == 1.0  # occluded (v = 1) still counts


def test_gaussian_heatmap_peaks_at_the_joint():
    sigma = 1.5
    hm = keypoint_heatmaps(kp_item((6.5, 4.5, 2, 0.0, 0.0, 0, 0.0, 0.0, 0)), SCHEMA, "dog", sigma=sigma)
    assert np.unravel_index(int(hm[0].argmax()), hm[0].shape) == (4, 6)
    assert hm[0, 4, 6] == pytest.approx(1.0)
    assert hm[0, 4, 7] == pytest.approx(np.exp(-1 / (2 * sigma**2)), rel=1e-6)
    assert hm[0, 5, 7] == pytest.approx(np.exp(-2 / (2 * sigma**2)), rel=1e-6)
    assert hm[0, 4, 6 + 6] == 0.0  # cut beyond ceil(3 sigma) = 5 pixels
    assert hm[1:].sum() == 0.0


def test_heatmaps_of_several_instances_combine_by_max_and_skip_others():
    item = item_of(
        Instance("dog", keypoints=(2.0, 2.0, 2, 0, 0, 0, 0, 0, 0)),
        Instance("dog", keypoints=(9.0, 9.0, 2, 0, 0, 0, 0, 0, 0)),
        Instance("cat", keypoints=(5.0, 5.0, 2)),  # another category's keypoints
        Instance("dog", keypoints=(40.0, 2.0, 2, 0, 0, 0, 0, 0, 0)),  # outside the image
    )
    hm = keypoint_heatmaps(item, SCHEMA, "dog", sigma=2.0)
    assert hm[0, 2, 2] == pytest.approx(1.0) and hm[0, 9, 9] == pytest.approx(1.0)
    assert hm.max() <= 1.0
    assert hm[0, 5, 5] < 0.2


def test_heatmap_keypoint_count_must_match_schema():
    with pytest.raises(ValidationError, match="has 1 keypoints, the schema has 3"):
        keypoint_heatmaps(kp_item((1.0, 1.0, 2)), SCHEMA, "dog")
    with pytest.raises(ValidationError, match="sigma"):
        keypoint_heatmaps(kp_item(), SCHEMA, "dog", sigma=0.0)


def test_palette():
    pal = palette()
    assert len(pal) == 768 and all(0 <= v <= 255 for v in pal)
    colours = [tuple(pal[i : i + 3]) for i in range(0, 768, 3)]
    assert colours[0] == (0, 0, 0)
    assert min(colours[255]) >= 192  # ignore is light
    assert len(set(colours)) == 256
