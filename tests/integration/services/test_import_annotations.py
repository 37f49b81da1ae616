"""COCO's two files of one object (instances_*.json, then person_keypoints_*.json with keypoints):
the second file's keypoints join the stored annotation of the same class and box."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.factories import media_files
from tests.support.images import write_image
from workbench.domain import Category, Instance, KeypointSchema, ValidationError
from workbench.services import annotate, classes, imports, projects


def _keypointed(ws, slug: str) -> list:  # noqa: ANN001
    out = []
    for im in annotate.list_images(ws, slug):
        out += [i for i in annotate.load_image(ws, slug, im.id).instances if i.keypoints]
    return out


def test_person_keypoints_after_instances_add_keypoints_to_the_same_objects(ws, project, shared_fixtures: Path) -> None:  # noqa: ANN001
    coco = shared_fixtures / "coco"
    first = imports.import_coco(ws, project, coco / "coco_instances")
    assert first.annotations > 0 and _keypointed(ws, project) == []
    count = sum(len(annotate.load_image(ws, project, im.id).instances) for im in annotate.list_images(ws, project))

    second = imports.import_coco(ws, project, coco / "coco_person_keypoints")
    got = _keypointed(ws, project)
    # the 3 objects of person_keypoints_{train,val}.json: train b (box-only), val a (polygon), val b (crowd RLE)
    assert sorted(i.category for i in got) == ["a", "b", "b"] and second.keypoints_attached == 3
    by_box = {i.bbox_xywh: i.keypoints for i in got}
    assert by_box[(2.0, 2.0, 3.0, 1.0)] == (0.0, 0.0, 0, 0.0, 2.0, 1, 4.0, 1.0, 2)
    assert "keypoints added to 3 annotations" in second.summary()
    # no annotation was added twice
    assert sum(len(annotate.load_image(ws, project, im.id).instances) for im in annotate.list_images(ws, project)) == count

    # importing the keypoints again changes nothing
    again = imports.import_coco(ws, project, coco / "coco_person_keypoints")
    assert again.keypoints_attached == 0 and len(_keypointed(ws, project)) == 3
    assert any("its annotations were not imported" in w for w in again.warnings)


def test_one_folder_with_both_files_keeps_the_keypoints(ws, project, shared_fixtures: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """The datumaro layout of a COCO download: instances_train.json and person_keypoints_train.json side by side."""
    coco = shared_fixtures / "coco"
    both = tmp_path / "coco_both"
    shutil.copytree(coco / "coco_instances", both)
    for f in (coco / "coco_person_keypoints" / "annotations").iterdir():
        shutil.copy(f, both / "annotations" / f.name)
    report = imports.import_coco(ws, project, both)
    got = _keypointed(ws, project)
    assert sorted(i.category for i in got) == ["a", "b", "b"] and report.keypoints_attached == 3


def test_a_refused_coco_import_leaves_no_files(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    """A COCO refused at the row stage (class with another keypoint schema) stores no image files."""
    classes.add_category(ws, project, Category(name="a", keypoints=KeypointSchema(("x", "y"))))
    write_image(tmp_path / "imgs" / "p.png", 8, 8, seed=5)
    coco = {
        "images": [{"id": 1, "file_name": "p.png", "width": 8, "height": 8}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0,
             "segmentation": [], "keypoints": [1, 1, 2, 2, 2, 2, 3, 3, 2], "num_keypoints": 3}
        ],
        "categories": [{"id": 1, "name": "a", "keypoints": ["p", "q", "r"], "skeleton": []}],
    }
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(coco))
    with pytest.raises(ValidationError, match="keypoints"):
        imports.import_coco(ws, project, ann, images_dir=tmp_path / "imgs")
    assert projects.get_project(ws, project).num_images == 0
    assert media_files(ws, project) == []


@pytest.mark.parametrize("via", ["coco", "images"])
def test_reimporting_an_export_does_not_duplicate_converted_images(
    ws, project, tmp_path: Path, via: str  # noqa: ANN001
) -> None:
    """An EXIF-rotated JPEG is stored as an upright PNG; the --copy-images export holds that PNG.
    Importing the export back into the same project must find the image, not add it again."""
    from PIL import Image

    from workbench.services import annotate, export

    img = Image.new("RGB", (12, 6), (200, 10, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90: upright 6x12
    (tmp_path / "src").mkdir()
    img.save(tmp_path / "src" / "r.jpg", exif=exif)
    imports.import_images(ws, project, [tmp_path / "src"])
    (im,) = annotate.list_images(ws, project)
    assert (im.width, im.height) == (6, 12)
    classes.add_category(ws, project, Category(name="x"))
    square = (1.0, 1.0, 4.0, 1.0, 4.0, 4.0, 1.0, 4.0)
    annotate.save_image(ws, project, im.id, [Instance(category="x", polygons=(square,))], expected_version=1)
    export.export_coco(ws, project, tmp_path / "out", copy_images=True)
    if via == "coco":
        report = imports.import_coco(ws, project, tmp_path / "out")
    else:
        report = imports.import_images(ws, project, [tmp_path / "out" / "images"])
    assert report.imported == [] and len(report.duplicates) == 1
    info = projects.get_project(ws, project)
    assert (info.num_images, info.num_annotations) == (1, 1)


SUB_PIXEL = [10.1, 5.1, 10.6, 5.2, 10.3, 5.7]  # a valid triangle inside pixel (10, 5)

BOX = [1, 1, 6, 1, 6, 6, 1, 6]


def _coco(*images: tuple[int, str, int, int], anns: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in images],
        "annotations": list(anns),
        "categories": [{"id": 1, "name": "a"}],
    }


def _ann(aid: int, image_id: int, polygon: list[float]) -> dict[str, Any]:
    return {"id": aid, "image_id": image_id, "category_id": 1, "segmentation": [polygon], "iscrowd": 0}


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_import_skips_a_shape_covering_no_pixel_with_a_warning(
    ws,
    project,
    tmp_path: Path,
    fmt: str,  # noqa: ANN001
) -> None:
    write_image(tmp_path / "d" / "p.png", 16, 12, seed=1)
    if fmt == "coco":
        src = tmp_path / "d" / "ann.json"
        src.write_text(json.dumps(_coco((1, "p.png", 16, 12), anns=[_ann(5, 1, SUB_PIXEL), _ann(6, 1, BOX)])))
        report = imports.import_coco(ws, project, src)
        assert any(str(src) in w and "cover no pixel" in w and "5 (p.png)" in w for w in report.warnings)
    else:
        src = tmp_path / "d" / "p.json"
        shapes = [
            {"label": "a", "points": [SUB_PIXEL[i : i + 2] for i in (0, 2, 4)], "shape_type": "polygon"},
            {"label": "a", "points": [BOX[i : i + 2] for i in (0, 2, 4, 6)], "shape_type": "polygon"},
        ]
        src.write_text(
            json.dumps({"shapes": shapes, "imagePath": "p.png", "imageWidth": 16, "imageHeight": 12})
        )
        report = imports.import_labelme(ws, project, src)
        assert any(f"{src}: shape 0 ('a'): polygon covers no pixel" in w for w in report.warnings)
    assert report.imported == ["p.png"] and report.annotations == 1
    (im,) = annotate.list_images(ws, project)
    (inst,) = annotate.load_image(ws, project, im.id).instances
    assert inst.area == 25.0
    assert projects.get_project(ws, project).num_annotations == 1


def _datumaro(root: Path, splits: dict[str, dict[str, Any] | str], task: str = "instances") -> Path:
    """``root/annotations/<task>_<split>.json`` (a dict, or raw text) with images in root/images/<split>."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, obj in splits.items():
        text = obj if isinstance(obj, str) else json.dumps(obj)
        (root / "annotations" / f"{task}_{split}.json").write_text(text)
        if not isinstance(obj, str):
            for im in obj["images"]:
                write_image(
                    root / "images" / split / im["file_name"], im["width"], im["height"], seed=im["id"]
                )
    return root


def _store_state(ws, slug: str) -> tuple:  # noqa: ANN001
    from workbench.services import classes

    info = projects.get_project(ws, slug)
    return (info.num_images, info.num_annotations, [c.name for c in classes.list_categories(ws, slug)])


GOOD_TRAIN = _coco((1, "t1.png", 16, 12), (2, "t2.png", 16, 12), anns=[_ann(1, 1, BOX), _ann(2, 2, BOX)])


@pytest.mark.parametrize(
    "bad_val",
    [
        "{not json",  # refused while reading
        _coco((3, "v.png", 16, 12), anns=[{**_ann(1, 3, BOX), "category_id": 9}]),  # refused while parsing
    ],
    ids=["bad-json", "unknown-category"],
)
def test_coco_folder_with_a_bad_second_file_imports_nothing(
    ws,
    project,
    tmp_path: Path,
    bad_val: Any,  # noqa: ANN001
) -> None:
    root = _datumaro(tmp_path / "set", {"train": GOOD_TRAIN, "val": bad_val})
    before, media_before = _store_state(ws, project), media_files(ws, project)
    with pytest.raises(ValidationError, match="instances_val.json"):
        imports.import_coco(ws, project, root)
    assert _store_state(ws, project) == before
    assert media_files(ws, project) == media_before == []


def test_coco_folder_refused_at_the_row_stage_leaves_no_rows_and_no_files(
    ws,
    project,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    """Both files parse, but they give class 'a' different keypoints: only the transaction can tell."""
    train = {**GOOD_TRAIN, "categories": [{"id": 1, "name": "a", "keypoints": ["p", "q"], "skeleton": []}]}
    val = _coco((3, "v.png", 16, 12), anns=[_ann(1, 3, BOX)])
    val["categories"] = [{"id": 1, "name": "a", "keypoints": ["x", "y", "z"], "skeleton": []}]
    root = _datumaro(tmp_path / "set", {"train": train, "val": val})
    with pytest.raises(ValidationError, match="keypoints"):
        imports.import_coco(ws, project, root)
    assert _store_state(ws, project) == (0, 0, [])
    assert media_files(ws, project) == []


def test_coco_folder_imports_every_split_in_one_go(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    val = _coco((3, "v.png", 16, 12), anns=[_ann(1, 3, BOX)])
    root = _datumaro(tmp_path / "set", {"train": GOOD_TRAIN, "val": val})
    report = imports.import_coco(ws, project, root)
    assert sorted(report.imported) == ["t1.png", "t2.png", "v.png"] and report.annotations == 3
    assert projects.get_project(ws, project).split_counts == {"train": 2, "val": 1}
    assert len(media_files(ws, project)) == 9  # image, thumbnail, display copy of each


def test_keypoints_file_of_a_split_annotates_images_its_instances_file_left_empty(
    ws,
    project,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    """instances_train.json adds the images; person_keypoints_train.json (same images) brings their
    annotations within the same import: they join the new images rather than being dropped."""
    root = tmp_path / "set"
    _datumaro(root, {"train": _coco((1, "t1.png", 16, 12))})
    kp = _coco((1, "t1.png", 16, 12), anns=[_ann(4, 1, BOX)])
    kp["categories"] = [{"id": 1, "name": "a", "keypoints": ["p"], "skeleton": []}]
    kp["annotations"][0]["keypoints"] = [2, 2, 2]
    _datumaro(root, {"train": kp}, task="person_keypoints")
    report = imports.import_coco(ws, project, root)
    assert report.imported == ["t1.png"] and report.annotations == 1
    (im,) = annotate.list_images(ws, project)
    assert im.status == "done"
    (inst,) = annotate.load_image(ws, project, im.id).instances
    assert inst.keypoints == (2.0, 2.0, 2)


def _two_same_named(ws, slug: str, tmp_path: Path, second_size_wh: tuple[int, int]) -> list:  # noqa: ANN001
    """Two different project images both named same.png (imported from two folders)."""
    a = write_image(tmp_path / "a" / "same.png", 16, 12, seed=1)
    b = write_image(tmp_path / "b" / "same.png", *second_size_wh, seed=2)
    imports.import_images(ws, slug, [a])
    imports.import_images(ws, slug, [b])
    ims = annotate.list_images(ws, slug)
    assert [im.file_name for im in ims] == ["same.png", "same.png"]
    return ims


def test_coco_by_name_refuses_a_name_shared_by_two_project_images(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    """Matching by file name alone could put the annotations on either image: the import refuses instead."""
    _two_same_named(ws, project, tmp_path, (16, 12))
    ann = tmp_path / "ann" / "coco.json"  # no image files beside it: matched by file name
    ann.parent.mkdir()
    ann.write_text(json.dumps(_coco((1, "same.png", 16, 12), anns=[_ann(1, 1, BOX)])))
    with pytest.raises(ValidationError) as err:
        imports.import_coco(ws, project, ann)
    text = str(err.value)
    assert text.startswith(f"{ann}: image 'same.png' (16x12) matches 2 project images")
    assert "cannot be matched by name" in text
    assert projects.get_project(ws, project).num_annotations == 0
    # without annotations there is nothing to place: no error
    ann.write_text(json.dumps(_coco((1, "same.png", 16, 12))))
    assert imports.import_coco(ws, project, ann).annotations == 0


def test_coco_by_name_takes_the_same_named_image_of_the_right_size(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    small, wide = sorted(_two_same_named(ws, project, tmp_path, (20, 10)), key=lambda im: im.width)
    ann = tmp_path / "ann" / "coco.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(_coco((1, "same.png", 20, 10), anns=[_ann(1, 1, BOX)])))
    assert imports.import_coco(ws, project, ann).annotations == 1
    assert annotate.load_image(ws, project, small.id).instances == []
    assert len(annotate.load_image(ws, project, wide.id).instances) == 1
    # a size that fits neither is skipped, naming both sizes
    ann.write_text(json.dumps(_coco((1, "same.png", 30, 30), anns=[_ann(2, 1, BOX)])))
    (skip,) = imports.import_coco(ws, project, ann).skipped
    assert "the project's images of that name are 16x12, 20x10" in skip.reason
