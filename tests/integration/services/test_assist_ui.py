"""The annotator's assist requests through services.assist_ui on the demo project: a GrabCut answer
is the annotator's shape payload in natural pixels; SAM with a weights file the user placed (the tiny
configuration of the real classes, saved as a checkpoint) computes the open image's and the next
images' embeddings in the background, after which a click runs the decoder only; a missing SAM
checkpoint and bad requests answer one line; auto label gives the run's detections as pre-labels."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.predictions import run_with_model
from workbench.assist.shapes import mask_iou
from workbench.assist.synthetic import box_of, inner_point
from workbench.geometry import instance_to_mask, polygons_to_mask
from workbench.services import annotate, assist_ui


def _object(ws, slug: str):  # noqa: ANN001, ANN202
    rec = annotate.list_images(ws, slug)[0]
    inst = next(i for i in annotate.load_image(ws, slug, rec.id).instances if i.category in ("circle", "square"))
    return rec, instance_to_mask(inst, rec.size_wh)


def test_grabcut_answer_is_a_shape_payload(ws, demo) -> None:  # noqa: ANN001
    rec, truth = _object(ws, demo)
    x, y, w, h = box_of(truth, 3)
    out = assist_ui.answer(ws, demo, {"kind": "shape", "req": "t1", "image_id": rec.id, "method": "grabcut",
                                      "box": [x, y, w, h], "points": [], "simplify": 1, "max_vertices": 60})
    assert "error" not in out, out
    [shape] = out["shapes"]
    assert out["req"] == "t1" and shape["category"] is None and shape["source"] == "manual"
    assert sum(len(p) // 2 for p in shape["polygons"]) <= 60
    assert mask_iou(polygons_to_mask(shape["polygons"], rec.size_wh), truth) >= 0.85


@pytest.mark.parametrize(
    ("req", "says"),
    [
        ({"kind": "shape", "method": "sam:"}, "sam_vit_b_01ec64.pth"),
        ({"kind": "shape", "method": "grabcut", "box": [1, 2, 3]}, "box must be [x, y, w, h]"),
        ({"kind": "shape", "method": "wand", "points": [[5, 5, True]], "tolerance": 300}, "tolerance must lie in"),
        ({"kind": "paint", "method": "wand"}, "unknown assist request"),
        ({"kind": "auto", "run": 0}, "choose a run"),
    ],
)
def test_bad_requests_answer_one_line(ws, demo, req: dict, says: str) -> None:  # noqa: ANN001
    rec = annotate.list_images(ws, demo)[0]
    out = assist_ui.answer(ws, demo, {"req": "x", "image_id": rec.id, **req})
    assert says in out["error"] and "\n" not in out["error"] and "shapes" not in out


def test_sam_embeddings_precomputed_in_the_background(ws, demo, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from workbench.assist import sam

    monkeypatch.setitem(sam.CHECKPOINTS, sam.TINY, "sam_tiny.pth")
    monkeypatch.setenv("WORKBENCH_SAM_DIR", str(tmp_path / "sam"))
    (tmp_path / "sam").mkdir()
    torch.save(sam.build_model(sam.TINY, None, seed=3).state_dict(), tmp_path / "sam" / "sam_tiny.pth")
    assert any(m["value"] == "sam:tiny" for m in assist_ui.tool_options(ws, demo)["methods"])
    ids = [r.id for r in annotate.list_images(ws, demo)]
    out = assist_ui.answer(ws, demo, {"kind": "warm", "req": "w", "image_id": ids[0], "method": "sam:tiny"},
                           next_ids=ids[1:3])
    assert "error" not in out
    deadline = time.monotonic() + 120
    while assist_ui.warm_pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    session = sam.session(ws.root / "assist", sam.TINY)
    recs = {r.id: r for r in annotate.list_images(ws, demo)}
    assert all(session.cache_file(recs[i].sha256).is_file() for i in ids[:3])
    assert session.computed == 3
    rec, truth = _object(ws, demo)
    px, py = inner_point(truth)
    out = assist_ui.answer(ws, demo, {"kind": "shape", "req": "s", "image_id": rec.id, "method": "sam:tiny",
                                      "points": [[px, py, True]]})
    assert "error" not in out or "found no object" in out["error"]  # random weights: any mask, or none
    assert session.computed == 3  # the click ran the decoder on the precomputed embedding


def test_auto_label_gives_the_runs_detections_as_prelabels(ws, demo, tmp_path: Path) -> None:  # noqa: ANN001
    run = run_with_model(ws, demo, tmp_path)
    rec = annotate.list_images(ws, demo)[0]
    out = assist_ui.answer(ws, demo, {"kind": "auto", "req": "a", "image_id": rec.id, "run": run, "threshold": 0.5})
    assert "error" not in out, out
    assert out["shapes"] and f"Run {run}: {len(out['shapes'])} shapes" in out["notice"]
    for s in out["shapes"]:
        assert s["category"] == "circle" and s["source"] == "predicted" and s["score"] >= 0.5
        assert s["polygons"] or (s["rle"] and s["mask"]["size"] == [rec.height, rec.width])
    high = assist_ui.answer(ws, demo, {"kind": "auto", "req": "b", "image_id": rec.id, "run": run, "threshold": 1.0})
    assert len(high["shapes"]) <= len(out["shapes"])
    assert np.all([s["score"] >= 1.0 for s in high["shapes"]])
