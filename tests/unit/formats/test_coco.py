"""COCO import/export: validation messages, the fixtures of other tools, round trips, pycocotools."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from workbench.domain import IGNORE_LABEL, ValidationError
from workbench.formats.coco.layouts import find_coco_files, find_coco_splits
from workbench.formats.coco.read import CocoFormatError, coco_to_dataset, load_coco
from workbench.formats.coco.write import dataset_to_coco, save_coco
from workbench.geometry import polygons_to_mask, rle_to_mask

SRC = "bad.json"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Mutation that sets ``obj[a][i][b] = value`` for a dotted path like ``annotations.0.bbox``."""

    def mutate(obj: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = obj
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _append(key: str, entry: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj[key].append(entry)


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj.pop(key)


def _strip_annotation(obj: dict[str, Any]) -> None:
    obj["annotations"][0]["segmentation"] = []
    del obj["annotations"][0]["bbox"]


BAD_CASES = [
    ("missing images", _drop("images"), ["missing required key 'images'"]),
    ("missing categories", _drop("categories"), ["missing required key 'categories'"]),
    ("annotations not a list", _set("annotations", {}), ["'annotations' must be a list"]),
    ("string category id", _set("categories.0.id", "1"), ["category #0", "must be integers"]),
    ("duplicate category id", _set("categories.1.id", 1), ["duplicate category id 1"]),
    (
        "duplicate image id",
        _append("images", {"id": 1, "file_name": "x.png", "width": 5, "height": 5}),
        ["duplicate image id 1"],
    ),
    (
        "unknown category id",
        _set("annotations.0.category_id", 99),
        ["annotation 7", "unknown category id 99"],
    ),
    ("unknown image id", _set("annotations.0.image_id", 5), ["annotation 7", "unknown image id 5"]),
    (
        "4-number polygon",
        _set("annotations.0.segmentation", [[1, 1, 5, 5]]),
        ["annotation 7", "4 numbers", "box"],
    ),
    (
        "odd coordinate count",
        _set("annotations.0.segmentation", [[1, 1, 5, 1, 5, 5, 1]]),
        ["annotation 7", "even number of coordinates", "7 numbers"],
    ),
    (
        "two-point polygon",
        _set("annotations.0.segmentation", [[1, 1, 5, 1, 5]]),
        ["annotation 7", "5 numbers"],
    ),
    (
        "NaN in polygon",
        _set("annotations.0.segmentation", [[1, 1, 5, 1, float("nan"), 5]]),
        ["annotation 7", "finite"],
    ),
    (
        "polygon part not a list",
        _set("annotations.0.segmentation", [1, 2, 3, 4, 5, 6]),
        ["annotation 7", "list of polygons"],
    ),
    (
        "segmentation is a string",
        _set("annotations.0.segmentation", "abc"),
        ["annotation 7", "segmentation must be a list of polygons or an RLE"],
    ),
    (
        "RLE counts do not cover the image",
        _set("annotations.0.segmentation", {"size": [10, 20], "counts": [5, 5]}),
        ["annotation 7", "200"],
    ),
    (
        "RLE size differs from image",
        _set("annotations.0.segmentation", {"size": [20, 10], "counts": [200]}),
        ["annotation 7", "does not match image 1"],
    ),
    ("iscrowd 2", _set("annotations.0.iscrowd", 2), ["annotation 7", "iscrowd must be 0 or 1"]),
    (
        "keypoints length",
        _set("annotations.1.keypoints", [1, 2, 2]),
        ["annotation 8", "keypoints length is 3", "3*K = 6"],
    ),
    (
        "keypoint visibility 3",
        _set("annotations.1.keypoints", [1, 2, 3, 0, 0, 0]),
        ["annotation 8", "v=3", "0, 1 or 2"],
    ),
    (
        "keypoints on a plain category",
        _set("annotations.0.keypoints", [1, 2, 2]),
        ["annotation 7", "declares no keypoint names"],
    ),
    ("NaN width", _set("images.0.width", float("nan")), ["image 1", "width", "not finite"]),
    ("negative height", _set("images.0.height", -10), ["image 1", "height", "not positive"]),
    ("non-integer width", _set("images.0.width", 20.5), ["image 1", "width", "non-integer"]),
    (
        "bbox with 3 numbers",
        _set("annotations.0.bbox", [1, 1, 3]),
        ["annotation 7", "bbox must be [x, y, w, h]"],
    ),
    ("bbox negative width", _set("annotations.0.bbox", [1, 1, -3, 2]), ["annotation 7", "negative width"]),
    (
        "bbox outside the image",
        _set("annotations.0.bbox", [50, 1, 3, 2]),
        ["annotation 7", "outside image 1"],
    ),
    ("negative area", _set("annotations.0.area", -1), ["annotation 7", "area must be"]),
    ("skeleton index out of range", _set("categories.1.skeleton", [[1, 5]]), ["category 2", "skeleton"]),
    ("no shape, box or keypoints", _strip_annotation, ["annotation 7", "no segmentation, no bbox"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_coco_is_refused_naming_file_and_problem(coco_dict, mutate, expected) -> None:
    obj = coco_dict()
    mutate(obj)
    with pytest.raises(CocoFormatError) as info:
        coco_to_dataset(obj, source=SRC)
    message = str(info.value)
    assert message.startswith(SRC), message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_results_list_is_refused() -> None:
    with pytest.raises(CocoFormatError, match=r"^bad\.json: .*list"):
        coco_to_dataset([{"image_id": 1}], source=SRC)  # type: ignore[arg-type]


def test_valid_dict_reads_every_field(coco_dict, tmp_path: Path) -> None:
    obj = coco_dict()
    obj["annotations"][0]["attributes"] = {"occluded": True}
    ds = coco_to_dataset(obj, source="ok.json", images_dir=tmp_path, split="valid")
    assert [(c.name, c.id, c.supercategory) for c in ds.categories] == [
        ("shape", 1, "thing"),
        ("person", 2, ""),
    ]
    person = ds.category("person").keypoints
    assert person is not None and person.names == ("l", "r") and person.skeleton == ((0, 1),)
    (item,) = ds.items
    assert item.image.path == str(tmp_path / "img.png") and item.image.split == "val" and item.image.id == 1
    box, kp = item.instances
    assert box.bbox_xywh == (1.0, 1.0, 7.0, 5.0) and box.area == 35.0  # kept from the file
    assert box.attributes == {"occluded": True} and box.source == "imported" and box.id == 7
    assert kp.keypoints == (11.0, 3.0, 2, 0.0, 0.0, 0)
    # area missing in the file: recomputed as the rasterised mask area (not the 30 px box)
    assert kp.area == float(polygons_to_mask(kp.polygons, (20, 10)).sum()) == 14.0
    assert ds.warnings == []


def test_uncompressed_and_compressed_rle_give_the_same_mask(coco_dict) -> None:
    obj = coco_dict()
    obj["annotations"][0]["segmentation"] = {"size": [10, 20], "counts": [22, 3, 7, 3, 165]}
    obj["annotations"][0]["iscrowd"] = 1
    inst = coco_to_dataset(obj, source=SRC).items[0].instances[0]
    assert inst.rle is not None and inst.iscrowd
    mask = rle_to_mask(inst.rle)
    assert mask.shape == (10, 20) and mask.sum() == 6 and mask[2:5, 2].all() and mask[2:5, 3].all()
    obj["annotations"][0]["segmentation"] = inst.rle.to_coco()
    again = coco_to_dataset(obj, source=SRC).items[0].instances[0]
    assert again.rle == inst.rle


def test_visibility_zero_clears_coordinates(coco_dict) -> None:
    obj = coco_dict()
    obj["annotations"][1]["keypoints"] = [11, 3, 2, 4, 5, 0]
    inst = coco_to_dataset(obj, source=SRC).items[0].instances[1]
    assert inst.keypoints == (11.0, 3.0, 2, 0.0, 0.0, 0)


def test_empty_keypoint_list_on_plain_category_means_none(coco_dict) -> None:
    obj = coco_dict()
    obj["annotations"][0]["keypoints"] = []
    assert coco_to_dataset(obj, source=SRC).items[0].instances[0].keypoints is None


def test_unknown_split_is_refused(coco_dict) -> None:
    with pytest.raises(CocoFormatError, match="split"):
        coco_to_dataset(coco_dict(), source=SRC, split="holdout")


# ------------------------------------------------------------------ fixtures of other tools


def test_datumaro_instances(shared_fixtures: Path) -> None:
    splits = find_coco_splits(shared_fixtures / "coco" / "coco_instances")
    assert sorted(splits) == ["train", "val"]
    train = load_coco(splits["train"], split="train")
    (item,) = train.items
    assert item.image.path == str(shared_fixtures / "coco/coco_instances/images/train/a.jpg")
    assert (item.image.width, item.image.height, item.image.split) == (10, 5, "train")
    (box,) = item.instances
    assert box.category == "b" and not box.has_shape and box.bbox_xywh == (2.0, 2.0, 3.0, 1.0)
    val = load_coco(splits["val"], split="val")
    assert [c.name for c in val.categories] == ["a", "b", "c"] and [c.id for c in val.categories] == [1, 2, 4]
    poly, crowd = val.items[0].instances
    assert poly.polygons == ((0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0),)
    assert poly.attributes == {"x": 1, "y": "hello"}
    assert crowd.iscrowd and crowd.rle is not None and crowd.area == 20.0
    assert rle_to_mask(crowd.rle)[:, :2].all() and rle_to_mask(crowd.rle).sum() == 20


def test_datumaro_person_keypoints_warns_about_zero_based_skeleton(shared_fixtures: Path) -> None:
    splits = find_coco_splits(shared_fixtures / "coco" / "coco_person_keypoints")
    ds = load_coco(splits["val"], split="val")
    for cat in ds.categories:
        assert cat.keypoints is not None
        assert cat.keypoints.names == ("kp1", "kp2", "kp3")
        assert cat.keypoints.skeleton == ((0, 1), (1, 2))  # read as 0-based, kept 0-based
    text = "\n".join(ds.warnings)
    assert "0-based" in text and "kp1..kp3" in text and "person_keypoints_val.json" in text
    first, second = ds.items[0].instances
    assert first.keypoints == (1.0, 2.0, 2, 3.0, 4.0, 2, 2.0, 3.0, 2) and first.num_keypoints == 3
    assert second.iscrowd and second.rle is not None
    out = dataset_to_coco(ds)
    assert out["categories"][0]["skeleton"] == [[1, 2], [2, 3]]  # written back 1-based


def test_roboflow_layout(shared_fixtures: Path) -> None:
    root = shared_fixtures / "coco" / "coco_roboflow"
    splits = find_coco_splits(root)
    assert splits == {
        "train": root / "train/_annotations.coco.json",
        "val": root / "val/_annotations.coco.json",
    }
    ds = load_coco(splits["val"], split="val")
    assert ds.items[0].image.path == str(root / "val" / "b.jpg")
    assert ds.num_instances == 2


def test_roboflow_valid_folder_is_val_and_images_beside(tmp_path: Path, coco_dict) -> None:
    (tmp_path / "valid").mkdir()
    Image.new("RGB", (20, 10)).save(tmp_path / "valid" / "img.png")
    save_coco(coco_dict(), tmp_path / "valid" / "_annotations.coco.json")
    splits = find_coco_splits(tmp_path)
    assert list(splits) == ["val"]
    ds = load_coco(splits["val"], split="valid")
    assert ds.items[0].image.split == "val"
    assert ds.items[0].image.path == str(tmp_path / "valid" / "img.png")


def test_several_files_of_one_split_are_all_found(tmp_path: Path, coco_dict) -> None:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images" / "train").mkdir(parents=True)
    Image.new("RGB", (20, 10)).save(tmp_path / "images" / "train" / "img.png")
    for name in ("instances_train.json", "person_keypoints_train.json", "instances_val.json"):
        save_coco(coco_dict(), tmp_path / "annotations" / name)
    files = find_coco_files(tmp_path)
    assert [(s, p.name) for s, p in files] == [
        ("train", "instances_train.json"),
        ("train", "person_keypoints_train.json"),
        ("val", "instances_val.json"),
    ]
    splits = find_coco_splits(tmp_path)
    assert list(splits) == ["train", "train.person_keypoints", "val"]
    ds = load_coco(splits["train.person_keypoints"], split="train.person_keypoints")
    assert ds.items[0].image.split == "train"
    assert ds.items[0].image.path == str(tmp_path / "images" / "train" / "img.png")


def test_missing_images_are_named(tmp_path: Path, coco_dict) -> None:
    obj = coco_dict()
    obj["images"] = [{"id": i, "file_name": f"m{i}.png", "width": 20, "height": 10} for i in range(1, 9)]
    Image.new("RGB", (20, 10)).save(tmp_path / "m1.png")
    path = tmp_path / "ann.json"
    save_coco(obj, path)
    with pytest.raises(CocoFormatError) as info:
        load_coco(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "7 image file(s) missing" in msg
    assert "m2.png" in msg and "m6.png" in msg and "m7.png" not in msg and "and 2 more" in msg
    with pytest.raises(CocoFormatError, match="nowhere"):
        load_coco(path, images_dir=tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{not json", "not valid JSON"), ("", "not valid JSON")],
)
def test_unreadable_json_names_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(CocoFormatError, match=expected) as info:
        load_coco(path)
    assert str(path) in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(CocoFormatError, match="file not found"):
        load_coco(Path("/nonexistent/ann.json"))


# ------------------------------------------------------------------ export


def test_export_numbers_ids_and_leaves_ignore_out(dataset) -> None:
    out = dataset_to_coco(dataset)
    assert [c["name"] for c in out["categories"]] == ["shape", "person"]
    assert [c["id"] for c in out["categories"]] == [1, 2]
    assert [i["id"] for i in out["images"]] == [1, 2, 3]
    assert [a["id"] for a in out["annotations"]] == [1, 2, 3, 4, 5]
    assert all(a["category_id"] in (1, 2) for a in out["annotations"])
    person = out["categories"][1]
    assert person["keypoints"] == ["head", "left", "right"]
    assert person["skeleton"] == [[1, 2], [1, 3]] and person["flip_pairs"] == [[2, 3]]
    anns = {a["id"]: a for a in out["annotations"]}
    assert anns[1]["segmentation"] == [[1, 1, 6, 1, 6, 5], [8, 8, 12, 8, 12, 11, 8, 11]]
    assert isinstance(anns[2]["segmentation"]["counts"], str) and anns[2]["iscrowd"] == 0
    assert anns[2]["area"] == 80 - 16  # mask area with its hole, not the box
    assert anns[2]["bbox"] == [3.0, 2.0, 10.0, 8.0]
    assert anns[3]["keypoints"] == [3.0, 3.0, 2, 0.0, 0.0, 0, 8.0, 4.0, 1] and anns[3]["num_keypoints"] == 2
    assert (
        anns[4]["segmentation"] == [] and anns[4]["bbox"] == [1.0, 1.0, 3.0, 2.0] and anns[4]["area"] == 6.0
    )
    assert anns[5]["iscrowd"] == 1 and anns[5]["keypoints"] == [0.0] * 2 + [0] + [0.0] * 2 + [0] + [
        0.0
    ] * 2 + [0]
    assert anns[5]["num_keypoints"] == 0


def test_export_keeps_stored_ids(dataset) -> None:
    from dataclasses import replace

    dataset.categories = [replace(c, id=i) for c, i in zip(dataset.categories, (3, 9, 5), strict=True)]
    dataset.items[1] = replace(dataset.items[1], image=replace(dataset.items[1].image, id=40))
    first = dataset.items[0]
    dataset.items[0] = replace(first, instances=(replace(first.instances[0], id=100), *first.instances[1:]))
    out = dataset_to_coco(dataset)
    assert [c["id"] for c in out["categories"]] == [3, 9]
    # stored ids stay; missing ones are numbered after the largest stored one, so they never collide
    assert [i["id"] for i in out["images"]] == [41, 40, 42]
    assert [a["id"] for a in out["annotations"]] == [100, 101, 102, 103, 104]


def test_export_refuses_duplicate_ids_and_unknown_categories(dataset) -> None:
    from dataclasses import replace

    items = dataset.items
    dataset.items = [replace(it, image=replace(it.image, id=4)) for it in items]
    with pytest.raises(ValidationError, match="duplicate image ids"):
        dataset_to_coco(dataset)
    dataset.items = items
    dataset.categories = dataset.categories[1:]
    with pytest.raises(ValidationError, match="unknown category 'shape'"):
        dataset_to_coco(dataset)


def test_round_trip_is_identical(dataset, tmp_path: Path) -> None:
    first = dataset_to_coco(dataset, info={"description": "t"})
    path = tmp_path / "out" / "instances_train.json"
    save_coco(first, path)
    read = json.loads(path.read_text())
    assert read == first
    back = coco_to_dataset(read, source=str(path))
    assert back.warnings == []
    assert dataset_to_coco(back, info={"description": "t"}) == first
    # and the domain records agree on what matters (ignore left out)
    orig = [i for it in dataset.items for i in it.instances if i.category != IGNORE_LABEL]
    again = [i for it in back.items for i in it.instances]
    assert [(i.category, i.polygons, i.rle, i.iscrowd) for i in orig] == [
        (i.category, i.polygons, i.rle, i.iscrowd) for i in again
    ]
    for o, a in zip(orig, again, strict=True):  # a keypoint instance without keypoints comes back all v=0
        assert a.keypoints == o.keypoints or (o.keypoints is None and a.num_keypoints == 0)
    assert back.category("person").keypoints == dataset.category("person").keypoints


def test_save_coco_is_compact_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    save_coco({"images": [1, 2]}, path)
    assert path.read_text() == '{"images":[1,2]}'
    with pytest.raises(ValidationError, match="a.json"):
        save_coco({"x": float("nan")}, path)
    assert path.read_text() == '{"images":[1,2]}'  # the old file survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temp files left


# ------------------------------------------------------------------ pycocotools and torchvision


@pytest.fixture
def exported(dataset, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    out = dataset_to_coco(dataset)
    for img in out["images"]:
        Image.new("RGB", (img["width"], img["height"]), "gray").save(tmp_path / img["file_name"])
    path = tmp_path / "instances.json"
    save_coco(out, path)
    return path, out


def test_pycocotools_loads_export_and_masks_agree(exported, dataset) -> None:
    from pycocotools.coco import COCO

    path, out = exported
    coco = COCO(str(path))
    assert len(coco.getAnnIds()) == len(out["annotations"])
    assert coco.getCatIds(catNms=["person"]) == [2]
    instances = [i for it in dataset.items for i in it.instances if i.category != IGNORE_LABEL]
    sizes = [it.image.size_wh for it in dataset.items for i in it.instances if i.category != IGNORE_LABEL]
    for ann, inst, size_wh in zip(coco.loadAnns(coco.getAnnIds()), instances, sizes, strict=True):
        if inst.polygons:
            assert np.array_equal(coco.annToMask(ann), polygons_to_mask(inst.polygons, size_wh)), ann["id"]
        elif inst.rle is not None:
            assert np.array_equal(coco.annToMask(ann), rle_to_mask(inst.rle))
        else:  # box-only: pycocotools cannot rasterise [] (IndexError), hence box_only_as_polygon
            assert ann["segmentation"] == []
            continue
        assert ann["area"] == float(coco.annToMask(ann).sum())


def test_box_only_as_polygon_makes_segm_tools_work(dataset) -> None:
    from pycocotools.coco import COCO

    out = dataset_to_coco(dataset, box_only_as_polygon=True)
    (box,) = [a for a in out["annotations"] if a["id"] == 4]
    assert box["segmentation"] == [[1.0, 1.0, 4.0, 1.0, 4.0, 3.0, 1.0, 3.0]] and box["area"] == 6.0
    coco = COCO()
    coco.dataset = out
    coco.createIndex()
    mask = coco.annToMask(box)
    assert mask.sum() == 6 and mask[1:3, 1:4].all()


def test_pycocotools_load_res_accepts_results_built_from_export(exported) -> None:
    from pycocotools.coco import COCO

    path, out = exported
    gt = COCO(str(path))
    segm = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "segmentation": gt.annToRLE(a),
            "score": 0.9,
        }
        for a in out["annotations"]
        if a["segmentation"]
    ]
    assert len(segm) == len(out["annotations"]) - 1  # all but the box-only one
    assert len(gt.loadRes(segm).getAnnIds()) == len(segm)
    boxes = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.5}
        for a in out["annotations"]
    ]
    assert len(gt.loadRes(boxes).getAnnIds()) == len(boxes)


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_export_scored_against_itself_is_perfect(dataset, iou_type: str) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = dataset_to_coco(dataset, box_only_as_polygon=True)
    gt.createIndex()
    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0}
        | ({"segmentation": gt.annToRLE(a)} if iou_type == "segm" else {"bbox": a["bbox"]})
        for a in gt.dataset["annotations"]
        if not a["iscrowd"]
    ]
    ev = COCOeval(gt, gt.loadRes(results), iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_torchvision_coco_detection_reads_export(exported) -> None:
    tv = pytest.importorskip("torchvision")
    path, out = exported
    ds = tv.datasets.CocoDetection(str(path.parent), str(path))
    assert len(ds) == len(out["images"])
    image, target = ds[0]
    assert image.size == (16, 12) and len(target) == 3
    assert {t["category_id"] for t in target} == {1, 2}


def test_shared_fixture_copy_layout_is_untouched(shared_fixtures: Path, tmp_path: Path) -> None:
    """Importing a copy with images beside the json also works (roboflow style with images_dir=None)."""
    src = shared_fixtures / "coco" / "coco_instances"
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    (dst / "images" / "val" / "b.jpg").unlink()
    with pytest.raises(CocoFormatError, match="b.jpg"):
        load_coco(dst / "annotations" / "instances_val.json", split="val")


def test_polygons_beyond_the_image_are_clipped_with_a_warning() -> None:
    obj = {
        "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "segmentation": [[10, 5, 30, 5, 30, 15, 10, 15]],
             "bbox": [10, 5, 20, 10], "area": 200, "iscrowd": 0},
            {"id": 8, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 5]],
             "bbox": [1, 1, 4, 4], "area": 8, "iscrowd": 0},
        ],
    }
    ds = coco_to_dataset(obj, source="clip.json")
    a, b = ds.items[0].instances
    xs, ys = a.polygons[0][0::2], a.polygons[0][1::2]
    assert max(xs) == 20 and max(ys) == 10
    assert a.bbox_xywh == (10.0, 5.0, 10.0, 5.0) and a.area == 50.0
    assert b.bbox_xywh == (1.0, 1.0, 4.0, 4.0) and b.area == 8.0  # inside: the file's numbers kept
    assert any("clip.json: 1 annotation(s)" in w and "7" in w for w in ds.warnings)
    outside = {**obj, "annotations": [{**obj["annotations"][0], "segmentation": [[25, 1, 30, 1, 30, 5]]}]}
    with pytest.raises(CocoFormatError, match="annotation 7: polygon lies entirely outside image 1"):
        coco_to_dataset(outside, source="out.json")


@pytest.mark.parametrize(
    "segmentation",
    [
        [[10.1, 5.1, 10.6, 5.2, 10.3, 5.7]],  # a valid triangle inside pixel (10, 5)
        [[0.6, 0.6, 9.6, 9.4, 9.6, 9.6]],  # a sliver between pixel centres
        {"size": [10, 20], "counts": [200]},  # an empty RLE
    ],
    ids=["sub-pixel", "sliver", "empty-rle"],
)
def test_annotation_covering_no_pixel_is_skipped_with_a_warning(
    coco_dict, segmentation: Any  # noqa: ANN001
) -> None:
    """Stored, it would be an instance of area 0 with an empty mask; the rest of the file imports."""
    obj = coco_dict()
    obj["annotations"].append(
        {"id": 9, "image_id": 1, "category_id": 1, "segmentation": segmentation, "bbox": [10, 5, 1, 1],
         "area": 0.1, "iscrowd": 0}
    )  # fmt: skip
    ds = coco_to_dataset(obj, source="tiny.json")
    assert [i.id for i in ds.items[0].instances] == [7, 8]
    (warning,) = [w for w in ds.warnings if "cover no pixel" in w]
    assert warning.startswith("tiny.json: 1 annotation(s) cover no pixel") and "9 (img.png)" in warning
    assert coco_to_dataset(coco_dict(), source="ok.json").warnings == []


def test_a_coco_file_with_flip_pairs_sharing_a_keypoint_is_refused_naming_it(tmp_path: Path) -> None:
    from workbench.formats.coco.read import load_coco

    path = tmp_path / "ann.json"
    cat = {"id": 1, "name": "p", "keypoints": ["a", "b", "c"], "skeleton": [], "flip_pairs": [[1, 2], [2, 3]]}
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [cat]}))
    with pytest.raises(ValidationError, match=r"ann\.json.*more than one flip pair"):
        load_coco(path)
