"""Pascal VOC: XML objects (boxes, difficult/truncated/occluded, datumaro's attributes), the class and
object palette PNGs, bad input in one line, and the export read back to the same masks and attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.images import write_image
from workbench.domain import (
    IGNORE_LABEL,
    AnnotatedImage,
    AttributeDef,
    Category,
    Dataset,
    ImageRecord,
    Instance,
)
from workbench.formats.labelmaps import palette
from workbench.formats.voc import VocFormatError, dataset_to_voc, load_voc, save_index_png
from workbench.geometry import instance_to_mask, mask_to_rle

XML = """<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = """<object><name>{cls}</name><pose>{pose}</pose><truncated>{t}</truncated><difficult>{d}</difficult>{extra}
<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"""


def _obj(cls: str, box: tuple, *, t: int = 0, d: int = 0, pose: str = "Unspecified", extra: str = "") -> str:
    return OBJ.format(cls=cls, pose=pose, t=t, d=d, extra=extra, x0=box[0], y0=box[1], x1=box[2], y1=box[3])


def _voc(root: Path, stem: str, objects: list[str], size: tuple[int, int] = (30, 20)) -> Path:
    write_image(root / "JPEGImages" / f"{stem}.jpg", *size)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{stem}.xml").write_text(
        XML.format(name=f"{stem}.jpg", w=size[0], h=size[1], objects="\n".join(objects))
    )
    return root


@pytest.mark.parametrize(
    ("obj", "box", "attributes"),
    [
        (_obj("cat", (1, 1, 10, 5)), (0, 0, 10, 5), {}),
        (_obj("cat", (3, 4, 3, 4), t=1), (2, 3, 1, 1), {"truncated": True}),
        (_obj("dog", (5.5, 2, 20.5, 12), d=1, pose="Left"), (4.5, 1, 16, 11), {"difficult": True, "pose": "Left"}),
        (_obj("dog", (1, 1, 30, 20), extra="<occluded>1</occluded>"), (0, 0, 30, 20), {"occluded": True}),
        (_obj("cat", (1, 1, 2, 2), extra="<attributes><attribute><name>colour</name><value>red</value></attribute>"
              "<attribute><name>age</name><value>3</value></attribute><attribute><name>wild</name><value>false"
              "</value></attribute></attributes>"), (0, 0, 2, 2), {"colour": "red", "age": 3, "wild": False}),
    ],
)
def test_xml_objects_become_boxes_with_their_attributes(tmp_path: Path, obj: str, box: tuple, attributes: dict) -> None:
    ds = load_voc(_voc(tmp_path / "voc", "a", [obj]))
    (inst,) = ds.items[0].instances
    assert inst.bbox_xywh == pytest.approx(box) and inst.attributes == attributes and not inst.has_shape
    assert ds.categories[0].attributes == (AttributeDef("difficult"),)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<annotation><object><name>a</name><bndbox><xmin>x</xmin></bndbox></object></annotation>", "<xmin> must be a number"),
        ("<annotation><object><bndbox/></object></annotation>", "object 1: <name> is missing"),
        ("<annotation><object><name>a</name><bndbox><xmin>9</xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax>"
         "</bndbox></object></annotation>", "bndbox max is below min"),
        ("<annotation><object>", "not valid XML"),
        ("<coco/>", "not a VOC annotation"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><annotation/>', "document type declaration"),
    ],
)
def test_bad_xml_is_refused_naming_the_file(tmp_path: Path, xml: str, message: str) -> None:
    root = _voc(tmp_path / "voc", "a", [])
    (root / "Annotations" / "a.xml").write_text(xml)
    with pytest.raises(VocFormatError) as exc:
        load_voc(root)
    assert str(exc.value).startswith(str(root / "Annotations" / "a.xml")) and message in str(exc.value)
    assert "\n" not in str(exc.value)


def _png(path: Path, arr: np.ndarray, *, rgb: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rgb:
        pal = np.asarray(palette(), dtype=np.uint8).reshape(256, 3)
        Image.fromarray(pal[arr]).save(path)
    else:
        save_index_png(arr.astype(np.uint8), path)


@pytest.mark.parametrize("rgb", [False, True], ids=["palette", "rgb-colours"])
def test_object_map_gives_masks_and_class_map_the_classes(tmp_path: Path, rgb: bool) -> None:
    root = _voc(tmp_path / "voc", "a", [_obj("cat", (2, 2, 8, 8))])
    cls = np.zeros((20, 30), dtype=np.uint8)
    obj = np.zeros_like(cls)
    obj[1:8, 1:8], cls[1:8, 1:8] = 1, 8  # the XML's object (VOC class 8 is cat)
    obj[3:6, 3:5], cls[3:6, 3:5] = 0, 0  # a hole in it
    obj[10:15, 20:28], cls[10:15, 20:28] = 2, 12  # an object the XML does not list: a dog by the class map
    obj[0, :], cls[0, :] = 255, 255  # void
    _png(root / "SegmentationClass" / "a.png", cls, rgb=rgb)
    _png(root / "SegmentationObject" / "a.png", obj, rgb=rgb)
    ds = load_voc(root)
    cat, dog, void = ds.items[0].instances
    assert (cat.category, dog.category, void.category) == ("cat", "dog", IGNORE_LABEL)
    np.testing.assert_array_equal(instance_to_mask(cat, (30, 20)), (obj == 1).astype(np.uint8))
    np.testing.assert_array_equal(instance_to_mask(dog, (30, 20)), (obj == 2).astype(np.uint8))
    assert void.area == 30 and cat.bbox_xywh == (1, 1, 7, 7)


def test_class_map_alone_gives_connected_components_and_labelmap_names(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    write_image(root / "JPEGImages" / "a.png", 30, 20)
    (root / "labelmap.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\nleaf:128,0,0::\nbug:0,128,0::\n")
    cls = np.zeros((20, 30), dtype=np.uint8)
    cls[1:5, 1:5] = 1
    cls[10:15, 10:15] = 1
    cls[2:4, 20:25] = 2
    _png(root / "SegmentationClass" / "a.png", cls)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("a\n")
    ds = load_voc(root)
    assert [i.category for i in ds.items[0].instances] == ["leaf", "leaf", "bug"]
    assert [c.name for c in ds.categories] == ["leaf", "bug"] and ds.items[0].image.split == "val"


def test_a_mask_of_another_size_is_refused(tmp_path: Path) -> None:
    root = _voc(tmp_path / "voc", "a", [_obj("cat", (1, 1, 5, 5))])
    _png(root / "SegmentationObject" / "a.png", np.ones((10, 10), dtype=np.uint8))
    with pytest.raises(VocFormatError, match=r"SegmentationObject/a.png: is 10x10, the image is 30x20"):
        load_voc(root)


def test_filename_leading_outside_the_folder_is_skipped(tmp_path: Path) -> None:
    root = _voc(tmp_path / "voc", "a", [_obj("cat", (1, 1, 5, 5))])
    write_image(tmp_path / "secret.jpg", 30, 20)
    (root / "Annotations" / "a.xml").write_text(XML.format(name="../../secret.jpg", w=30, h=20, objects=""))
    ds = load_voc(root)
    assert ds.items == [] and "leads outside the folder" in ds.skipped[0][1]


# ------------------------------------------------------------------ export -> files -> import


def _dataset() -> Dataset:
    hole = np.zeros((24, 32), dtype=np.uint8)
    hole[2:12, 2:14] = 1
    hole[5:8, 5:9] = 0
    cats = [Category("cat", attributes=(AttributeDef("colour", "select", ("red", "blue")), AttributeDef("age", "number"))),
            Category("dog"), Category(IGNORE_LABEL)]
    item = AnnotatedImage(ImageRecord("photo one.png", 32, 24, split="val", path="images/ab.png"), (
        Instance("cat", rle=mask_to_rle(hole), attributes={"colour": "red", "age": 4, "occluded": True}),
        Instance("dog", polygons=((16.5, 2.5, 30, 3, 28, 20.5, 17, 18),), attributes={"truncated": True, "difficult": True}),
        Instance("dog", polygons=((2, 16, 10, 16, 10, 22),), keypoints=(3, 17, 2)),
        Instance("cat", polygons=((12, 14, 15, 14, 15, 23),), iscrowd=True),
        Instance(IGNORE_LABEL, polygons=((0, 0, 2, 0, 2, 2),)),
    ))
    return Dataset(categories=cats, items=[item])


def test_export_reads_back_to_the_same_masks_and_attributes(tmp_path: Path) -> None:
    ds = _dataset()
    done = dataset_to_voc(ds)
    root = tmp_path / "voc"
    (f,) = done.files
    assert f.stem == "photo one"
    write_image(root / "JPEGImages" / f"{f.stem}.png", 32, 24)
    (root / "Annotations").mkdir()
    (root / "Annotations" / f"{f.stem}.xml").write_text(f.xml)
    _png(root / "SegmentationClass" / f"{f.stem}.png", f.class_map)
    _png(root / "SegmentationObject" / f"{f.stem}.png", f.object_map)
    (root / "labelmap.txt").write_text(done.labelmap)
    back = load_voc(root)
    got = back.items[0].instances
    src = ds.items[0].instances
    assert [i.category for i in got] == ["cat", "dog", "dog", IGNORE_LABEL]
    for g, s in zip(got[:3], src[:3], strict=True):
        mg, ms = instance_to_mask(g, (32, 24)).astype(bool), instance_to_mask(s, (32, 24)).astype(bool)
        assert (mg & ms).sum() / (mg | ms).sum() >= 0.999
    assert got[0].attributes == {"colour": "red", "age": 4, "occluded": True}
    assert got[1].attributes == {"truncated": True, "difficult": True}
    void = instance_to_mask(got[3], (32, 24)).astype(bool)
    crowd = instance_to_mask(src[3], (32, 24)).astype(bool)
    assert void[crowd].all()  # the crowd region is void, as the ignore region is
    assert set(done.notes) == {
        "1 instance: instance's keypoints left out (VOC has none)",
        "1 instance: crowd region written as void (255), not as an object",
    }
