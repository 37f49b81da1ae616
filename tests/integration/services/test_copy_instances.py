"""services.annotate.copy_instances_to: the annotator's "propagate" adds copies to another image."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.images import png_bytes
from workbench.domain import Category, Instance, KeypointSchema, ValidationError
from workbench.geometry import mask_to_rle, rle_to_mask
from workbench.images.decode import ImageSource
from workbench.services import annotate, classes, imports


def _two_images(ws, project, sizes):  # noqa: ANN001, ANN202
    srcs = [
        ImageSource(name=f"c{i}.png", data=png_bytes(size, (40 * i, 90, 120))) for i, size in enumerate(sizes)
    ]
    imports.import_images(ws, project, srcs)
    classes.add_category(ws, project, Category(name="box"))
    classes.add_category(ws, project, Category(name="pin", keypoints=KeypointSchema(names=("tip", "base"))))
    return annotate.list_images(ws, project)


def test_copies_are_new_rows_after_the_targets_own_shapes(ws, project) -> None:  # noqa: ANN001
    a, b = _two_images(ws, project, [(40, 30), (40, 30)])
    tri = Instance("box", polygons=((2.0, 2.0, 20.0, 2.0, 10.0, 20.0),), z_order=3, attributes={"note": "x"})
    src = annotate.save_image(ws, project, a.id, [tri], expected_version=1).instances
    own = annotate.save_image(
        ws,
        project,
        b.id,
        [Instance("box", polygons=((30.0, 20.0, 39.0, 20.0, 35.0, 29.0),))],
        expected_version=1,
    ).instances
    saved = annotate.copy_instances_to(ws, project, b.id, src)
    got = annotate.load_image(ws, project, b.id)
    assert got.version == saved.version == 3
    assert [i.id for i in got.instances] == [own[0].id, *saved.ids]
    copy = got.instances[1]
    assert copy.id not in (src[0].id, own[0].id) and copy.version == 1
    assert copy.polygons == tri.polygons and copy.z_order == 3 and copy.attributes == {"note": "x"}
    assert copy.area == src[0].area and copy.bbox_xywh == src[0].bbox_xywh
    assert got.image.status == "in_progress"
    assert annotate.load_image(ws, project, a.id).instances == src  # the source image is untouched


def test_copies_are_cut_to_a_smaller_image(ws, project) -> None:  # noqa: ANN001
    a, b = _two_images(ws, project, [(40, 30), (20, 10)])
    mask = np.zeros((30, 40), np.uint8)
    mask[5:25, 15:35] = 1
    insts = [
        Instance("box", polygons=((0.0, 0.0, 30.0, 0.0, 30.0, 20.0, 0.0, 20.0),)),
        Instance("box", rle=mask_to_rle(mask)),
        Instance("pin", keypoints=(5.0, 5.0, 2, 35.0, 25.0, 2)),
        Instance("box", polygons=((25.0, 15.0, 39.0, 15.0, 39.0, 29.0),)),  # wholly outside: skipped
    ]
    src = annotate.save_image(ws, project, a.id, insts, expected_version=1).instances
    saved = annotate.copy_instances_to(ws, project, b.id, src)
    assert len(saved.ids) == 3
    poly, rle, pin = annotate.load_image(ws, project, b.id).instances
    assert poly.bbox_xywh == (0.0, 0.0, 20.0, 10.0)
    assert rle.rle is not None and tuple(rle.rle.size_hw) == (10, 20)
    want = np.zeros((10, 20), np.uint8)
    want[5:10, 15:20] = 1
    assert np.array_equal(rle_to_mask(rle.rle), want) and rle.area == 25
    assert pin.keypoints == (5.0, 5.0, 2, 0.0, 0.0, 0)  # the keypoint off the image is not there


def test_a_copy_of_an_unknown_class_is_refused_and_nothing_is_saved(ws, project) -> None:  # noqa: ANN001
    a, b = _two_images(ws, project, [(40, 30), (40, 30)])
    with pytest.raises(ValidationError, match="unknown class"):
        annotate.copy_instances_to(
            ws, project, b.id, [Instance("bird", polygons=((1.0, 1.0, 9.0, 1.0, 5.0, 9.0),))]
        )
    assert annotate.load_image(ws, project, b.id).version == 1
