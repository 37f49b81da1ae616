"""CVAT XML and Label Studio through the store: import, export, import again into a fresh project,
and the instances (masks by IoU, keypoints, attributes, z_order) come back; the CLI's lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import run
from tests.support.images import write_image
from workbench.domain import Instance
from workbench.formats.cvat_parts import mask_to_cvat_rle
from workbench.geometry import instance_to_mask, mask_to_rle, rle_iou
from workbench.services import annotate, classes, export, imports, projects

W, H = 48, 36


def _instances(ws, slug: str) -> dict[str, list[Instance]]:  # noqa: ANN001
    out = {}
    for im in annotate.list_images(ws, slug):
        insts = annotate.load_image(ws, slug, im.id).instances
        out[im.file_name] = sorted(insts, key=lambda i: (i.category, i.z_order, i.bbox_xywh or ()))
    return out


def _same(a: list[Instance], b: list[Instance], size_wh: tuple[int, int]) -> None:
    assert [i.category for i in a] == [i.category for i in b]
    for x, y in zip(a, b, strict=True):
        assert (x.z_order, x.keypoints, x.attributes) == (y.z_order, y.keypoints, y.attributes)
        if x.has_shape or y.has_shape:
            mx, my = mask_to_rle(instance_to_mask(x, size_wh)), mask_to_rle(instance_to_mask(y, size_wh))
            assert rle_iou([mx], [my], [False])[0, 0] >= 0.999
        else:
            assert x.bbox_xywh == pytest.approx(y.bbox_xywh)


def cvat_folder(root: Path) -> Path:
    """A CVAT task export (annotations.xml + images/) with every shape CVAT writes for images."""
    write_image(root / "images" / "a.png", W, H, seed=1)
    ring = np.zeros((H, W), dtype=np.uint8)
    ring[4:30, 20:46] = 1
    ring[10:20, 27:38] = 0
    counts, (left, top, w, h) = mask_to_cvat_rle(ring)
    rle = ", ".join(map(str, counts))
    labels = (
        "<label><name>car</name><color>#33ddff</color><type>any</type><attributes>"
        "<attribute><name>color</name><mutable>False</mutable><input_type>select</input_type>"
        "<default_value>red</default_value><values>red\nblue</values></attribute>"
        "<attribute><name>speed</name><mutable>False</mutable><input_type>number</input_type>"
        "<default_value>0</default_value><values>0\n100\n1</values></attribute></attributes></label>"
        "<label><name>person</name><color>#ff0000</color><type>skeleton</type><attributes></attributes>"
        '<svg>&lt;line data-type="edge" data-node-from="1" data-node-to="2"&gt;&lt;/line&gt;'
        '&lt;circle data-type="element node" data-node-id="1" data-label-name="head"&gt;&lt;/circle&gt;'
        '&lt;circle data-type="element node" data-node-id="2" data-label-name="hand"&gt;&lt;/circle&gt;</svg></label>'
        "<label><name>head</name><type>points</type><attributes></attributes><parent>person</parent></label>"
        "<label><name>hand</name><type>points</type><attributes></attributes><parent>person</parent></label>"
    )
    body = f"""
  <image id="0" name="a.png" width="{W}" height="{H}">
    <polygon label="car" source="manual" occluded="1" points="1.50,1.00;15.00,2.25;14.00,12.00" z_order="3">
      <attribute name="color">blue</attribute>
      <attribute name="speed">42</attribute>
    </polygon>
    <box label="car" source="manual" occluded="0" xtl="2.00" ytl="20.00" xbr="12.50" ybr="30.00" z_order="1">
    </box>
    <mask label="car" source="manual" occluded="0" rle="{rle}" left="{left}" top="{top}" width="{w}" height="{h}" z_order="2">
    </mask>
    <skeleton label="person" source="manual" z_order="4">
      <points label="head" occluded="0" source="manual" outside="0" points="5.00,6.00"></points>
      <points label="hand" occluded="1" source="manual" outside="0" points="9.50,9.00"></points>
    </skeleton>
  </image>"""
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
        f"  <meta><task><id>1</id><name>t</name><labels>{labels}</labels></task></meta>{body}\n</annotations>\n"
    )
    (root / "annotations.xml").write_text(xml)
    return root


def test_cvat_import_export_import_keeps_every_instance(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    report = imports.import_cvat(ws, project, cvat_folder(tmp_path / "cvat"))
    assert (len(report.imported), report.annotations) == (1, 4)
    first = _instances(ws, project)["a.png"]
    car_poly = next(i for i in first if i.polygons)
    assert car_poly.attributes == {"occluded": True, "color": "blue", "speed": 42} and car_poly.z_order == 3
    assert next(i for i in first if i.rle is not None).area == 26 * 26 - 10 * 11
    cats = {c.name: c for c in classes.list_categories(ws, project)}
    assert cats["car"].color == "#33ddff" and [a.name for a in cats["car"].attributes] == ["color", "speed"]
    assert cats["person"].keypoints.names == ("head", "hand") and cats["person"].keypoints.skeleton == ((0, 1),)

    done = export.export_cvat(ws, project, tmp_path / "out", copy_images=True)
    assert done.path == tmp_path / "out" / "annotations.xml" and (tmp_path / "out" / "images" / "a.png").is_file()
    again = projects.create_project(ws, "again").slug
    imports.import_cvat(ws, again, tmp_path / "out")
    _same(first, _instances(ws, again)["a.png"], (W, H))
    assert {c.name: c.attributes for c in classes.list_categories(ws, again)} == {
        c.name: c.attributes for c in cats.values()
    }


def test_demo_project_through_cvat_keeps_masks_keypoints_and_splits(ws, demo, tmp_path: Path) -> None:  # noqa: ANN001
    export.export_cvat(ws, demo, tmp_path / "out", copy_images=True)
    again = projects.create_project(ws, "again").slug
    report = imports.import_cvat(ws, again, tmp_path / "out")
    assert report.skipped == []
    assert projects.get_project(ws, again).split_counts == projects.get_project(ws, demo).split_counts
    before, after = _instances(ws, demo), _instances(ws, again)
    assert sorted(before) == sorted(after)
    sizes = {im.file_name: (im.width, im.height) for im in annotate.list_images(ws, demo)}
    for name, insts in before.items():
        _same(insts, after[name], sizes[name])
    kp = {c.name: c.keypoints for c in classes.list_categories(ws, demo)}
    assert {c.name: c.keypoints and c.keypoints.names for c in classes.list_categories(ws, again)} == {
        n: k and k.names for n, k in kp.items()
    }


def test_cli_import_and_export_cvat(ws, project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    cvat_folder(tmp_path / "cvat")
    assert run(ws.root, "import", "cvat", project, str(tmp_path / "cvat")) == 0
    assert "1 image imported, 4 annotations" in capsys.readouterr().out
    assert run(ws.root, "export", "cvat", project, str(tmp_path / "out")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(tmp_path / "out" / "annotations.xml")
    (tmp_path / "bad.xml").write_text("<annotations><image id='0' name='a.png' width='4'")
    assert run(ws.root, "import", "cvat", project, str(tmp_path / "bad.xml")) == 1
    err = capsys.readouterr().err
    assert "bad.xml: not valid XML" in err and err.count("\n") == 1


def test_labelstudio_upload_paths_land_on_the_projects_images(ws, project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The images were imported first; the export names them by Label Studio upload paths."""
    write_image(tmp_path / "imgs" / "img.png", W, H)
    imports.import_images(ws, project, [tmp_path / "imgs"])
    box = {"x": 25, "y": 50, "width": 50, "height": 25, "rotation": 0, "rectanglelabels": ["car"]}
    export_json = [{
        "id": 7, "data": {"image": "/data/upload/3/8c2f11aa-img.png"},
        "annotations": [{"id": 1, "was_cancelled": False, "created_at": "2024-01-01T00:00:00Z", "result": [
            {"id": "r", "type": "rectanglelabels", "value": box, "from_name": "label", "to_name": "image",
             "original_width": W, "original_height": H},
        ]}],
    }]  # fmt: skip
    (tmp_path / "ls").mkdir()
    (tmp_path / "ls" / "export.json").write_text(json.dumps(export_json))
    assert run(ws.root, "import", "labelstudio", project, str(tmp_path / "ls" / "export.json")) == 0
    assert "0 images imported, 1 annotation" in capsys.readouterr().out
    (inst,) = _instances(ws, project)["img.png"]
    assert inst.category == "car" and inst.bbox_xywh == pytest.approx((12.0, 18.0, 24.0, 9.0))
    assert run(ws.root, "import", "labelstudio", project, str(tmp_path / "nothere.json")) == 1


def test_cvat_annotations_alone_land_on_the_projects_images_by_name(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    cvat_folder(tmp_path / "cvat")
    imports.import_images(ws, project, [tmp_path / "cvat" / "images" / "a.png"])
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "annotations.xml").write_text((tmp_path / "cvat" / "annotations.xml").read_text())
    report = imports.import_cvat(ws, project, tmp_path / "xml" / "annotations.xml", split="val")
    assert (report.imported, report.annotations) == ([], 4)
    assert len(_instances(ws, project)["a.png"]) == 4
