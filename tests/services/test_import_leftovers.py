"""Import leftovers: invisible shapes, several COCO split files, failed batches, ambiguous names, zips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_image
from workbench.services import annotate, imports, projects

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


def _media(ws, slug: str) -> list[Path]:  # noqa: ANN001
    """Every file under the project's media folders (images, thumbnails, display copies)."""
    root = ws.project_dir(slug)
    return sorted(
        p.relative_to(root)
        for sub in ("images", "thumbs", "display")
        for p in (root / sub).rglob("*")
        if p.is_file()
    )


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
