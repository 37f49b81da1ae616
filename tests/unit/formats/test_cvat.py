"""CVAT for images 1.1 XML: files shaped as CVAT writes them (its format page's example, its server's
mask RLE and skeleton SVG), hostile XML, and records -> XML -> records round trips."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from workbench.domain import (
    AnnotatedImage,
    AttributeDef,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    ValidationError,
)
from workbench.formats.cvat import CvatFormatError, load_cvat, parse_cvat
from workbench.formats.cvat_parts import cvat_rle_to_mask, mask_to_cvat_rle, parse_skeleton_svg, skeleton_svg
from workbench.formats.cvat_write import dataset_to_cvat
from workbench.formats.xmlsafe import parse_xml
from workbench.geometry import instance_to_mask, mask_to_rle, rle_iou

# The <svg> of the skeleton label 's1' in CVAT's XML format page (nodes 1..3, edges 2-3 and 1-2).
DOC_SVG = (
    '&lt;line x1="36.87" y1="47.73" x2="86.87" y2="10.77" stroke="black" data-type="edge" data-node-from="2" '
    'stroke-width="0.5" data-node-to="3"&gt;&lt;/line&gt;&lt;line x1="25.16" y1="22.64" x2="36.87" y2="47.73" '
    'stroke="black" data-type="edge" data-node-from="1" stroke-width="0.5" data-node-to="2"&gt;&lt;/line&gt;'
    + "".join(
        f'&lt;circle r="1.5" stroke="black" fill="#b3b3b3" cx="{10 * i}" cy="{10 * i}" stroke-width="0.1" '
        f'data-type="element node" data-element-id="{i}" data-node-id="{i}" data-label-name="{i}"&gt;&lt;/circle&gt;'
        for i in (1, 2, 3)
    )
)
# The mask of CVAT's format page example: 13 x 15 run lengths starting with background.
DOC_RLE = "3, 5, 7, 7, 5, 9, 3, 11, 2, 11, 2, 12, 1, 12, 1, 26, 1, 12, 1, 12, 2, 11, 3, 9, 5, 7, 7, 5, 3"


def cvat_xml(body: str, labels: str = "") -> bytes:
    """A task export as CVAT writes it: version, meta with labels, then the images."""
    head = '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
    meta = f"  <meta><task><id>4</id><name>t</name><mode>annotation</mode><labels>{labels}</labels></task>"
    return (head + meta + "<dumped>2024-01-01</dumped></meta>\n" + body + "\n</annotations>\n").encode()


def label(name: str, attrs: str = "", kind: str = "any", extra: str = "") -> str:
    return f"<label><name>{name}</name><color>#ff0000</color><type>{kind}</type><attributes>{attrs}</attributes>{extra}</label>"


def parse(xml: bytes) -> Dataset:
    return parse_cvat(parse_xml(xml, "t.xml"), source="t.xml")


def one(xml_shape: str, labels: str = "", size: str = 'width="40" height="30"') -> tuple[Instance, Dataset]:
    ds = parse(cvat_xml(f'<image id="0" name="a.jpg" {size}>{xml_shape}</image>', labels))
    (inst,) = ds.items[0].instances
    return inst, ds


@pytest.mark.parametrize(
    ("shape", "want_polygons", "want_bbox"),
    [
        ('<polygon label="c" occluded="0" points="1.00,1.00;9.00,1.00;9.00,6.00" z_order="0"></polygon>',
         ((1.0, 1.0, 9.0, 1.0, 9.0, 6.0),), (1.0, 1.0, 8.0, 5.0)),
        ('<box label="c" occluded="0" xtl="2.50" ytl="3.00" xbr="12.00" ybr="9.00" z_order="0"></box>',
         (), (2.5, 3.0, 9.5, 6.0)),
        # a box reaching out of the image is clipped to it
        ('<box label="c" occluded="0" xtl="-5" ytl="20" xbr="10" ybr="45" z_order="0"></box>', (), (0.0, 20.0, 10.0, 10.0)),
        # rotated 90 degrees about its centre (15, 10): the 20 x 4 box stands upright, 4 x 20
        ('<box label="c" occluded="0" xtl="5" ytl="8" xbr="25" ybr="12" rotation="90.00" z_order="0"></box>',
         None, (13.0, 0.0, 4.0, 20.0)),
    ],
)  # fmt: skip
def test_shapes_become_instances(shape: str, want_polygons, want_bbox) -> None:  # noqa: ANN001
    inst, _ = one(shape)
    if want_polygons is not None:
        assert inst.polygons == want_polygons
    assert inst.bbox_xywh == pytest.approx(want_bbox)
    assert inst.source == "imported"


def test_ellipse_becomes_a_polygon_of_its_area() -> None:
    inst, _ = one('<ellipse label="c" occluded="0" cx="20" cy="15" rx="10" ry="5" z_order="0"></ellipse>')
    assert len(inst.polygons[0]) == 64
    assert inst.area == pytest.approx(np.pi * 10 * 5, rel=0.05)


def test_cvat_doc_mask_decodes_row_major_inside_its_box() -> None:
    counts = [int(c) for c in DOC_RLE.split(",")]
    crop = cvat_rle_to_mask(counts, 13, 15)
    assert crop.shape == (15, 13) and crop.sum() == sum(counts[1::2])
    assert crop[0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]  # background 3, then 5 set, row by row
    shape = f'<mask label="car" source="manual" occluded="0" rle="{DOC_RLE}" left="20" top="10" width="13" height="15" z_order="0"></mask>'
    inst, _ = one(shape)
    full = instance_to_mask(inst, (40, 30))
    assert np.array_equal(full[10:25, 20:33], crop) and full.sum() == crop.sum()
    assert inst.bbox_xywh == (20.0, 10.0, 13.0, 15.0)


@pytest.mark.parametrize("first_set", [False, True])
def test_mask_rle_both_ways(first_set: bool) -> None:
    rng = np.random.default_rng(3)
    mask = (rng.random((30, 40)) > 0.6).astype(np.uint8)
    mask[0, 0] = first_set
    counts, (left, top, w, h) = mask_to_cvat_rle(mask)
    assert (counts[0] == 0) == bool(mask[top, left])  # a run of background first, 0 when the box starts set
    back = np.zeros_like(mask)
    back[top : top + h, left : left + w] = cvat_rle_to_mask(counts, w, h)
    assert np.array_equal(back, mask)


def test_mask_beyond_the_image_is_clipped_with_a_warning() -> None:
    inst, ds = one('<mask label="c" occluded="0" rle="0, 100" left="35" top="25" width="10" height="10" z_order="0"></mask>')
    assert instance_to_mask(inst, (40, 30)).sum() == 25
    assert any("outside the image" in w for w in ds.warnings)


@pytest.mark.parametrize(
    ("rle", "message"),
    [("3, 5", "covers 8 pixels, its box 13x15 has 195"), ("3, x", "comma-separated integers"), ("3, -5, 197", "negative")],
)
def test_bad_mask_rle_is_one_line_naming_the_shape(rle: str, message: str) -> None:
    with pytest.raises(CvatFormatError, match=message) as exc:
        one(f'<mask label="car" occluded="0" rle="{rle}" left="0" top="0" width="13" height="15" z_order="0"></mask>')
    assert "t.xml: image 'a.jpg': mask 0 ('car')" in str(exc.value) and "\n" not in str(exc.value)


def test_skeleton_from_the_labels_svg_with_visibility() -> None:
    labels = label("s1", kind="skeleton", extra=f"<svg>{DOC_SVG}</svg>") + "".join(
        f"<label><name>{i}</name><type>points</type><attributes></attributes><parent>s1</parent></label>"
        for i in (1, 2, 3)
    )
    shape = """<skeleton label="s1" source="manual" z_order="2">
      <points label="1" occluded="0" source="manual" outside="0" points="4.50,5.00"></points>
      <points label="2" occluded="1" source="manual" outside="0" points="8.00,9.00"></points>
      <points label="3" occluded="0" source="manual" outside="1" points="12.00,13.00"></points>
    </skeleton>"""
    inst, ds = one(shape, labels)
    cat = ds.category("s1")
    assert cat.keypoints == KeypointSchema(("1", "2", "3"), skeleton=((1, 2), (0, 1)))
    assert [c.name for c in ds.categories] == ["s1"]  # sublabels are keypoints, not classes
    assert inst.keypoints == (4.5, 5.0, 2, 8.0, 9.0, 1, 0.0, 0.0, 0)
    assert inst.z_order == 2


def test_skeleton_svg_both_ways_with_awkward_names() -> None:
    names = ('left "eye"', "nose & mouth", "r<ear>")
    schema = parse_skeleton_svg(skeleton_svg(names, ((0, 1), (1, 2))), list(names))
    assert schema.names == names and schema.skeleton == ((0, 1), (1, 2))


def test_points_attributes_occluded_and_group() -> None:
    attrs = (
        "<attribute><name>color</name><mutable>False</mutable><input_type>select</input_type>"
        "<default_value>red</default_value><values>red\nblue</values></attribute>"
        "<attribute><name>parked</name><mutable>False</mutable><input_type>checkbox</input_type>"
        "<default_value>false</default_value><values>false</values></attribute>"
        "<attribute><name>speed</name><mutable>True</mutable><input_type>number</input_type>"
        "<default_value>0</default_value><values>0\n100\n1</values></attribute>"
        "<attribute><name>note</name><mutable>False</mutable><input_type>text</input_type>"
        "<default_value></default_value><values></values></attribute>"
    )
    body = """<image id="0" name="a.jpg" width="40" height="30">
      <polygon label="car" occluded="1" points="1,1;9,1;9,6" z_order="3" group_id="7">
        <attribute name="color">blue</attribute><attribute name="parked">true</attribute>
        <attribute name="speed">42</attribute><attribute name="note">front &amp; back</attribute>
      </polygon>
      <polygon label="car" occluded="0" points="20,20;30,20;30,28" z_order="1" group_id="7"></polygon>
      <points label="wheel" occluded="0" points="1,2;3,4;5,6" z_order="0"></points>
      <polyline label="car" occluded="0" points="0,0;5,5" z_order="0"></polyline>
      <tag label="car" source="manual"></tag>
    </image>"""
    ds = parse(cvat_xml(body, label("car", attrs) + label("wheel", kind="points")))
    car, wheel = ds.items[0].instances
    assert len(car.polygons) == 2 and car.z_order == 3  # one label and group_id: one instance
    assert car.attributes == {"occluded": True, "color": "blue", "parked": True, "speed": 42, "note": "front & back"}
    assert ds.category("car").attributes == (
        AttributeDef("color", "select", ("red", "blue")), AttributeDef("parked"),
        AttributeDef("speed", "number"), AttributeDef("note", "text"),
    )  # fmt: skip
    assert wheel.keypoints == (1.0, 2.0, 2, 3.0, 4.0, 2, 5.0, 6.0, 2)
    assert ds.category("wheel").keypoints.names == ("1", "2", "3")
    assert any("1 polyline" in w for w in ds.warnings) and any("1 tag" in w for w in ds.warnings)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<annotation><object/></annotation>", "not a CVAT XML file (the root element is <annotation>"),
        (b"<annotations><image id='0' name='a.jpg' width='0' height='3'/></annotations>", "width and height must be positive"),
        (b"<annotations><image id='0' name='a.jpg' width='4' height='3'><polygon label='c' points='1,1;2'/></image></annotations>",
         "point '2' is not 'x,y'"),
        (b"<annotations><image id='0' name='a.jpg' width='4' height='3'><box label='c' xtl='nan' ytl='0' xbr='1' ybr='1'/></image></annotations>",
         "xtl='nan' is not a finite number"),
        (b"<annotations><image id='0' name='a.jpg' width='4' height='3'><polygon points='1,1;2,2;3,1'/></image></annotations>", "no label"),
        (b"<annotations><image", "not valid XML"),
    ],
)  # fmt: skip
def test_bad_files_are_one_line(xml: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as exc:
        parse(xml)
    assert str(exc.value).startswith("t.xml") and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "hostile",
    [
        # billion laughs: ten levels of ten entities each
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
        + "]><annotations><version>&lol9;</version></annotations>",
        # an external entity that would read a file of the machine
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotations><version>&x;</version></annotations>',
        '<?xml version="1.0"?><!DOCTYPE annotations SYSTEM "http://example.com/a.dtd"><annotations/>',
    ],
)
def test_hostile_xml_is_refused_before_anything_expands(tmp_path: Path, hostile: str) -> None:
    f = tmp_path / "annotations.xml"
    f.write_text(hostile)
    with pytest.raises(CvatFormatError, match="document type declaration") as exc:
        load_cvat(f)
    assert "passwd" not in str(exc.value) and "root:" not in str(exc.value)


def test_images_found_in_images_folder_or_matched_by_name(tmp_path: Path) -> None:
    from tests.support.images import write_image

    write_image(tmp_path / "images" / "sub" / "a.png", 40, 30)
    body = (
        '<image id="0" name="sub/a.png" width="40" height="30"></image>'
        '<image id="1" name="known.png" width="40" height="30"></image>'
        '<image id="2" name="../../etc/x.png" width="40" height="30"></image>'
    )
    (tmp_path / "annotations.xml").write_bytes(cvat_xml(body))
    ds = load_cvat(tmp_path, known_names={"known.png"})
    assert [(it.image.file_name, it.image.path) for it in ds.items] == [
        ("sub/a.png", str(tmp_path / "images" / "sub" / "a.png")), ("known.png", None),
    ]  # fmt: skip
    assert [name for name, _ in ds.skipped] == ["../../etc/x.png"]
    with pytest.raises(CvatFormatError, match="1 image file.s. missing .* known.png"):
        load_cvat(tmp_path / "annotations.xml")


def _dataset() -> Dataset:
    """Every kind of instance the writer takes: polygons in parts, a mask with a hole, a box, a
    skeleton with hidden and occluded points, single points, attributes and z_order."""
    size = (48, 36)
    ring = np.zeros((size[1], size[0]), dtype=np.uint8)
    ring[5:25, 20:44] = 1
    ring[10:18, 26:36] = 0  # a hole polygons cannot hold
    person = KeypointSchema(("nose", "l eye", "r eye"), skeleton=((0, 1), (0, 2)), flip_pairs=((1, 2),))
    cats = [
        Category("shape", attributes=(AttributeDef("kind", "select", ("a", "b")), AttributeDef("n", "number"))),
        Category("person", keypoints=person),
        Category("dot", keypoints=KeypointSchema(("dot",))),
    ]
    insts = (
        Instance("shape", polygons=((1.5, 1.25, 15.0, 1.0, 15.0, 12.0), (2.0, 20.0, 10.0, 20.0, 10.0, 30.0, 2.0, 30.0)),
                 attributes={"occluded": True, "kind": "b", "n": 2.5, "truncated": True, "note": "x"}, z_order=2),
        Instance("shape", rle=mask_to_rle(ring), z_order=1, attributes={"kind": "a"}),
        Instance("shape", bbox_xywh=(3.0, 4.0, 10.5, 6.25), area=10.5 * 6.25),
        Instance("person", polygons=((20.0, 26.0, 40.0, 26.0, 40.0, 35.0),),
                 keypoints=(25.0, 28.0, 2, 30.0, 27.5, 1, 0.0, 0.0, 0)),
        Instance("person", bbox_xywh=(5.0, 5.0, 10.0, 10.0), area=100.0, keypoints=(6.0, 7.0, 2, 8.0, 9.0, 2, 10.0, 11.0, 1)),
        Instance("dot", bbox_xywh=(11.5, 11.5, 1.0, 1.0), area=1.0, keypoints=(12.0, 12.0, 2)),
    )  # fmt: skip
    items = [
        AnnotatedImage(ImageRecord("a.png", *size, split="train"), insts),
        AnnotatedImage(ImageRecord("dir/b.jpg", 20, 10, split=None), ()),
    ]
    return Dataset(categories=cats, items=items)


def test_round_trip_keeps_masks_keypoints_attributes_and_order() -> None:
    ds = _dataset()
    notes: list[str] = []
    back = parse(dataset_to_cvat(ds, warnings=notes))
    assert [(it.image.file_name, it.image.size_wh, it.image.split) for it in back.items] == [
        ("a.png", (48, 36), "train"), ("dir/b.jpg", (20, 10), None),
    ]  # fmt: skip
    assert [c.name for c in back.categories] == ["shape", "person", "dot"]
    assert back.category("person").keypoints.names == ds.category("person").keypoints.names
    assert back.category("person").keypoints.skeleton == ((0, 1), (0, 2))  # flip pairs: CVAT has none
    assert back.category("shape").attributes[:2] == ds.category("shape").attributes
    size = ds.items[0].image.size_wh
    for a, b in zip(ds.items[0].instances, back.items[0].instances, strict=True):
        assert b.category == a.category and b.z_order == a.z_order
        assert b.keypoints == a.keypoints
        want = dict(a.attributes)
        if "n" in want:
            want["n"] = 2.5
        assert b.attributes == want
        if a.has_shape:
            ma, mb = mask_to_rle(instance_to_mask(a, size)), mask_to_rle(instance_to_mask(b, size))
            assert rle_iou([ma], [mb], [False])[0, 0] >= 0.999
            assert (b.rle is not None) == (a.rle is not None)
        else:
            assert b.bbox_xywh == pytest.approx(a.bbox_xywh)
    assert notes == []


def test_written_file_is_what_cvat_writes(tmp_path: Path) -> None:
    xml = dataset_to_cvat(_dataset()).decode()
    root = parse_xml(xml.encode(), "x")
    assert root.findtext("version") == "1.1"
    assert [s.text for s in root.iter("subset")] == ["default", "train"]
    labels = {lab.findtext("name"): lab for lab in root.iter("label")}
    assert labels["person"].findtext("type") == "skeleton"
    assert [lab.findtext("parent") for n, lab in labels.items() if n in ("nose", "l eye", "r eye")] == ["person"] * 3
    mask = next(root.iter("mask"))
    assert {"rle", "left", "top", "width", "height", "z_order", "occluded", "label"} <= set(mask.attrib)
    # keys the class does not define are declared (text; checkbox for a boolean), so that CVAT takes them
    shape_attrs = {a.findtext("name"): a.findtext("input_type") for a in labels["shape"].iter("attribute")}
    assert shape_attrs == {"kind": "select", "n": "number", "truncated": "checkbox", "note": "text"}


def test_project_export_subsets_become_splits_and_image_folders(tmp_path: Path) -> None:
    """CVAT's project export: images/<subset>/<name>, <image subset=...> with CVAT's subset names."""
    from tests.support.images import write_image

    for subset in ("Train", "Validation", "extra"):
        write_image(tmp_path / "images" / subset / f"{subset}.png", 40, 30)
    body = "".join(
        f'<image id="{i}" name="{s}.png" subset="{s}" task_id="3" width="40" height="30"></image>'
        for i, s in enumerate(("Train", "Validation", "extra"))
    )
    (tmp_path / "annotations.xml").write_bytes(cvat_xml(body))
    ds = load_cvat(tmp_path)
    assert [(it.image.split, Path(it.image.path).parent.name) for it in ds.items] == [
        ("train", "Train"), ("val", "Validation"), (None, "extra"),
    ]  # fmt: skip
    assert any("subsets ['extra'] are no split" in w for w in ds.warnings)


def test_export_says_what_cvat_cannot_hold() -> None:
    insts = (
        Instance("a", bbox_xywh=(1.0, 1.0, 2.0, 2.0), area=4.0, attributes={"flags": {"x": True}}, iscrowd=True),
        Instance("a", keypoints=(0.0, 0.0, 0)),  # no shape, no visible keypoint: nothing to draw
    )
    ds = Dataset(categories=[Category("a")], items=[AnnotatedImage(ImageRecord("x.png", 10, 10), insts)])
    notes: list[str] = []
    back = parse(dataset_to_cvat(ds, warnings=notes))
    assert len(notes) == 3 and "1 crowd region" in notes[0] and "flags" in notes[1] and "1 instance(s) without" in notes[2]
    assert len(back.items[0].instances) == 1 and back.items[0].instances[0].attributes == {}


@pytest.mark.parametrize(
    ("points", "warning"),
    [("3.1,3.1;3.4,3.1;3.4,3.4", "polygon covers no pixel of the image"), ("50,50;60,50;60,60", "lies outside the image")],
)
def test_invisible_polygons_are_skipped_with_a_warning(points: str, warning: str) -> None:
    body = f"""<image id="0" name="a.jpg" width="40" height="30">
      <polygon label="c" occluded="0" points="{points}" z_order="0"></polygon>
      <polygon label="c" occluded="0" points="1,1;9,1;9,6" z_order="0"></polygon></image>"""
    ds = parse(cvat_xml(body))
    assert len(ds.items[0].instances) == 1
    assert any(warning in w for w in ds.warnings) and any("has no shape left" in w for w in ds.warnings)


def test_a_mask_box_far_larger_than_its_image_is_refused_before_decoding() -> None:
    with pytest.raises(CvatFormatError, match="a 100000x100000 mask on a 40x30 image is more than this reader decodes"):
        one('<mask label="c" occluded="0" rle="0, 10000000000" left="0" top="0" width="100000" height="100000"></mask>')
