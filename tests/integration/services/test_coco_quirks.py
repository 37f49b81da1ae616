"""COCO files as other tools write them import without silent changes of meaning (issue 14).

Each test writes a file shaped as that tool writes it (datumaro, FiftyOne, CVAT / supervision, Label
Studio) into a real folder with real PNGs, imports it into a real workspace and reads the store back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.cli import run
from tests.support.images import write_image
from workbench.geometry import mask_to_rle, rle_to_mask
from workbench.services.export import export_coco, project_dataset
from workbench.services.imports import import_coco

W, H = 40, 30


def _image(i: int, name: str | None = None) -> dict[str, Any]:
    return {"id": i, "file_name": name or f"im{i}.png", "width": W, "height": H}


def _write(folder: Path, obj: dict[str, Any], name: str = "coco.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for im in obj["images"]:
        if not (folder / im["file_name"]).exists() and "/" not in im["file_name"]:
            write_image(folder / im["file_name"], W, H, seed=int(im["id"]))
    path = folder / name
    path.write_text(json.dumps(obj))
    return path


def _instances(ws, slug: str) -> list:  # noqa: ANN001
    return [inst for it in project_dataset(ws, slug).items for inst in it.instances]


def _box_poly(x: float, y: float, w: float, h: float) -> list[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def test_datumaro_ids_restarting_per_image_are_all_imported_renumbered(ws, project: str, tmp_path: Path) -> None:  # noqa: ANN001
    # datumaro without reindex=True: annotation ids count from 1 on every image
    anns = [
        {"id": n + 1, "image_id": i, "category_id": 1, "segmentation": [_box_poly(2 + 8 * n, 3, 6, 5)],
         "area": 30.0, "bbox": [2 + 8 * n, 3, 6, 5], "iscrowd": 0, "attributes": {"occluded": False}}
        for i in (1, 2) for n in range(3)
    ]
    obj = {"images": [_image(1), _image(2)], "categories": [{"id": 1, "name": "car", "supercategory": ""}],
           "annotations": anns, "licenses": [], "info": {}}
    report = import_coco(ws, project, _write(tmp_path / "dm", obj))

    assert report.annotations == 6 and len(_instances(ws, project)) == 6
    note = [w for w in report.warnings if "reuse an id" in w]
    assert len(note) == 1 and "3 annotation(s)" in note[0] and "renumbered from 4" in note[0]


def test_fiftyone_zero_area_polygon_part_is_dropped_not_the_file(ws, project: str, tmp_path: Path) -> None:  # noqa: ANN001
    # FiftyOne's mask-to-polygon export keeps contours of 3+ points even when they lie on one line
    flat = [10.0, 10.0, 14.0, 10.0, 20.0, 10.0]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [_box_poly(2, 2, 8, 8), flat],
         "area": 64.0, "bbox": [2, 2, 18, 8], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [flat], "area": 0.0, "bbox": [10, 10, 10, 0],
         "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 1, "segmentation": [_box_poly(25, 5, 10, 10)], "area": 100.0,
         "bbox": [25, 5, 10, 10], "iscrowd": 0},
    ]
    obj = {"images": [_image(1)], "categories": [{"id": 1, "name": "leaf", "supercategory": "leaf"}],
           "annotations": anns}
    report = import_coco(ws, project, _write(tmp_path / "fo", obj))

    insts = sorted(_instances(ws, project), key=lambda i: i.bbox_xywh[0])
    assert [len(i.polygons) for i in insts] == [1, 1]  # the flat part left out; the flat-only one skipped
    assert insts[0].polygons[0] == tuple(_box_poly(2, 2, 8, 8))
    assert any("zero area" in w and "other parts were kept: 1" in w for w in report.warnings), report.warnings
    assert any("only polygon parts of zero area" in w and ": 2" in w for w in report.warnings), report.warnings


def test_fiftyone_category_without_keypoints_key_beside_a_keypoint_category(ws, project: str, tmp_path: Path) -> None:  # noqa: ANN001
    # FiftyOne writes the keypoint names only on classes that have a skeleton, and zeros on the rest
    cats = [{"id": 1, "name": "person", "supercategory": "", "keypoints": ["nose", "tail"], "skeleton": [[1, 2]]},
            {"id": 2, "name": "ball", "supercategory": ""}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100.0, "iscrowd": 0,
         "segmentation": [], "keypoints": [4, 4, 2, 8, 9, 1], "num_keypoints": 2},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 5, 6, 6], "area": 36.0, "iscrowd": 0,
         "segmentation": [], "keypoints": [0, 0, 0, 0, 0, 0], "num_keypoints": 0},
    ]
    obj = {"images": [_image(1)], "categories": cats, "annotations": anns}
    report = import_coco(ws, project, _write(tmp_path / "fo", obj))

    by_class = {i.category: i for i in _instances(ws, project)}
    assert by_class["person"].keypoints == (4.0, 4.0, 2, 8.0, 9.0, 1)
    assert by_class["ball"].keypoints is None
    assert any("read as no keypoints" in w for w in report.warnings)


def test_fiftyone_symlinked_images_are_followed_and_a_run_of_zero_images_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # FiftyOne's export_media="symlink": the dataset folder holds links to the media elsewhere
    media = tmp_path / "media"
    for i in (1, 2):
        write_image(media / f"im{i}.png", W, H, seed=i)
    root = tmp_path / "export"
    (root / "data").mkdir(parents=True)
    for i in (1, 2):
        os.symlink(media / f"im{i}.png", root / "data" / f"im{i}.png")
    obj = {"images": [_image(1, "im1.png"), _image(2, "im2.png")], "categories": [{"id": 1, "name": "a"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25.0}]}
    (root / "labels.json").write_text(json.dumps(obj))
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    capsys.readouterr()

    assert run(ws, "import", "coco", "p", str(root / "labels.json"), "--images-dir", str(root / "data")) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 images imported, 1 annotation") and "2 image(s) are symbolic links" in out, out

    # links that lead to no regular file: every image skipped, the run fails saying so
    bad = tmp_path / "bad"
    bad.mkdir()
    os.symlink(tmp_path / "nowhere.png", bad / "im1.png")
    os.mkfifo(media / "pipe.png")
    os.symlink(media / "pipe.png", bad / "im2.png")
    (bad / "labels.json").write_text(json.dumps(obj))
    assert run(ws, "project", "create", "Q") == 0  # images of other names: none known by name
    capsys.readouterr()
    assert run(ws, "import", "coco", "q", str(bad / "labels.json")) == 1
    captured = capsys.readouterr()
    assert "0 images imported, 2 files skipped" in captured.out
    assert "0 of 2 images imported (symbolic link, not followed)" in captured.err, captured.err
    assert captured.err.count("\n") == 1


def _holed_mask() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[5:25, 5:30] = 1
    m[10:18, 12:20] = 0  # the hole CVAT keeps by writing the mask as RLE, marked crowd
    return m


def test_cvat_masks_all_rle_crowd_warn_and_import_as_instances_when_asked(ws, project: str, tmp_path: Path) -> None:  # noqa: ANN001
    mask = _holed_mask()
    rle = mask_to_rle(mask)
    anns = [{"id": k + 1, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": float(mask.sum()),
             "bbox": [5.0, 5.0, 25.0, 20.0], "segmentation": {"size": [H, W], "counts": rle.counts},
             "attributes": {"occluded": False, "rotation": 0.0}} for k in range(2)]
    obj = {"licenses": [{"name": "", "id": 0, "url": ""}], "info": {"contributor": "", "version": ""},
           "categories": [{"id": 1, "name": "donut", "supercategory": ""}], "images": [_image(1)],
           "annotations": anns}
    path = _write(tmp_path / "cvat", obj)
    report = import_coco(ws, project, path, split="train")
    assert all(i.iscrowd for i in _instances(ws, project))
    note = [w for w in report.warnings if "iscrowd=1" in w]
    assert len(note) == 1 and "every mask (2)" in note[0] and "--crowd-as-instances" in note[0]
    from workbench.services.training import crowd_only_warnings, training_splits

    (warning,) = crowd_only_warnings(*training_splits(ws, project))
    assert "train split has 2 annotations and all are crowd regions" in warning

    from workbench.services.projects import create_project

    other = create_project(ws, "other").slug
    report = import_coco(ws, other, path, crowd_as_instances=True)
    insts = _instances(ws, other)
    assert len(insts) == 2 and not any(i.iscrowd for i in insts)
    assert crowd_only_warnings(*training_splits(ws, other)) == []
    assert np.array_equal(rle_to_mask(insts[0].rle), mask)  # the hole kept
    assert any("2 RLE mask(s) marked iscrowd=1 imported as ordinary instances" in w for w in report.warnings)


def test_label_studio_upload_paths_fall_back_to_the_base_name(ws, project: str, tmp_path: Path) -> None:  # noqa: ANN001
    # Label Studio's COCO export: file_name relative to its own media folder
    root = tmp_path / "ls"
    write_image(root / "images" / "3f2a1b9c-dog.png", W, H, seed=1)
    obj = {"images": [_image(0, "../../label-studio/media/upload/1/3f2a1b9c-dog.png")],
           "categories": [{"id": 0, "name": "dog"}],
           "annotations": [{"id": 0, "image_id": 0, "category_id": 0, "segmentation": [], "bbox": [1, 1, 9, 9],
                            "ignore": 0, "iscrowd": 0, "area": 81.0}],
           "info": {"year": 2024, "version": "1.0", "contributor": "Label Studio"}}
    (root / "result.json").write_text(json.dumps(obj))
    report = import_coco(ws, project, root / "result.json")

    assert len(report.imported) == 1 and report.annotations == 1
    assert any("Label Studio upload paths" in w and "base name" in w for w in report.warnings), report.warnings
    # a name that only climbs out (no upload path) is still refused, never looked for by base name
    write_image(root / "images" / "cat.png", W, H, seed=2)
    obj["images"] = [_image(0, "../../cat.png")]
    (root / "climb.json").write_text(json.dumps(obj))
    report = import_coco(ws, project, root / "climb.json")
    assert not report.imported and "leads outside the folder" in report.skipped[0].reason


def test_export_writes_person_keypoints_and_box_only_polygons_that_pycocotools_reads(
    ws, project: str, tmp_path: Path  # noqa: ANN001
) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    cats = [{"id": 1, "name": "person", "keypoints": ["a", "b"], "skeleton": [[1, 2]]}, {"id": 2, "name": "box"}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [_box_poly(2, 2, 10, 10)], "bbox": [2, 2, 10, 10],
         "area": 100.0, "keypoints": [4, 4, 2, 8, 8, 2], "num_keypoints": 2},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": [], "bbox": [20, 4, 8, 6], "area": 48.0},
    ]
    obj = {"images": [_image(1)], "categories": cats, "annotations": anns}
    import_coco(ws, project, _write(tmp_path / "src", obj), split="train")
    out = tmp_path / "out"
    paths = export_coco(ws, project, out, box_only_as_polygon=True, copy_images=True)
    assert [p.name for p in paths] == ["instances_train.json"]  # the keypoints twin lies beside it
    assert sorted(p.name for p in (out / "annotations").iterdir()) == [
        "instances_train.json", "person_keypoints_train.json"
    ]

    inst = json.loads((out / "annotations" / "instances_train.json").read_text())
    kp = json.loads((out / "annotations" / "person_keypoints_train.json").read_text())
    assert [c["name"] for c in kp["categories"]] == ["person"]
    person_id = next(c["id"] for c in inst["categories"] if c["name"] == "person")
    assert kp["categories"][0]["id"] == person_id and len(kp["annotations"]) == 1
    box = next(a for a in inst["annotations"] if "keypoints" not in a)
    assert box["num_keypoints"] == 0 and box["segmentation"] == [_box_poly(20, 4, 8, 6)]
    coco = COCO(str(out / "annotations" / "instances_train.json"))
    assert int(coco.annToMask(coco.loadAnns([box["id"]])[0]).sum()) == 48

    # the export folder imports back once: the keypoints are not read twice from the twin file
    from workbench.services.projects import create_project

    again = create_project(ws, "again").slug
    report = import_coco(ws, again, out)
    assert report.annotations == 2 and not report.keypoints_attached
    assert any("not read twice" in w for w in report.warnings)
