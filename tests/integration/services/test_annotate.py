"""Projects, classes, saving with optimistic concurrency, splits and stats through the services."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.factories import add_images
from tests.support.images import write_image
from workbench.domain import (
    Category,
    ConflictError,
    Instance,
    KeypointSchema,
    ValidationError,
)
from workbench.services import annotate, classes, export, imports

SQUARE = (2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0)


def test_save_load_and_bbox_area_are_computed(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project)[0]
    loaded = annotate.load_image(ws, project, im.id)
    assert loaded.instances == [] and im.status == "unlabeled"
    v = annotate.save_image(
        ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))], expected_version=loaded.version
    ).version
    again = annotate.load_image(ws, project, im.id)
    assert again.version == v == loaded.version + 1
    (inst,) = again.instances
    assert inst.bbox_xywh == (2.0, 2.0, 10.0, 10.0) and inst.area == 100.0
    assert again.image.status == "in_progress"


def test_stale_save_is_refused_and_nothing_is_overwritten(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project)[0]
    v0 = annotate.load_image(ws, project, im.id).version
    annotate.save_image(
        ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))], expected_version=v0
    )
    with pytest.raises(ConflictError, match="saved elsewhere"):
        annotate.save_image(ws, project, im.id, [], expected_version=v0)
    assert len(annotate.load_image(ws, project, im.id).instances) == 1


def test_concurrent_saves_only_one_wins(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project)[0]
    v0 = annotate.load_image(ws, project, im.id).version
    results: list[str] = []

    def save(k: int) -> None:
        try:
            shifted = tuple(c + k for c in SQUARE)
            annotate.save_image(
                ws, project, im.id, [Instance(category="box", polygons=(shifted,))], expected_version=v0
            )
            results.append("ok")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=save, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 3 + ["ok"]
    assert annotate.load_image(ws, project, im.id).version == v0 + 1


def test_unknown_class_in_save_rolls_back(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project)[0]
    v0 = annotate.load_image(ws, project, im.id).version
    with pytest.raises(ValidationError, match="unknown class 'cat'"):
        annotate.save_image(
            ws,
            project,
            im.id,
            [Instance(category="box", polygons=(SQUARE,)), Instance(category="cat", polygons=(SQUARE,))],
            expected_version=v0,
        )
    after = annotate.load_image(ws, project, im.id)
    assert after.version == v0 and after.instances == []


def test_delete_image_removes_row_and_files(ws, project) -> None:  # noqa: ANN001
    im = add_images(ws, project)[0]
    stored = ws.project_dir(project) / im.path
    thumb = annotate.image_file(ws, project, im.id, "thumb")
    annotate.delete_image(ws, project, im.id)
    assert not stored.exists() and not thumb.exists()
    assert len(annotate.list_images(ws, project)) == 1


def test_saved_polygons_are_clipped_to_the_image(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project)[0]  # 40 x 30
    over = (30.0, 20.0, 60.0, 20.0, 60.0, 50.0, 30.0, 50.0)
    annotate.save_image(ws, project, im.id, [Instance(category="box", polygons=(over,))], expected_version=1)
    (inst,) = annotate.load_image(ws, project, im.id).instances
    xs, ys = inst.polygons[0][0::2], inst.polygons[0][1::2]
    assert max(xs) == 40.0 and max(ys) == 30.0
    assert inst.bbox_xywh == (30.0, 20.0, 10.0, 10.0) and inst.area == 100.0
    outside = (50.0, 40.0, 60.0, 40.0, 60.0, 50.0)
    with pytest.raises(ValidationError, match="outside the image"):
        annotate.save_image(ws, project, im.id, [Instance(category="box", polygons=(outside,))], expected_version=2)


UNIT_SQUARE = (1.0, 1.0, 6.0, 1.0, 6.0, 6.0, 1.0, 6.0)


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
    bad = Instance(category=category, polygons=(UNIT_SQUARE,), keypoints=keypoints)
    with pytest.raises(ValidationError, match=message):
        annotate.save_image(ws, project, im.id, [bad], expected_version=version)
    loaded = annotate.load_image(ws, project, im.id)
    assert loaded.version == version and loaded.instances == []
    good = Instance(category="k", polygons=(UNIT_SQUARE,), keypoints=(1.0, 1.0, 2, 0.0, 0.0, 0, 3.0, 3.0, 1))
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
    good = Instance(category="n", polygons=(UNIT_SQUARE,))
    with pytest.raises(ValidationError, match=message):
        annotate.save_image(
            ws, project, im.id, [good, Instance(category="n", **shape)], expected_version=version
        )
    loaded = annotate.load_image(ws, project, im.id)
    assert loaded.version == version and loaded.instances == []
    annotate.save_image(ws, project, im.id, [good], expected_version=version)
    (saved,) = annotate.load_image(ws, project, im.id).instances
    assert saved.area == 25.0
