"""The CVAT export checked by a peer: datumaro reads what we write, and we read what datumaro writes.

datumaro is no dependency of the workbench (nor of its tests): it runs in a separate venv, as a
subprocess, when ``WORKBENCH_PEER_PYTHON`` names that venv's Python::

    python -m venv /tmp/peer-venv-cvat && /tmp/peer-venv-cvat/bin/pip install datumaro
    WORKBENCH_PEER_PYTHON=/tmp/peer-venv-cvat/bin/python pytest tests/integration/services/test_cvat_datumaro_peer.py

Without it the tests skip, saying so. datumaro reads boxes, polygons, masks and points with their
attributes and z_order; it has no skeletons (it reads a skeleton's points as points of the
sublabels), which is what is compared for keypoints.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.services.test_cvat_labelstudio import H, W, _instances, cvat_folder
from workbench.geometry import instance_to_mask
from workbench.services import export, imports, projects

PEER = os.environ.get("WORKBENCH_PEER_PYTHON")
pytestmark = pytest.mark.skipif(
    not PEER,
    reason="WORKBENCH_PEER_PYTHON not set (a Python with datumaro, e.g. /tmp/peer-venv-cvat/bin/python)",
)

SCRIPT = r"""
import json, sys
import numpy as np
import datumaro as dm

def read(path):
    ds = dm.Dataset.import_from(path, "cvat")
    cats = ds.categories()[dm.AnnotationType.label]
    out = []
    for item in ds:
        anns = []
        for a in item.annotations:
            d = {"type": a.type.name, "label": cats[a.label].name, "z_order": a.z_order, "attributes": a.attributes}
            if a.type.name == "mask":
                d["mask"] = a.image.astype(int).tolist()
            elif a.type.name == "bbox":
                d["bbox"] = [float(v) for v in (a.x, a.y, a.w, a.h)]
            else:
                d["points"] = [float(p) for p in a.points]
            anns.append(d)
        out.append({"id": item.id, "subset": item.subset, "size": list(item.media.size), "anns": anns})
    return out

def write(path):
    m = np.zeros((30, 40), dtype=bool); m[5:20, 10:30] = True; m[9:13, 15:22] = False
    cats = dm.LabelCategories.from_iterable([("car", "", ["color"]), "sign", "wheel"])
    item = dm.DatasetItem(id="img1", media=dm.Image.from_numpy(np.full((30, 40, 3), 90, np.uint8)), annotations=[
        dm.Polygon([1.5, 1.0, 20.25, 1.0, 20.0, 15.0], label=0, z_order=1, attributes={"occluded": True, "color": "red"}),
        dm.Bbox(5.0, 6.0, 10.5, 8.0, label=1, z_order=0),
        dm.Mask(m, label=0, z_order=2),
        dm.Points([3.0, 4.0, 6.5, 7.0], label=2),
    ])
    dm.Dataset.from_iterable([item], categories={dm.AnnotationType.label: cats}).export(path, "cvat", save_media=True)
    return {"mask": m.astype(int).tolist()}

print(json.dumps(read(sys.argv[2]) if sys.argv[1] == "read" else write(sys.argv[2])))
"""


def peer(mode: str, path: Path) -> Any:
    out = subprocess.run(
        [str(PEER), "-c", SCRIPT, mode, str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode != 0 and "No module named 'datumaro'" in out.stderr:
        pytest.skip(f"{PEER} has no datumaro")
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_datumaro_reads_our_cvat_export(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    imports.import_cvat(ws, project, cvat_folder(tmp_path / "cvat"))
    export.export_cvat(ws, project, tmp_path / "out", copy_images=True)
    (item,) = peer("read", tmp_path / "out")
    assert (item["id"], item["size"]) == ("a", [H, W])
    ours = _instances(ws, project)["a.png"]
    by_type: dict[str, list[dict]] = {}
    for a in item["anns"]:
        by_type.setdefault(a["type"], []).append(a)

    (poly,) = by_type["polygon"]
    mine = next(i for i in ours if i.polygons)
    assert poly["label"] == "car" and poly["z_order"] == mine.z_order == 3
    assert poly["points"] == pytest.approx(list(mine.polygons[0]), abs=1e-4)
    assert poly["attributes"] == {"occluded": True, "color": "blue", "speed": 42.0}

    (box,) = by_type["bbox"]
    mine = next(i for i in ours if not i.has_shape and i.keypoints is None)
    assert box["bbox"] == pytest.approx(list(mine.bbox_xywh), abs=1e-4) and box["z_order"] == 1

    (mask,) = by_type["mask"]
    mine = next(i for i in ours if i.rle is not None)
    assert np.array_equal(np.array(mask["mask"]), instance_to_mask(mine, (W, H)))  # the hole too
    assert mask["z_order"] == 2

    # the skeleton: datumaro reads its points as points of the sublabels head and hand
    points = {a["label"]: a for a in by_type["points"]}
    person = next(i for i in ours if i.category == "person")
    assert points["head"]["points"] == pytest.approx(list(person.keypoints[0:2]))
    assert points["hand"]["points"] == pytest.approx(list(person.keypoints[3:5]))
    assert points["hand"]["attributes"]["occluded"] is True and person.keypoints[5] == 1


def test_datumaro_reads_the_splits_of_a_project_export(ws, demo, tmp_path: Path) -> None:  # noqa: ANN001
    export.export_cvat(ws, demo, tmp_path / "out", copy_images=True)
    items = peer("read", tmp_path / "out")
    counts: dict[str, int] = {}
    for it in items:
        counts[it["subset"]] = counts.get(it["subset"], 0) + 1
    assert counts == projects.get_project(ws, demo).split_counts
    polygons = sum(1 for it in items for a in it["anns"] if a["type"] == "polygon")
    assert polygons == sum(len(i.polygons) for insts in _instances(ws, demo).values() for i in insts)


def test_we_read_datumaros_cvat_export(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    made = peer("write", tmp_path / "dm")
    report = imports.import_cvat(ws, project, tmp_path / "dm")  # datumaro names the file default.xml
    assert (len(report.imported), report.annotations) == (1, 4)
    insts = {(i.category, i.rle is not None): i for i in _instances(ws, project)["img1.jpg"]}
    poly = insts[("car", False)]
    assert poly.polygons == ((1.5, 1.0, 20.25, 1.0, 20.0, 15.0),) and poly.z_order == 1
    assert poly.attributes == {"occluded": True, "color": "red"}
    assert np.array_equal(instance_to_mask(insts[("car", True)], (40, 30)), np.array(made["mask"]))
    assert insts[("sign", False)].bbox_xywh == pytest.approx((5.0, 6.0, 10.5, 8.0))
    assert insts[("wheel", False)].keypoints == (3.0, 4.0, 2, 6.5, 7.0, 2)
