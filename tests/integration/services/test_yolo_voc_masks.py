"""YOLO, Pascal VOC and mask PNGs through the store: export a project, import it into a fresh one, and
find the same masks (IoU >= 0.999 per instance, for what each format can express), keypoints and
attributes; then the peers that read these formats read our exports.

Peer checks: Ultralytics' dataset loader (YOLO) and datumaro (VOC) are not product dependencies
(ultralytics is AGPL and pulls opencv-python, which clashes with our opencv-python-headless). They
run in a separate virtual environment, as a subprocess, when ``WORKBENCH_PEER_PYTHON`` names its
Python; without it (or without the package there) they skip with the reason. To set one up::

    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 ultralytics datumaro
    WORKBENCH_PEER_PYTHON=/tmp/peer-venv/bin/python pytest tests/integration/services/test_yolo_voc_masks.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.support.images import write_image
from workbench.domain import (
    IGNORE_LABEL,
    AnnotatedImage,
    AttributeDef,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
)
from workbench.formats.yolo import load_yolo
from workbench.geometry import instance_to_mask, mask_to_rle
from workbench.services import annotate, classes, export, imports, projects

SCHEMA = KeypointSchema(("head", "left", "right"), skeleton=((0, 1), (0, 2)), flip_pairs=((1, 2),))


def _source(tmp: Path) -> Dataset:
    """Two images whose shapes do not overlap (an index map holds one class per pixel): polygons,
    a mask with a hole, several parts, keypoints, attributes, a crowd, an ignore region, a box."""
    hole = np.zeros((48, 64), dtype=np.uint8)
    hole[4:24, 30:60] = 1
    hole[10:16, 38:50] = 0
    cats = [
        Category("shape", attributes=(AttributeDef("colour", "select", ("red", "blue")),)),
        Category("person", keypoints=SCHEMA),
        Category(IGNORE_LABEL),
    ]
    a = AnnotatedImage(ImageRecord("a.png", 64, 48, path=str(write_image(tmp / "src" / "a.png", 64, 48)), split="train"), (
        Instance("shape", polygons=((2.5, 2.5, 20.25, 3, 14, 18.5),), attributes={"colour": "red", "occluded": True}),
        Instance("shape", rle=mask_to_rle(hole), attributes={"truncated": True}),
        Instance("person", polygons=((4, 28, 20, 28, 20, 46, 4, 46), (24, 30, 28, 30, 28, 40)), keypoints=(12, 30, 2, 0, 0, 0, 18, 44, 1)),
        Instance("shape", polygons=((40, 30, 60, 30, 60, 46),), iscrowd=True),
        Instance(IGNORE_LABEL, polygons=((0, 40, 2, 40, 2, 47),)),
    ))
    b = AnnotatedImage(ImageRecord("b.png", 40, 32, path=str(write_image(tmp / "src" / "b.png", 40, 32, seed=1)), split="val"), (
        Instance("person", polygons=((5, 5, 30, 5, 30, 28, 5, 28),), keypoints=(17.5, 8.25, 2, 8, 20, 2, 27, 20, 2)),
        Instance("shape", bbox_xywh=(32.0, 1.0, 6.0, 4.0)),
    ))
    return Dataset(categories=cats, items=[a, b])


@pytest.fixture
def source(ws, project, tmp_path: Path) -> str:  # noqa: ANN001
    imports.import_dataset(ws, project, _source(tmp_path))
    return project


def _instances(ws, slug: str) -> dict[str, list[Instance]]:  # noqa: ANN001
    return {im.file_name: list(annotate.load_image(ws, slug, im.id).instances) for im in annotate.list_images(ws, slug)}


def _iou(a: Instance, b: Instance, size_wh: tuple[int, int]) -> float:
    ma, mb = instance_to_mask(a, size_wh).astype(bool), instance_to_mask(b, size_wh).astype(bool)
    return float((ma & mb).sum() / (ma | mb).sum())


def _fresh(ws, name: str) -> str:  # noqa: ANN001
    return projects.create_project(ws, name).slug


SIZES = {"a.png": (64, 48), "b.png": (40, 32)}


def test_yolo_segment_round_trip_keeps_the_polygons(ws, source: str, tmp_path: Path) -> None:  # noqa: ANN001
    done = export.export_yolo(ws, source, tmp_path / "yolo", task="segment")
    assert done.path == tmp_path / "yolo" / "data.yaml"
    assert any("crowd region left out" in n for n in done.notes) and any("traced as its outer contours" in n for n in done.notes)
    back = _fresh(ws, "Back")
    report = imports.import_yolo(ws, back, tmp_path / "yolo")
    assert report.skipped == [] and len(report.imported) == 2
    src, got = _instances(ws, source), _instances(ws, back)
    assert [c.name for c in classes.list_categories(ws, back)] == ["shape", "person"]
    triangle, holed, person = src["a.png"][:3]
    got_triangle, got_outline, got_person = got["a.png"]  # the crowd and the ignore region are left out
    assert _iou(got_triangle, triangle, SIZES["a.png"]) >= 0.999
    assert _iou(got_person, person, SIZES["a.png"]) >= 0.999  # two parts joined by a bridge
    filled = instance_to_mask(holed, SIZES["a.png"]).astype(bool)
    filled[10:16, 38:50] = True  # YOLO polygons carry no holes: the outline comes back
    outline = instance_to_mask(got_outline, SIZES["a.png"]).astype(bool)
    assert (outline & filled).sum() / (outline | filled).sum() >= 0.98
    assert [i.category for i in got["b.png"]] == ["person"]  # the box-only shape is left out
    assert {im.file_name: im.split for im in annotate.list_images(ws, back)} == {"a.png": "train", "b.png": "val"}


def test_yolo_pose_round_trip_keeps_keypoints_and_their_schema(ws, source: str, tmp_path: Path) -> None:  # noqa: ANN001
    export.export_yolo(ws, source, tmp_path / "yolo", task="pose")
    back = _fresh(ws, "Back")
    imports.import_yolo(ws, back, tmp_path / "yolo")
    (person,) = classes.list_categories(ws, back)
    assert person.name == "person" and person.keypoints == SCHEMA
    src, got = _instances(ws, source), _instances(ws, back)
    for name in SIZES:
        want = [i.keypoints for i in src[name] if i.category == "person"]
        have = [i.keypoints for i in got[name]]
        assert len(have) == len(want) == 1 and have[0] == pytest.approx(want[0], abs=1e-3)


def test_voc_round_trip_keeps_masks_and_attributes(ws, source: str, tmp_path: Path) -> None:  # noqa: ANN001
    done = export.export_voc(ws, source, tmp_path / "voc")
    assert {p.name for p in (tmp_path / "voc").iterdir()} == {
        "Annotations", "JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets", "labelmap.txt"}
    assert any("keypoints left out" in n for n in done.notes)
    back = _fresh(ws, "Back")
    imports.import_voc(ws, back, tmp_path / "voc")
    src, got = _instances(ws, source), _instances(ws, back)
    for name, size in SIZES.items():
        want = [i for i in src[name] if not i.iscrowd and i.category != IGNORE_LABEL]
        have = [i for i in got[name] if i.category != IGNORE_LABEL]
        assert [i.category for i in have] == [i.category for i in want]
        for g, s in zip(have, want, strict=True):
            if s.has_shape:
                assert _iou(g, s, size) >= 0.999
            else:
                assert g.bbox_xywh == pytest.approx(s.bbox_xywh)
            assert g.attributes == s.attributes
    ignore = [i for i in got["a.png"] if i.category == IGNORE_LABEL]
    assert len(ignore) == 1  # the ignore region and the crowd, both void


def test_label_maps_read_back_as_mask_pngs(ws, source: str, tmp_path: Path) -> None:  # noqa: ANN001
    export.export_labelmaps(ws, source, tmp_path / "maps")
    back = _fresh(ws, "Back")
    report = imports.import_masks(ws, back, tmp_path / "maps", images_dir=tmp_path / "src", one_per_class=False)
    assert len(report.imported) == 2
    src, got = _instances(ws, source), _instances(ws, back)
    a_src = [i for i in src["a.png"] if i.has_shape and not i.iscrowd and i.category != IGNORE_LABEL]
    a_got = [i for i in got["a.png"] if i.category != IGNORE_LABEL]
    # components per class: the hole mask, the triangle, the person's two parts -> 4 blobs (+ crowd's blob)
    for s in a_src:
        parts = [g for g in a_got if g.category == s.category and _iou(g, s, (64, 48)) > 0]
        union = sum(instance_to_mask(g, (64, 48)) for g in parts).astype(bool)
        ms = instance_to_mask(s, (64, 48)).astype(bool)
        assert (union & ms).sum() / (union | ms).sum() >= 0.999


# ------------------------------------------------------------------ peers


def _peer(module: str) -> str:
    python = os.environ.get("WORKBENCH_PEER_PYTHON")
    if not python:
        pytest.skip(f"peer check: set WORKBENCH_PEER_PYTHON to a Python with {module} (see this module's docstring)")
    ok = subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=120)
    if ok.returncode:
        pytest.skip(f"peer check: {module} is not installed for {python}")
    return python


def _run_peer(python: str, script: str, *args: str, tmp: Path) -> dict:
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp / "ultralytics-config"), "YOLO_OFFLINE": "1"}
    res = subprocess.run([python, "-c", textwrap.dedent(script), *args], capture_output=True, text=True, timeout=300,
                         cwd=tmp, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    line = next(x for x in res.stdout.splitlines() if x.startswith("PEER-JSON "))
    return json.loads(line.removeprefix("PEER-JSON "))


ULTRALYTICS = """
import json, os, sys
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import check_det_dataset
data = check_det_dataset(sys.argv[1])
out = {"names": {int(k): v for k, v in data["names"].items()}, "kpt_shape": data.get("kpt_shape"),
       "flip_idx": data.get("flip_idx"), "items": {}}
for split in ("train", "val"):
    for lb in YOLODataset(img_path=data[split], data=data, task=sys.argv[2], augment=False).labels:
        out["items"][os.path.basename(lb["im_file"])] = {
            "cls": lb["cls"].ravel().tolist(), "bboxes": lb["bboxes"].tolist(),
            "segments": [s.tolist() for s in lb["segments"]],
            "keypoints": None if lb.get("keypoints") is None else lb["keypoints"].tolist()}
print("PEER-JSON " + json.dumps(out))
"""


@pytest.mark.parametrize("task", ["segment", "pose"])
def test_ultralytics_loader_reads_our_yolo_export(ws, source: str, tmp_path: Path, task: str) -> None:  # noqa: ANN001
    python = _peer("ultralytics")
    export.export_yolo(ws, source, tmp_path / "yolo", task=task)
    peer = _run_peer(python, ULTRALYTICS, str(tmp_path / "yolo" / "data.yaml"), task, tmp=tmp_path)
    ours = {ds.items[0].image.file_name: ds for ds in load_yolo(tmp_path / "yolo")}
    src = _instances(ws, source)
    if task == "pose":
        assert peer["names"] == {"0": "person"} and peer["kpt_shape"] == [3, 3] and peer["flip_idx"] == [0, 2, 1]
        for name, (w, h) in SIZES.items():
            (kp,) = peer["items"][name]["keypoints"]
            (want,) = [i.keypoints for i in src[name] if i.category == "person"]
            got = [v for x, y, v in kp for v in (x * w, y * h, v)]
            assert got == pytest.approx([v if k % 3 == 2 or want[k - k % 3 + 2] else 0 for k, v in enumerate(want)], abs=1e-3)
    else:
        assert peer["names"] == {"0": "shape", "1": "person"}
        assert [int(c) for c in peer["items"]["a.png"]["cls"]] == [0, 0, 1]  # crowd and ignore left out
        from workbench.geometry import polygons_to_mask

        for seg, inst in zip(peer["items"]["a.png"]["segments"], ours["a.png"].items[0].instances, strict=True):
            # their coordinates are float32: back to pixels within 1e-3 before rasterising as ours are
            poly = tuple(round(v * s, 3) for x, y in seg for v, s in ((x, 64), (y, 48)))
            theirs = polygons_to_mask([poly], (64, 48)).astype(bool)
            mine = instance_to_mask(inst, (64, 48)).astype(bool)
            assert (theirs & mine).sum() / (theirs | mine).sum() >= 0.999


DATUMARO = """
import json, sys
import numpy as np
import datumaro as dm
ds = dm.Dataset.import_from(sys.argv[1], "voc")
labels = ds.categories()[dm.AnnotationType.label]
out = {"labels": [l.name for l in labels.items], "items": {}}
for item in ds:
    anns = []
    for a in item.annotations:
        d = {"type": a.type.name, "label": labels[a.label].name if a.label is not None else None,
             "attributes": dict(a.attributes)}
        if a.type == dm.AnnotationType.bbox:
            d["bbox"] = [a.x, a.y, a.w, a.h]
        if a.type == dm.AnnotationType.mask:
            d["pixels"] = np.flatnonzero(np.asarray(a.image).astype(bool)).tolist()
        anns.append(d)
    out["items"][item.id] = {"subset": item.subset, "annotations": anns}
print("PEER-JSON " + json.dumps(out, default=str))
"""


def test_datumaro_reads_our_voc_export(ws, source: str, tmp_path: Path) -> None:  # noqa: ANN001
    python = _peer("datumaro")
    export.export_voc(ws, source, tmp_path / "voc")
    peer = _run_peer(python, DATUMARO, str(tmp_path / "voc"), tmp=tmp_path)
    assert peer["labels"] == ["background", "shape", "person", "ignored"]
    src = _instances(ws, source)
    for name, (w, h) in SIZES.items():
        item = peer["items"][Path(name).stem]
        assert item["subset"] == {"a.png": "train", "b.png": "val"}[name]
        want = [i for i in src[name] if not i.iscrowd and i.category != IGNORE_LABEL]
        boxes = [a for a in item["annotations"] if a["type"] == "bbox"]
        assert [b["label"] for b in boxes] == [i.category for i in want]
        for b, inst in zip(boxes, want, strict=True):
            for flag in ("occluded", "truncated"):
                assert b["attributes"][flag] == bool(inst.attributes.get(flag))
            if "colour" in inst.attributes:
                assert b["attributes"]["colour"] == inst.attributes["colour"]
        masks = {a["label"] + str(len(a["pixels"])): set(a["pixels"]) for a in item["annotations"] if a["type"] == "mask"}
        for inst in (i for i in want if i.has_shape):
            mine = set(np.flatnonzero(instance_to_mask(inst, (w, h))).tolist())
            assert mine in masks.values()


# ------------------------------------------------------------------ what the peers write, read by us


def _best_iou(inst: Instance, among: list[Instance], size_wh: tuple[int, int]) -> float:
    return max((_iou(inst, o, size_wh) for o in among if o.category == inst.category and o.has_shape), default=0.0)


CONVERT_COCO = """
import shutil, sys
from pathlib import Path
from ultralytics.data.converter import convert_coco
task = sys.argv[3]
convert_coco(sys.argv[1], sys.argv[2], use_segments=task == "segment", use_keypoints=task == "pose", cls91to80=False)
print("PEER-JSON {}")
"""


@pytest.mark.parametrize("task", ["segment", "pose"])
def test_we_read_what_ultralytics_converter_writes(ws, source: str, tmp_path: Path, task: str) -> None:  # noqa: ANN001
    python = _peer("ultralytics")
    export.export_coco(ws, source, tmp_path / "coco", copy_images=True)
    ann = tmp_path / "coco" / "annotations"
    for f in ann.glob("*.json"):  # their converter needs faster-coco-eval for RLE masks: polygons only
        coco = json.loads(f.read_text())
        coco["annotations"] = [a for a in coco["annotations"] if isinstance(a["segmentation"], list)]
        f.write_text(json.dumps(coco))
    _run_peer(python, CONVERT_COCO, str(ann), str(tmp_path / "yolo"), task, tmp=tmp_path)
    for split in ("train", "val"):
        (tmp_path / "yolo" / "images").mkdir(exist_ok=True)
        shutil.copytree(tmp_path / "coco" / "images" / split, tmp_path / "yolo" / "images" / split)
    kpt = "kpt_shape: [3, 3]\nflip_idx: [0, 2, 1]\n" if task == "pose" else ""
    (tmp_path / "yolo" / "data.yaml").write_text(
        f"train: images/train\nval: images/val\nnames: {{0: shape, 1: person}}\n{kpt}")
    back = _fresh(ws, "Back")
    imports.import_yolo(ws, back, tmp_path / "yolo")
    src, got = _instances(ws, source), _instances(ws, back)
    for name, size in SIZES.items():
        if task == "segment":
            want = [i for i in src[name] if (i.polygons or not i.has_shape) and not i.iscrowd and i.category != IGNORE_LABEL]
            assert len(got[name]) == len(want)
            for inst in want:  # multi-part ones joined by their merge_multi_segment
                if inst.polygons:
                    assert _best_iou(inst, got[name], size) >= 0.999
                else:  # their converter writes a box-only shape as its rectangle (with a warning)
                    assert any(g.bbox_xywh == pytest.approx(inst.bbox_xywh, abs=1e-3) for g in got[name])
        else:
            want = [i.keypoints for i in src[name] if i.keypoints]
            assert [i.keypoints for i in got[name]] == [pytest.approx(k, abs=1e-3) for k in want]


DATUMARO_CONVERT = """
import sys
import datumaro as dm
dm.Dataset.import_from(sys.argv[1], "coco_instances").export(sys.argv[2], "voc", save_media=True, label_map="source")
print("PEER-JSON {}")
"""


def test_we_read_what_datumaro_writes_as_voc(ws, source: str, tmp_path: Path) -> None:  # noqa: ANN001
    python = _peer("datumaro")
    export.export_coco(ws, source, tmp_path / "coco", copy_images=True)
    _run_peer(python, DATUMARO_CONVERT, str(tmp_path / "coco"), str(tmp_path / "voc"), tmp=tmp_path)
    back = _fresh(ws, "Back")
    report = imports.import_voc(ws, back, tmp_path / "voc")
    assert report.skipped == []
    src, got = _instances(ws, source), _instances(ws, back)
    assert {im.file_name: im.split for im in annotate.list_images(ws, back)} == {"a.png": "train", "b.png": "val"}
    # datumaro writes only mask annotations into the PNGs (polygons are left out of them), numbers the
    # object map by its own order, and writes COCO's box corners without VOC's 1-pixel offset: so the
    # objects come back with their classes, crowd flags and boxes within a pixel, and its masks exact
    for name, size in SIZES.items():
        want = [i for i in src[name] if i.category != IGNORE_LABEL]
        assert sorted((i.category, i.iscrowd) for i in got[name]) == sorted((i.category, i.iscrowd) for i in want)
        for inst in want:
            x, y, w, h = inst.bbox_xywh
            assert any(g.category == inst.category and g.bbox_xywh == pytest.approx((x - 1, y - 1, w + 1, h + 1), abs=1.0)
                       for g in got[name])
        for inst in (i for i in want if i.rle is not None):
            assert _best_iou(inst, got[name], size) >= 0.999
