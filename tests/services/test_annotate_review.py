"""Saving annotations whose keypoints do not fit their class (review of the backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.images import write_image
from workbench.domain import Category, Instance, KeypointSchema, ValidationError
from workbench.services import annotate, classes, export, imports

SQUARE = (1.0, 1.0, 6.0, 1.0, 6.0, 6.0, 1.0, 6.0)


@pytest.mark.parametrize(
    ("category", "keypoints", "message"),
    [
        ("k", (1.0, 1.0, 2, 2.0, 2.0, 2), "class 'k' has 3 keypoints"),
        ("n", (1.0, 1.0, 2), "class 'n' has no keypoints"),
    ],
)
def test_save_refuses_keypoints_that_do_not_fit_the_class(
    ws, project, tmp_path: Path, category: str, keypoints: tuple, message: str  # noqa: ANN001
) -> None:
    """Otherwise the COCO export writes keypoints of the wrong length (or silently drops them)."""
    classes.add_category(ws, project, Category(name="k", keypoints=KeypointSchema(("a", "b", "c"))))
    classes.add_category(ws, project, Category(name="n"))
    write_image(tmp_path / "p.png", 16, 16, seed=7)
    imports.import_images(ws, project, [tmp_path / "p.png"])
    (im,) = annotate.list_images(ws, project)
    version = annotate.load_image(ws, project, im.id).version
    bad = Instance(category=category, polygons=(SQUARE,), keypoints=keypoints)
    with pytest.raises(ValidationError, match=message):
        annotate.save_image(ws, project, im.id, [bad], expected_version=version)
    loaded = annotate.load_image(ws, project, im.id)
    assert loaded.version == version and loaded.instances == []
    good = Instance(category="k", polygons=(SQUARE,), keypoints=(1.0, 1.0, 2, 0.0, 0.0, 0, 3.0, 3.0, 1))
    annotate.save_image(ws, project, im.id, [good], expected_version=version)
    (path,) = export.export_coco(ws, project, tmp_path / "out")
    import json

    (ann,) = json.loads(path.read_text())["annotations"]
    assert len(ann["keypoints"]) == 9 and ann["num_keypoints"] == 2


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            {"polygons": ((10.1, 10.1, 10.6, 10.2, 10.3, 10.7),)},
            r"image p\.png: polygon covers no pixel \(class 'n', near \(10\.1, 10\.1\)\)",
        ),
        ({"polygons": ((0.6, 0.6, 14.6, 14.4, 14.6, 14.6),)}, r"image p\.png: polygon covers no pixel"),
    ],
    ids=["sub-pixel", "sliver"],
)
def test_save_refuses_a_shape_that_covers_no_pixel(
    ws, project, tmp_path: Path, shape: dict, message: str  # noqa: ANN001
) -> None:
    """Stored, it would be an invisible instance of area 0 (an empty mask for training and COCOeval)."""
    classes.add_category(ws, project, Category(name="n"))
    write_image(tmp_path / "p.png", 16, 16, seed=7)
    imports.import_images(ws, project, [tmp_path / "p.png"])
    (im,) = annotate.list_images(ws, project)
    version = annotate.load_image(ws, project, im.id).version
    good = Instance(category="n", polygons=(SQUARE,))
    with pytest.raises(ValidationError, match=message):
        annotate.save_image(
            ws, project, im.id, [good, Instance(category="n", **shape)], expected_version=version
        )
    loaded = annotate.load_image(ws, project, im.id)
    assert loaded.version == version and loaded.instances == []
    annotate.save_image(ws, project, im.id, [good], expected_version=version)
    (saved,) = annotate.load_image(ws, project, im.id).instances
    assert saved.area == 25.0
