"""LabelMe import: the VOC fixtures made with labelme, every shape type, grouping, bad input."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from workbench.domain import IGNORE_LABEL, ValidationError
from workbench.formats.coco.write import dataset_to_coco
from workbench.formats.labelme import (
    CIRCLE_POINTS,
    LabelmeFormatError,
    dataset_to_labelme,
    labelme_to_item,
    load_labelme,
)
from workbench.geometry import polygons_to_mask

JSON_PATH = Path("/data/set/img1.json")


def shape(label: str, points: list[list[float]], kind: str = "polygon", group_id: int | None = None) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "shape_type": kind, "flags": {}}


def labelme(*shapes: dict[str, Any], width: int = 40, height: int = 30, **extra: Any) -> dict[str, Any]:
    obj = {
        "version": "5.4.1",
        "flags": {},
        "shapes": list(shapes),
        "imagePath": "img1.jpg",
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }
    obj.update(extra)
    return obj


TRIANGLE = [[2, 2], [12, 2], [12, 10]]


# ------------------------------------------------------------------ the fixtures made with labelme

EXPECTED = {
    "2011_000003.jpg": ["person", "person", "bottle", IGNORE_LABEL],
    "2011_000006.jpg": ["person", "person", "person", "chair", "person", IGNORE_LABEL, "sofa"],
    "2011_000025.jpg": ["bus", "bus", "car"],
}


def test_voc_fixtures_instance_counts_and_classes(shared_fixtures: Path) -> None:
    ds = load_labelme(shared_fixtures / "labelme")
    assert ds.warnings == []
    got = {item.image.file_name: [i.category for i in item.instances] for item in ds.items}
    assert got == EXPECTED
    assert ds.num_instances == 14
    assert [c.name for c in ds.categories] == [
        "person",
        "bottle",
        IGNORE_LABEL,
        "chair",
        "sofa",
        "bus",
        "car",
    ]
    assert len({c.color for c in ds.categories if not c.is_ignore}) == 6  # distinct default colours
    by_name = {item.image.file_name: item for item in ds.items}
    grouped_person = by_name["2011_000003.jpg"].instances[1]
    assert len(grouped_person.polygons) == 2 and grouped_person.attributes == {"group_id": 0}
    assert len(by_name["2011_000006.jpg"].instances[-1].polygons) == 4  # sofa in 4 parts
    for item in ds.items:
        assert Path(item.image.path).is_file() and item.data is None
        assert (item.image.width, item.image.height) == Image.open(item.image.path).size
        for inst in item.instances:
            assert inst.source == "imported" and inst.area > 0 and inst.bbox_xywh is not None
            mask = polygons_to_mask(inst.polygons, item.image.size_wh)
            assert inst.area == float(mask.sum())


def test_voc_fixture_exports_to_coco_without_ignore(shared_fixtures: Path) -> None:
    out = dataset_to_coco(load_labelme(shared_fixtures / "labelme" / "2011_000003.json"))
    assert [c["name"] for c in out["categories"]] == ["person", "bottle"]
    assert len(out["annotations"]) == 3


# ------------------------------------------------------------------ shape types


def test_rectangle_becomes_four_corners() -> None:
    item, cats = labelme_to_item(labelme(shape("box", [[10, 8], [2, 3]], "rectangle")), json_path=JSON_PATH)
    (inst,) = item.instances
    assert inst.polygons == ((2.0, 3.0, 10.0, 3.0, 10.0, 8.0, 2.0, 8.0),)
    assert inst.bbox_xywh == (2.0, 3.0, 8.0, 5.0) and inst.area == 40.0
    assert [c.name for c in cats] == ["box"]


def test_circle_becomes_polygon_clipped_to_image() -> None:
    inside = labelme(shape("ball", [[20, 15], [25, 15]], "circle"))
    (inst,) = labelme_to_item(inside, json_path=JSON_PATH)[0].instances
    (poly,) = inst.polygons
    assert len(poly) == 2 * CIRCLE_POINTS
    pts = np.asarray(poly).reshape(-1, 2)
    assert np.allclose(np.hypot(pts[:, 0] - 20, pts[:, 1] - 15), 5.0)
    assert inst.area == pytest.approx(np.pi * 25, rel=0.15)
    edge = labelme(shape("ball", [[2, 2], [8, 2]], "circle"))
    (clipped,) = labelme_to_item(edge, json_path=JSON_PATH)[0].instances
    pts = np.asarray(clipped.polygons[0]).reshape(-1, 2)
    assert pts.min() >= 0.0 and clipped.bbox_xywh[:2] == (0.0, 0.0)


def test_same_label_and_group_id_make_one_multipart_instance() -> None:
    obj = labelme(
        shape("car", TRIANGLE, group_id=3),
        shape("car", [[20, 20], [30, 20], [30, 28]], group_id=3),
        shape("car", [[20, 2], [30, 2], [30, 8]]),  # no group: its own instance
        shape("person", [[1, 20], [5, 20], [5, 28]], group_id=3),  # same group, other label
    )
    item, _ = labelme_to_item(obj, json_path=JSON_PATH)
    assert [(i.category, len(i.polygons)) for i in item.instances] == [("car", 2), ("car", 1), ("person", 1)]


def test_points_join_their_group_as_keypoints() -> None:
    obj = labelme(
        shape("person", [[2, 2], [30, 2], [30, 25], [2, 25]], group_id=1),
        shape("nose", [[10, 5]], "point", group_id=1),
        shape("tail", [[20, 20]], "point", group_id=1),
        shape("person", [[32, 2], [38, 2], [38, 20]], group_id=2),
        shape("tail", [[35, 10]], "point", group_id=2),
    )
    item, cats = labelme_to_item(obj, json_path=JSON_PATH)
    (person,) = cats
    assert person.keypoints is not None and person.keypoints.names == ("nose", "tail")
    first, second = item.instances
    assert first.keypoints == (10.0, 5.0, 2, 20.0, 20.0, 2)
    assert second.keypoints == (0.0, 0.0, 0, 35.0, 10.0, 2)


def test_ungrouped_points_are_single_point_instances() -> None:
    warnings: list[str] = []
    obj = labelme(shape("nest", [[7, 9]], "point"), shape("nest", [[3, 4]], "point", group_id=5))
    item, cats = labelme_to_item(obj, json_path=JSON_PATH, warnings=warnings)
    assert [c.name for c in cats] == ["nest"] and cats[0].keypoints.names == ("nest",)
    a, b = item.instances
    assert a.keypoints == (7.0, 9.0, 2) and a.bbox_xywh == (6.5, 8.5, 1.0, 1.0) and not a.has_shape
    assert b.keypoints == (3.0, 4.0, 2)
    assert any("no shape has group_id 5" in w for w in warnings)


def test_ignore_label_and_skipped_shape_types() -> None:
    warnings: list[str] = []
    obj = labelme(
        shape(IGNORE_LABEL, TRIANGLE),
        shape("road", [[1, 1], [5, 5], [9, 1]], "linestrip"),
        shape("edge", [[1, 1], [5, 5]], "line"),
        shape("far", [[100, 100], [120, 100], [120, 120]]),  # outside the 40x30 image
    )
    item, cats = labelme_to_item(obj, json_path=JSON_PATH, warnings=warnings)
    assert [i.category for i in item.instances] == [IGNORE_LABEL]
    assert [c.name for c in cats] == [IGNORE_LABEL] and cats[0].is_ignore
    text = "\n".join(warnings)
    assert "'linestrip' is not imported" in text and "'line' is not imported" in text
    assert "outside the image" in text and str(JSON_PATH) in text


def test_embedded_image_data() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buf, format="PNG")
    obj = labelme(shape("a", TRIANGLE), imageData=base64.b64encode(buf.getvalue()).decode(), imagePath="")
    del obj["imageWidth"], obj["imageHeight"]  # measured from the data
    item, _ = labelme_to_item(obj, json_path=JSON_PATH)
    assert item.data == buf.getvalue() and item.image.path is None
    assert item.image.size_wh == (40, 30) and item.image.file_name == "img1.png"


def test_windows_image_path_and_relative_folder() -> None:
    item, _ = labelme_to_item(labelme(imagePath="..\\images\\img1.jpg"), json_path=JSON_PATH)
    assert item.image.file_name == "img1.jpg" and item.image.path == "/data/images/img1.jpg"


# ------------------------------------------------------------------ bad input


BAD_LABELME = [
    ("not labelme", {"images": []}, "'shapes' must be a list"),
    ("zero width", labelme(width=0), "imageWidth must be a positive integer"),
    ("fractional height", labelme(height=7.5), "imageHeight must be a positive integer"),
    ("bad base64", labelme(imageData="@@not base64@@"), "imageData is not valid base64"),
    ("two-point polygon", labelme(shape("a", [[1, 1], [5, 5]])), "shape 0 ('a')"),
    ("point with two points", labelme(shape("p", [[1, 1], [2, 2]], "point")), "exactly 1 point"),
    ("string coordinates", labelme(shape("a", [["1", 2], [3, 4], [5, 6]])), "pair of finite numbers"),
    ("empty label", labelme(shape("", TRIANGLE)), "label must be a non-empty string"),
    ("string group id", labelme(shape("a", TRIANGLE, group_id="x")), "group_id must be an integer"),
    ("no image at all", labelme(imagePath=None), "neither imagePath nor imageData"),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in BAD_LABELME], ids=[c[0] for c in BAD_LABELME])
def test_bad_labelme_names_file_and_problem(obj: dict[str, Any], expected: str) -> None:
    with pytest.raises(LabelmeFormatError) as info:
        labelme_to_item(obj, json_path=JSON_PATH)
    assert str(JSON_PATH) in str(info.value) and expected in str(info.value)
    assert isinstance(info.value, ValidationError)


def _write(folder: Path, name: str, obj: dict[str, Any], image: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    obj = dict(obj, imagePath=name + ".png")
    if image:
        Image.new("RGB", (obj["imageWidth"], obj["imageHeight"])).save(folder / (name + ".png"))
    path = folder / (name + ".json")
    path.write_text(json.dumps(obj))
    return path


def test_load_folder_merges_keypoint_names_across_files(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "a",
        labelme(shape("cat", TRIANGLE, group_id=1), shape("ear", [[3, 3]], "point", group_id=1)),
    )
    _write(
        tmp_path / "sub",
        "b",
        labelme(
            shape("cat", TRIANGLE, group_id=1),
            shape("tail", [[11, 9]], "point", group_id=1),
            shape("ear", [[4, 4]], "point", group_id=1),
        ),
    )
    ds = load_labelme(tmp_path)
    (cat,) = ds.categories
    assert cat.keypoints.names == ("ear", "tail")
    a, b = (item.instances[0] for item in ds.items)
    assert a.keypoints == (3.0, 3.0, 2, 0.0, 0.0, 0)
    assert b.keypoints == (4.0, 4.0, 2, 11.0, 9.0, 2)  # re-laid onto the merged schema
    out = dataset_to_coco(ds)
    assert out["categories"][0]["keypoints"] == ["ear", "tail"]


def test_load_reports_missing_images_and_bad_files(tmp_path: Path) -> None:
    for i in range(7):
        _write(tmp_path, f"m{i}", labelme(shape("a", TRIANGLE)), image=False)
    with pytest.raises(LabelmeFormatError, match=r"7 image file\(s\) missing: .*m0.png.* and 2 more"):
        load_labelme(tmp_path)
    (tmp_path / "zz.json").write_text("{broken")
    with pytest.raises(LabelmeFormatError, match=r"zz\.json: not valid JSON"):
        load_labelme(tmp_path)
    bad = _write(tmp_path / "x", "bad", labelme(shape("a", [[1, 1], [2, 2]])))
    with pytest.raises(LabelmeFormatError, match=r"bad\.json: shape 0"):
        load_labelme(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelmeFormatError, match="no LabelMe .json files"):
        load_labelme(tmp_path / "empty")
    with pytest.raises(LabelmeFormatError, match="no such file or folder"):
        load_labelme(tmp_path / "nope")


# ------------------------------------------------------------------ export back to LabelMe


def _shapes_of(ds) -> list[list[tuple]]:
    return [[(i.category, i.polygons, i.keypoints, i.bbox_xywh) for i in item.instances] for item in ds.items]


def test_labelme_round_trip_of_fixtures(shared_fixtures: Path, tmp_path: Path) -> None:
    ds = load_labelme(shared_fixtures / "labelme")
    files = dataset_to_labelme(ds)
    assert sorted(files) == ["2011_000003.json", "2011_000006.json", "2011_000025.json"]
    for name, obj in files.items():
        (tmp_path / name).write_text(json.dumps(obj))
        Image.open(shared_fixtures / "labelme" / obj["imagePath"]).save(tmp_path / obj["imagePath"])
    again = load_labelme(tmp_path)
    assert _shapes_of(again) == _shapes_of(ds)


def test_labelme_round_trip_of_keypoints_and_points(tmp_path: Path) -> None:
    obj = labelme(
        shape("cat", TRIANGLE, group_id=4),
        shape("cat", [[20, 20], [30, 20], [30, 28]], group_id=4),
        shape("ear", [[3, 3]], "point", group_id=4),
        shape("nest", [[7, 9]], "point"),
        shape("box", [[30, 2], [38, 9]], "rectangle"),
    )
    path = _write(tmp_path / "a", "img1", obj)
    ds = load_labelme(path)
    files = dataset_to_labelme(ds)
    path2 = _write(tmp_path / "b", "img1", files["img1.json"])
    assert _shapes_of(load_labelme(path2)) == _shapes_of(ds)


def test_shape_covering_no_pixel_is_skipped_with_a_warning() -> None:
    """A valid triangle inside one pixel rasterises to nothing: it would be an invisible instance."""
    warnings: list[str] = []
    tiny = [[10.1, 10.1], [10.6, 10.2], [10.3, 10.7]]
    obj = labelme(
        shape("dot", tiny),
        shape("cat", TRIANGLE, group_id=1),
        shape("cat", tiny, group_id=1),  # a tiny extra part of a visible instance is dropped alone
    )
    item, cats = labelme_to_item(obj, json_path=JSON_PATH, warnings=warnings)
    assert [i.category for i in item.instances] == ["cat"]
    (cat,) = item.instances
    assert len(cat.polygons) == 1 and cat.area > 0
    assert [c.name for c in cats] == ["cat"]
    text = "\n".join(warnings)
    assert f"{JSON_PATH}: shape 0 ('dot'): polygon covers no pixel of the image; skipped" in text
    assert f"{JSON_PATH}: shape 2 ('cat'): polygon covers no pixel" in text
    assert "instance 'dot' (group_id None) has no shape left; skipped" in text
