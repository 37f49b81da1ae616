"""Ultralytics YOLO: label lines parsed, data.yaml read, bad input refused in one line, and the export's
lines read back to the same masks, boxes and keypoints (what YOLO can express), with notes for the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.images import write_image
from workbench.domain import AnnotatedImage, Category, Dataset, ImageRecord, Instance, KeypointSchema
from workbench.formats.yolo import YoloFormatError, load_yolo, parse_label_file
from workbench.formats.yolo_write import dataset_to_yolo, dump_yaml, join_parts
from workbench.geometry import instance_to_mask, mask_to_rle, polygons_to_mask

NAMES = ("cat", "dog")
SIZE = (40, 20)


@pytest.mark.parametrize(
    ("line", "kind", "box"),
    [
        ("0 0.5 0.5 0.5 0.5", "box", (10.0, 5.0, 20.0, 10.0)),
        ("1 0.25 0.5 0.1 0.2", "box", (8.0, 8.0, 4.0, 4.0)),
        ("0 0.1 0.1 0.6 0.1 0.6 0.9 0.1 0.9", "polygon", (4.0, 2.0, 20.0, 16.0)),
        ("1.0 0 0 1 0 1 1", "polygon", (0.0, 0.0, 40.0, 20.0)),
        ("0 -0.005 0.5 1.004 0.5 0.5 1.0", "polygon", (0.0, 10.0, 40.0, 10.0)),  # 1 % outside: clipped
    ],
)
def test_label_lines_become_boxes_and_polygons_in_pixels(line: str, kind: str, box: tuple) -> None:
    (inst,) = parse_label_file(line, names=NAMES, size_wh=SIZE)
    assert inst.category == NAMES[int(float(line.split()[0]))]
    assert (inst.polygons != ()) == (kind == "polygon")
    assert inst.bbox_xywh == pytest.approx(box)
    assert inst.source == "imported"


@pytest.mark.parametrize(
    ("dim", "values", "keypoints"),
    [
        (3, "0.5 0.25 2  0 0 0  0.25 0.5 1", (20.0, 5.0, 2, 0.0, 0.0, 0, 10.0, 10.0, 1)),
        (2, "0.5 0.25  0 0  0.25 0.5", (20.0, 5.0, 2, 0.0, 0.0, 0, 10.0, 10.0, 2)),
    ],
)
def test_pose_lines_carry_box_and_keypoints(dim: int, values: str, keypoints: tuple) -> None:
    (inst,) = parse_label_file(f"1 0.5 0.5 0.5 0.5 {values}", names=NAMES, size_wh=SIZE, kpt_shape=(3, dim))
    assert inst.category == "dog" and inst.bbox_xywh == pytest.approx((10.0, 5.0, 20.0, 10.0))
    assert inst.keypoints == pytest.approx(keypoints)


@pytest.mark.parametrize(
    ("text", "kpt", "message"),
    [
        ("2 0.5 0.5 0.1 0.1", None, "line 1: class 2 is not among the 2 classes"),
        ("0 0.5 0.5 0.1", None, "expected 'class cx cy w h'"),
        ("0 0.5 0.5 0.1 0.1 0.2 0.3 0.4", None, "expected 'class cx cy w h'"),
        ("\n0 12 30 50 40", None, "line 2: coordinates must be fractions of the image size (0..1), got 12"),
        ("0 0.5 abc 0.1 0.1", None, "not a line of numbers"),
        ("0 0.5 nan 0.1 0.1", None, "must be finite"),
        ("0 0.5 0.5 0.1 0.1 0.5 0.5", (2, 3), "a pose line needs 1 + 4 + 2 x 3 = 11 numbers"),
        ("0 0.5 0.5 0.1 0.1 0.5 0.5 7", (1, 3), "keypoint visibility must be 0, 1 or 2, got 7"),
    ],
)
def test_bad_label_lines_are_refused_naming_file_and_line(text: str, kpt: tuple | None, message: str) -> None:
    with pytest.raises(YoloFormatError) as exc:
        parse_label_file(text, names=NAMES, size_wh=SIZE, kpt_shape=kpt, src="labels/train/a.txt")
    assert str(exc.value).startswith("labels/train/a.txt: line") and message in str(exc.value)
    assert "\n" not in str(exc.value)


def _write(root: Path, yaml_text: str, labels: dict[str, str], images: dict[str, tuple[int, int]]) -> Path:
    (root / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml_text)
    for n, (rel, (w, h)) in enumerate(images.items()):
        write_image(root / rel, w, h, seed=n)
    for rel, text in labels.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_data_yaml_splits_names_and_pose_schema(tmp_path: Path) -> None:
    root = _write(
        tmp_path / "ds",
        "path: ../elsewhere\ntrain: images/train\nval: val.txt\nnames: {0: person, 1: robot}\n"
        "kpt_shape: [3, 3]\nflip_idx: [0, 2, 1]\nkpt_names: {0: [nose, left_eye, right_eye]}\n",
        {
            "labels/train/a.txt": "1 0.5 0.5 0.5 0.5 0.5 0.5 2 0.25 0.25 1 0 0 0\n",
            "labels/val/b.txt": "0 0.5 0.5 0.2 0.2 0 0 0 0 0 0 0 0 0\n",
        },
        {"images/train/a.png": (32, 24), "images/val/b.png": (16, 16), "images/val/c.png": (16, 16)},
    )
    (root / "val.txt").write_text("./images/val/b.png\nimages/val/c.png\n")
    train, val = load_yolo(root)
    assert [c.name for c in train.categories] == ["person", "robot"]
    schema = train.categories[0].keypoints
    assert schema is not None and schema.names == ("nose", "left_eye", "right_eye") and schema.flip_pairs == ((1, 2),)
    assert [(it.image.file_name, it.image.split, it.image.size_wh) for it in train.items] == [("a.png", "train", (32, 24))]
    assert [(it.image.file_name, it.image.split) for it in val.items] == [("b.png", "val"), ("c.png", "val")]
    assert val.items[1].instances == ()  # no label file: a background image
    (a,) = train.items[0].instances
    assert a.category == "robot" and a.keypoints == pytest.approx((16, 12, 2, 8, 6, 1, 0, 0, 0))
    assert any("path '../elsewhere' is not a folder inside" in w for w in train.warnings)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("train: images\n", "'names' must be a list or a mapping"),
        ("names: [a, a]\ntrain: images\n", "class names must be unique"),
        ("names: {0: a, 2: b}\ntrain: images\n", "'names' must number the classes 0..1"),
        ("names: [a]\nnc: 2\ntrain: images\n", "nc is 2 but 'names' lists 1 classes"),
        ("names: [a]\n", "names no split"),
        ("names: [a]\ntrain: images\nkpt_shape: [3]\n", "kpt_shape must be [K, 2] or [K, 3]"),
        ("names: [a]\ntrain: images\nkpt_shape: [2, 3]\nflip_idx: [0, 0]\n", "flip_idx must swap the 2 keypoints"),
        ("names: [a\n", "not valid YAML"),
        ("- a\n- b\n", "the top level must be a mapping"),
    ],
)
def test_bad_yaml_is_refused_in_one_line(tmp_path: Path, yaml_text: str, message: str) -> None:
    root = _write(tmp_path / "ds", yaml_text, {}, {"images/x.png": (8, 8)})
    with pytest.raises(YoloFormatError) as exc:
        load_yolo(root)
    assert str(exc.value).startswith(str(root / "data.yaml")) and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_split_paths_leading_outside_the_folder_are_skipped_with_the_reason(tmp_path: Path) -> None:
    write_image(tmp_path / "outside" / "secret.png", 8, 8)
    root = _write(tmp_path / "ds", f"names: [a]\ntrain: images\nval: {tmp_path}/outside\ntest: list.txt\n",
                  {}, {"images/x.png": (8, 8)})
    (root / "list.txt").write_text("../outside/secret.png\n")
    train, val, test = load_yolo(root)
    assert [it.image.file_name for it in train.items] == ["x.png"] and val.items == [] and test.items == []
    reasons = [r for ds in (val, test) for _, r in ds.skipped]
    assert len(reasons) == 2 and all("leads outside the folder" in r for r in reasons)


def test_joined_parts_fill_the_union_of_separate_parts() -> None:
    parts = [(1, 1, 6, 1, 6, 5), (8, 8, 12, 8, 12, 11, 8, 11), (20.3, 2.2, 28.7, 3.1, 25, 9.9)]
    joined = join_parts([np.asarray(p, dtype=float).reshape(-1, 2) for p in parts])
    assert len(joined) == sum(len(p) // 2 for p in parts) + 2 * 2  # each bridge: one point more at each end
    np.testing.assert_array_equal(polygons_to_mask([tuple(joined.ravel())], (32, 16)), polygons_to_mask(parts, (32, 16)))


# ------------------------------------------------------------------ export -> files -> import


def _schema() -> KeypointSchema:
    return KeypointSchema(("head", "left", "right"), skeleton=((0, 1), (0, 2)), flip_pairs=((1, 2),))


def _dataset() -> Dataset:
    hole = np.zeros((30, 40), dtype=np.uint8)
    hole[5:25, 5:30] = 1
    hole[10:20, 12:20] = 0
    cats = [Category("shape"), Category("person", keypoints=_schema()), Category("other", keypoints=KeypointSchema(("a",)))]
    a = AnnotatedImage(ImageRecord("a.png", 40, 30, split="train"), (
        Instance("shape", polygons=((2.5, 3.25, 17.75, 4.0, 12.0, 20.5),)),
        Instance("shape", polygons=((20, 2, 26, 2, 26, 8, 20, 8), (30, 20, 38, 20, 38, 28))),
        Instance("person", polygons=((1, 1, 9, 1, 9, 9, 1, 9),), keypoints=(3.5, 2.25, 2, 0, 0, 0, 8, 4, 1)),
        Instance("shape", rle=mask_to_rle(hole)),
        Instance("shape", polygons=((30, 1, 39, 1, 39, 6),), iscrowd=True),
        Instance("shape", bbox_xywh=(1.0, 20.0, 5.0, 4.0)),
        Instance("other", polygons=((10, 10, 14, 10, 14, 14),), keypoints=(11, 11, 2)),
    ))
    b = AnnotatedImage(ImageRecord("b.png", 24, 16, split="val"), (Instance("person", bbox_xywh=(2.0, 2.0, 10.0, 8.0)),))
    return Dataset(categories=cats, items=[a, b])


def _write_export(ds: Dataset, task: str, root: Path) -> list[str]:
    done = dataset_to_yolo(ds, task=task)
    (root).mkdir(parents=True)
    (root / "data.yaml").write_text(dump_yaml(done.data_yaml))
    for n, f in enumerate(done.files):
        write_image(root / "images" / f.split / f"{f.stem}.png", f.image.width, f.image.height, seed=n)
        (root / "labels" / f.split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / f.split / f"{f.stem}.txt").write_text(f.text)
    return done.notes


def _iou(a: Instance, b: Instance, size_wh: tuple[int, int]) -> float:
    ma, mb = instance_to_mask(a, size_wh).astype(bool), instance_to_mask(b, size_wh).astype(bool)
    return float((ma & mb).sum() / (ma | mb).sum())


def test_segment_export_reads_back_to_the_same_masks_and_counts_what_it_left_out(tmp_path: Path) -> None:
    ds = _dataset()
    notes = _write_export(ds, "segment", tmp_path / "y")
    train, _ = load_yolo(tmp_path / "y")
    got = train.items[0].instances
    src = ds.items[0].instances
    # crowd and box-only left out; the polygons come back (multi-part joined), the holed mask as its outline
    assert [i.category for i in got] == ["shape", "shape", "person", "shape", "other"]
    for g, s in zip(got[:3], src[:3], strict=True):
        assert _iou(g, s, (40, 30)) >= 0.999
    with_hole_filled = instance_to_mask(src[3], (40, 30)).astype(bool)
    with_hole_filled[10:20, 12:20] = True
    traced = instance_to_mask(got[3], (40, 30)).astype(bool)
    assert (traced & with_hole_filled).sum() / (traced | with_hole_filled).sum() >= 0.95
    text = "\n".join(notes)
    assert "1 instance: crowd region left out" in text
    assert "2 instances: box-only instance left out" in text  # one on each image
    assert "1 instance: mask traced as its outer contours (it had holes" in text
    assert "1 instance: instance of several parts joined into one polygon" in text
    assert "2 instances: instance's keypoints not written" in text


def test_pose_export_keeps_one_kpt_shape_and_reads_back_keypoints_and_names(tmp_path: Path) -> None:
    ds = _dataset()
    notes = _write_export(ds, "pose", tmp_path / "y")
    train, val = load_yolo(tmp_path / "y")
    assert [c.name for c in train.categories] == ["person"]
    assert train.categories[0].keypoints == _schema()
    (p,) = train.items[0].instances
    assert p.keypoints == pytest.approx((3.5, 2.25, 2, 0, 0, 0, 8, 4, 1), abs=1e-4)
    assert p.bbox_xywh == pytest.approx((1, 1, 8, 8), abs=1e-4)
    (q,) = val.items[0].instances
    assert q.keypoints == (0.0, 0.0, 0) * 3 and q.bbox_xywh == pytest.approx((2, 2, 10, 8), abs=1e-4)
    text = "\n".join(notes)
    assert "class 'shape' (no keypoints): 5 instances left out of the pose export" in text
    assert "class 'other' (1 keypoints, the dataset's kpt_shape is [3, 3]): 1 instance left out" in text
    assert "1 instance: instance without keypoints written with all keypoints missing (v=0)" in text


def test_detect_export_reads_back_the_boxes(tmp_path: Path) -> None:
    ds = _dataset()
    _write_export(ds, "detect", tmp_path / "y")
    train, _ = load_yolo(tmp_path / "y")
    from workbench.geometry import with_bbox_area

    want = [with_bbox_area(i, (40, 30)).bbox_xywh for i in ds.items[0].instances if not i.iscrowd]
    got = [i.bbox_xywh for i in train.items[0].instances]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=1e-4)
    assert all(not i.has_shape for i in train.items[0].instances)
