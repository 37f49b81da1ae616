"""Import edge cases found by driving the CLI like a CVAT / Roboflow user (review of the backend)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_image
from workbench.domain import Category, KeypointSchema, ValidationError
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
