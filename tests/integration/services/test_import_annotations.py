"""COCO's two files of one object (instances_*.json, then person_keypoints_*.json with keypoints):
the second file's keypoints join the stored annotation of the same class and box."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.services import annotate, imports


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
