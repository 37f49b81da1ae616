"""COCO and LabelMe through the store: fixtures of other tools, round trips, pycocotools agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from pycocotools.coco import COCO

from workbench.domain import Instance, ValidationError
from workbench.geometry import polygons_to_mask, rle_to_mask
from workbench.geometry.rle import coco_rle_to_rle
from workbench.services import annotate, classes, export, imports, projects
from workbench.services.demo import create_demo_project
from workbench.services.workspace import open_workspace


def _instances(ws, slug):  # noqa: ANN001, ANN202
    return [
        i for im in annotate.list_images(ws, slug) for i in annotate.load_image(ws, slug, im.id).instances
    ]


def test_datumaro_instances_import(ws, project, shared_fixtures: Path) -> None:  # noqa: ANN001
    report = imports.import_coco(ws, project, shared_fixtures / "coco" / "coco_instances")
    assert report.skipped == []
    info = projects.get_project(ws, project)
    assert (info.num_images, info.num_annotations) == (2, 3)
    assert info.split_counts == {"train": 1, "val": 1}
    assert [c.name for c in classes.list_categories(ws, project)] == ["a", "b", "c"]
    insts = _instances(ws, project)
    crowd = [i for i in insts if i.iscrowd]
    assert len(crowd) == 1 and crowd[0].rle is not None and crowd[0].area == 20.0


def test_datumaro_keypoints_import_accepts_zero_based_skeleton_with_warning(
    ws, project, shared_fixtures
) -> None:  # noqa: ANN001
    report = imports.import_coco(ws, project, shared_fixtures / "coco" / "coco_person_keypoints")
    assert any("0-based" in w for w in report.warnings)
    cats = {c.name: c for c in classes.list_categories(ws, project)}
    assert cats["a"].keypoints is not None and cats["a"].keypoints.num_keypoints == 3
    assert cats["a"].keypoints.skeleton == ((0, 1), (1, 2))
    kps = [i.keypoints for i in _instances(ws, project) if i.keypoints]
    assert (1.0, 2.0, 2, 3.0, 4.0, 2, 2.0, 3.0, 2) in [tuple(k) for k in kps]


def test_roboflow_layout_import(ws, project, shared_fixtures) -> None:  # noqa: ANN001
    imports.import_coco(ws, project, shared_fixtures / "coco" / "coco_roboflow")
    info = projects.get_project(ws, project)
    assert info.num_images == 2 and info.split_counts == {"train": 1, "val": 1}


def test_labelme_fixture_import(ws, project, shared_fixtures) -> None:  # noqa: ANN001
    report = imports.import_labelme(ws, project, shared_fixtures / "labelme")
    assert report.skipped == [] and len(report.imported) == 3
    insts = _instances(ws, project)
    from collections import Counter

    counts = Counter(i.category for i in insts)
    assert counts == {"person": 6, "bottle": 1, "chair": 1, "sofa": 1, "bus": 2, "car": 1, "__ignore__": 2}
    sofa = next(i for i in insts if i.category == "sofa")
    assert len(sofa.polygons) == 4


def test_import_merges_classes_by_name_into_existing_project(ws, project, shared_fixtures) -> None:  # noqa: ANN001
    from workbench.domain import Category

    classes.add_category(ws, project, Category(name="b", color="#123456"))
    imports.import_coco(ws, project, shared_fixtures / "coco" / "coco_instances")
    cats = classes.list_categories(ws, project)
    assert [c.name for c in cats] == ["b", "a", "c"]
    assert cats[0].color == "#123456"


def test_bad_coco_stores_nothing(ws, project, tmp_path) -> None:  # noqa: ANN001
    from tests.support.images import write_image

    write_image(tmp_path / "x.png", 20, 10)
    bad = {
        "images": [{"id": 1, "file_name": "x.png", "width": 20, "height": 10}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[1, 1, 5, 1, 5, 5]],
                "bbox": [1, 1, 4, 4],
                "area": 8,
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 7,
                "segmentation": [[1, 1, 5, 1, 5, 5]],
                "bbox": [1, 1, 4, 4],
                "area": 8,
                "iscrowd": 0,
            },
        ],
    }
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad))
    with pytest.raises(ValidationError, match=r"bad\.json.*(category|7)"):
        imports.import_coco(ws, project, f)
    info = projects.get_project(ws, project)
    assert (info.num_images, info.num_annotations, info.num_categories) == (0, 0, 0)


def test_import_annotations_onto_images_already_in_the_project(ws, project, tmp_path) -> None:  # noqa: ANN001
    from tests.support.images import write_image

    write_image(tmp_path / "imgs" / "x.png", 20, 10, seed=3)
    imports.import_images(ws, project, [tmp_path / "imgs"])
    coco = {
        "images": [{"id": 9, "file_name": "x.png", "width": 20, "height": 10}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 9,
                "category_id": 1,
                "segmentation": [[1, 1, 9, 1, 9, 5, 1, 5]],
                "iscrowd": 0,
            }
        ],
    }
    f = tmp_path / "ann" / "x.json"
    f.parent.mkdir()
    f.write_text(json.dumps(coco))
    before = annotate.list_images(ws, project)[0]
    v0 = annotate.load_image(ws, project, before.id).version
    report = imports.import_coco(ws, project, f)
    assert report.annotations == 1
    (inst,) = _instances(ws, project)
    assert inst.area == 32.0 and inst.bbox_xywh == (1.0, 1.0, 8.0, 4.0)
    after = annotate.load_image(ws, project, before.id)
    assert before.status == "unlabeled" and after.image.status == "done"
    assert after.version == v0 + 1  # an annotator holding the old version reloads, never overwrites


def _export_json(ws, slug, out: Path) -> dict[str, dict]:  # noqa: ANN001
    paths = export.export_coco(ws, slug, out, copy_images=True)
    return {p.name: json.loads(p.read_text()) for p in paths}


def test_coco_round_trip_export_import_export_is_identical(tmp_path: Path) -> None:
    ws1 = open_workspace(tmp_path / "one")
    demo = create_demo_project(ws1, num_images=12)
    first = _export_json(ws1, demo.slug, tmp_path / "export1")
    ws2 = open_workspace(tmp_path / "two")
    slug2 = projects.create_project(ws2, "Copy").slug
    imports.import_coco(ws2, slug2, tmp_path / "export1")
    second = _export_json(ws2, slug2, tmp_path / "export2")
    assert first.keys() == second.keys() == {"instances_train.json", "instances_val.json"}
    assert _canonical(first) == _canonical(second)
    # one split imported into an empty workspace keeps even the ids
    ws3 = open_workspace(tmp_path / "three")
    slug3 = projects.create_project(ws3, "Val only").slug
    imports.import_coco(ws3, slug3, tmp_path / "export1" / "annotations" / "instances_val.json", split="val")
    third = _export_json(ws3, slug3, tmp_path / "export3")
    val1 = _canonical(first)["instances_val.json"]
    val3 = _canonical(third)["instances_val.json"]
    assert val1 == val3


def _canonical(data: dict[str, dict]) -> dict[str, dict]:
    """Store ids are the workspace's own; everything else must survive unchanged (ids -> file names)."""
    out = {}
    for name, d in data.items():
        d = json.loads(json.dumps(d))
        d.pop("info", None)
        names = {im["id"]: im["file_name"] for im in d["images"]}
        for im in d["images"]:
            im["id"] = im["file_name"]
        for pos, ann in enumerate(d["annotations"]):
            ann["image_id"] = names[ann["image_id"]]
            ann["id"] = pos
        out[name] = d
    return out


def test_pycocotools_masks_equal_ours_on_our_export(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "w")
    demo = create_demo_project(ws, num_images=6)
    slug = demo.slug
    # add an RLE instance with a hole, a crowd region and a box-only instance
    im = annotate.list_images(ws, slug)[0]
    loaded = annotate.load_image(ws, slug, im.id)
    mask = np.zeros((im.height, im.width), np.uint8)
    mask[10:50, 10:50] = 1
    mask[20:30, 20:30] = 0
    from workbench.geometry import mask_to_rle

    extra = [
        Instance(category="square", rle=mask_to_rle(mask)),
        Instance(category="circle", rle=mask_to_rle(mask), iscrowd=True),
    ]
    annotate.save_image(ws, slug, im.id, [*loaded.instances, *extra], expected_version=loaded.version)
    paths = export.export_coco(ws, slug, tmp_path / "out")
    checked = 0
    for p in paths:
        coco = COCO(str(p))
        res = coco.loadRes([{**a, "score": 0.9} for a in coco.dataset["annotations"] if not a["iscrowd"]])
        assert len(res.dataset["annotations"]) > 0
        for ann in coco.dataset["annotations"]:
            img = coco.imgs[ann["image_id"]]
            theirs = coco.annToMask(ann)
            seg = ann["segmentation"]
            ours = (
                rle_to_mask(coco_rle_to_rle(seg))
                if isinstance(seg, dict)
                else polygons_to_mask([tuple(s) for s in seg], (img["width"], img["height"]))
            )
            assert np.array_equal(theirs, ours)
            assert ann["area"] == pytest.approx(float(theirs.sum()))
            checked += 1
    assert checked > 10


def test_torchvision_cocodetection_loads_our_export(tmp_path: Path) -> None:
    from torchvision.datasets import CocoDetection

    ws = open_workspace(tmp_path / "w")
    slug = create_demo_project(ws, num_images=4).slug
    export.export_coco(ws, slug, tmp_path / "out", copy_images=True)
    for split in ("train", "val"):
        ann = tmp_path / "out" / "annotations" / f"instances_{split}.json"
        if not ann.exists():
            continue
        ds = CocoDetection(str(tmp_path / "out" / "images" / split), str(ann))
        img, target = ds[0]
        assert img.size[0] > 0 and isinstance(target, list)


def test_labelmaps_equal_union_of_pycocotools_masks(tmp_path: Path) -> None:
    from PIL import Image

    ws = open_workspace(tmp_path / "w")
    slug = create_demo_project(ws, num_images=5).slug
    paths = export.export_coco(ws, slug, tmp_path / "coco")
    out = export.export_labelmaps(ws, slug, tmp_path / "maps", layout="npz")
    class_info = json.loads((out / "classes.json").read_text())
    names = [c["name"] for c in (class_info["classes"] if isinstance(class_info, dict) else class_info)]
    compared = 0
    for p in paths:
        coco = COCO(str(p))
        cat_name = {c["id"]: c["name"] for c in coco.dataset["categories"]}
        for img in coco.dataset["images"]:
            npz = list(out.rglob(f"{Path(img['file_name']).stem}*.npz"))
            binary = [f for f in npz if "binary" in f.parts]
            assert binary, f"no binary map for {img['file_name']}"
            masks = np.load(binary[0])["masks"]
            for c, name in enumerate(names):
                expected = np.zeros((img["height"], img["width"]), np.uint8)
                for ann in coco.imgToAnns[img["id"]]:
                    if cat_name[ann["category_id"]] == name:
                        expected |= coco.annToMask(ann)
                assert np.array_equal(masks[c], expected), (img["file_name"], name)
                compared += 1
            index_png = [f for f in out.rglob(f"{Path(img['file_name']).stem}*.png") if "index" in f.parts]
            assert index_png and Image.open(index_png[0]).mode == "P"
    assert compared >= 15


def test_store_row_export_equals_dataset_to_coco(ws) -> None:  # noqa: ANN001
    """The fast export path (store rows -> COCO) and the domain path give the same COCO dict."""
    from workbench.formats.coco.write import dataset_to_coco, records_to_coco
    from workbench.geometry import mask_to_rle
    from workbench.store import annotations as annotation_repo
    from workbench.store import categories as category_repo
    from workbench.store import images as image_repo
    from workbench.store import projects as project_repo

    slug = create_demo_project(ws, num_images=6).slug
    im = annotate.list_images(ws, slug)[0]
    loaded = annotate.load_image(ws, slug, im.id)
    mask = np.zeros((im.height, im.width), np.uint8)
    mask[5:25, 5:30] = 1
    extra = [
        Instance(category="square", rle=mask_to_rle(mask), score=0.7, attributes={"note": "x"}),
        Instance(category="triangle", polygons=((1.0, 1.0, 9.0, 1.0, 5.0, 8.0),)),  # keypoints absent
        Instance(category="circle", bbox_xywh=(3.0, 4.0, 5.0, 6.0), iscrowd=True),  # box only
    ]
    annotate.save_image(ws, slug, im.id, [*loaded.instances, *extra], expected_version=loaded.version)
    ds = export.project_dataset(ws, slug)
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        cats, images = category_repo.list_categories(s, pid), image_repo.list_images(s, pid)
        as_stored = records_to_coco(
            cats, images, annotation_repo.annotation_records(s, pid), category_ids="renumbered"
        )
        parsed = records_to_coco(
            cats, images, annotation_repo.annotation_records(s, pid, as_stored=False), category_ids="renumbered"
        )
        boxed = records_to_coco(
            cats, images, annotation_repo.annotation_records(s, pid), category_ids="renumbered",
            box_only_as_polygon=True,
        )
    # the stored JSON text handed on as orjson fragments writes the bytes parsing would have written
    assert any(isinstance(a["segmentation"], orjson.Fragment) for a in as_stored["annotations"])
    assert orjson.dumps(as_stored) == orjson.dumps(parsed)
    fast = orjson.loads(orjson.dumps(as_stored))
    assert fast == parsed == dataset_to_coco(ds)
    assert any(a.get("attributes") == {"note": "x"} for a in fast["annotations"])
    # the box-only instance is parsed (not a fragment), so it still becomes its 4-corner polygon
    box_only = [a for a in boxed["annotations"] if a["bbox"] == [3.0, 4.0, 5.0, 6.0]]
    assert box_only and box_only[0]["segmentation"] == [[3.0, 4.0, 8.0, 4.0, 8.0, 10.0, 3.0, 10.0]]
