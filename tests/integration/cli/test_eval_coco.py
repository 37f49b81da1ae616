"""`workbench eval-coco GT RESULTS`: the numbers pycocotools gives on the very same two files.

pycocotools reads a results list as ``loadRes`` does, by the first result's field: with boxes, the
area of every result (masks too) is its box's ``w*h``. The cases here make masks half their box
(triangles) so that box and mask areas fall in different COCO area buckets and a wrong reading shows.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tests.support.cli import run
from tests.support.coco_reference import make_dataset, make_keypoint_dataset
from workbench.geometry import polygons_to_rle

STAT_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
KP_NAMES = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]


def _pycocotools(gt_path: Path, res_path: Path, iou_type: str, sigmas: list[float] | None = None) -> list[float]:
    """What a pycocotools user runs on the two files: COCO(gt), loadRes(results file), COCOeval."""
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(str(gt_path))
        cd = cg.loadRes(str(res_path))
        ev = COCOeval(cg, cd, iou_type)
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


def _triangle_masks(dets: list[dict[str, Any]], size_wh: tuple[int, int]) -> list[dict[str, Any]]:
    """Each result's mask becomes the lower-left half of its box (area about half the box's)."""
    out = []
    for d in dets:
        x, y, w, h = d["bbox"]
        rle = polygons_to_rle([[x, y, x, y + h, x + w, y + h]], size_wh)
        out.append({**d, "segmentation": {"size": [size_wh[1], size_wh[0]], "counts": rle.counts}})
    return out


def _write(tmp_path: Path, gt: dict[str, Any], results: list[dict[str, Any]], name: str) -> tuple[Path, Path]:
    gt_path, res_path = tmp_path / f"{name}_gt.json", tmp_path / f"{name}_results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    return gt_path, res_path


def _ours(capsys: pytest.CaptureFixture[str], tmp_path: Path, gt_path: Path, res_path: Path, *extra: str) -> dict:
    capsys.readouterr()
    assert run(tmp_path / "ws", "eval-coco", str(gt_path), str(res_path), "--json", *extra) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "fields",
    [("bbox", "segmentation"), ("segmentation",), ("bbox",)],
    ids=["boxes-and-masks", "masks-only", "boxes-only"],
)
def test_eval_coco_equals_pycocotools_on_the_same_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: tuple[str, ...]
) -> None:
    gt, dets = make_dataset(3, n_images=30, size_wh=(320, 240), max_objects=6)
    dets = _triangle_masks(dets, (320, 240))
    results = [{k: v for k, v in d.items() if k in ("image_id", "category_id", "score", *fields)} for d in dets]
    gt_path, res_path = _write(tmp_path, gt, results, "-".join(fields))
    types = ["bbox", "segm"] if "segmentation" in fields else ["bbox"]

    ours = _ours(capsys, tmp_path, gt_path, res_path, "--iou-types", ",".join(types))

    assert sorted(ours) == sorted(types)
    for t in types:
        assert list(ours[t]) == STAT_NAMES
        ref = _pycocotools(gt_path, res_path, t)
        assert list(ours[t].values()) == ref, (t, ours[t], ref)
    if fields == ("bbox", "segmentation"):
        # the case the reading matters for: box areas bucket the masks, not mask areas
        masks_only = _pycocotools(*_write(tmp_path, gt, [{**r, "bbox": []} for r in results], "m"), "segm")
        assert masks_only != list(ours["segm"].values())


def test_eval_coco_keypoints_equal_pycocotools_with_the_sigmas_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, dets = make_keypoint_dataset(5, 17, n_images=25)
    gt_path, res_path = _write(tmp_path, gt, dets, "kp")

    default = _ours(capsys, tmp_path, gt_path, res_path)
    assert list(default) == ["keypoints"] and list(default["keypoints"]) == KP_NAMES
    assert list(default["keypoints"].values()) == _pycocotools(gt_path, res_path, "keypoints")

    sigmas = [0.1] * 17
    given = _ours(capsys, tmp_path, gt_path, res_path, "--sigmas", ",".join(map(str, sigmas)))
    assert list(given["keypoints"].values()) == _pycocotools(gt_path, res_path, "keypoints", sigmas)
    assert given != default


def test_eval_coco_writes_the_run_report_and_refuses_a_dataset_as_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, dets = make_dataset(4, n_images=8)
    gt_path, res_path = _write(tmp_path, gt, dets, "r")
    assert run(tmp_path / "ws", "eval-coco", str(gt_path), str(res_path), "--out", str(tmp_path / "rep")) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "rep" / "report.html") in out and "bbox" in out and "segm" in out
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert set(metrics["types"]) == {"bbox", "segm"}
    assert "<html" in (tmp_path / "rep" / "report.html").read_text()

    assert run(tmp_path / "ws", "eval-coco", str(gt_path), str(gt_path)) == 1
    err = capsys.readouterr().err
    assert "not a results list" in err and err.count("\n") == 1
    assert run(tmp_path / "ws", "eval-coco", str(gt_path), str(res_path), "--iou-types", "box") == 1
    assert "--iou-types takes some of bbox, segm, keypoints" in capsys.readouterr().err


def test_a_results_list_carrying_both_fields_is_read_as_loadres_reads_it(tmp_path: Path) -> None:
    """The service directly: the same list with and without boxes gives other segm numbers, each pycocotools'."""
    from workbench.services.eval_coco import evaluate_coco_files

    gt, dets = make_dataset(6, n_images=20, size_wh=(320, 240))
    dets = _triangle_masks(dets, (320, 240))
    both = _write(tmp_path, gt, dets, "both")
    masks = _write(tmp_path, gt, [{k: v for k, v in d.items() if k != "bbox"} for d in copy.deepcopy(dets)], "masks")
    a = evaluate_coco_files(*both, iou_types=["segm"], out_dir=tmp_path / "a").stats()["segm"]
    b = evaluate_coco_files(*masks, iou_types=["segm"], out_dir=tmp_path / "b").stats()["segm"]
    assert list(a.values()) == _pycocotools(*both, "segm")
    assert list(b.values()) == _pycocotools(*masks, "segm")
    assert a != b  # the masks' buckets: box areas in one file, mask areas in the other
