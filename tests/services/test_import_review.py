"""Import edge cases found by driving the CLI like a CVAT / Roboflow user (review of the backend)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.images import write_image
from workbench.domain import Category, Instance, KeypointSchema, ValidationError
from workbench.services import classes, imports, projects


def _files(ws, slug: str) -> list[Path]:  # noqa: ANN001
    return sorted(
        p for sub in ("images", "thumbs", "display") for p in (ws.project_dir(slug) / sub).rglob("*") if p.is_file()
    )


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
    assert _files(ws, project) == []


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
