"""services.evaluation on a tiny real run of the demo project: report, metrics.json, run metrics, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.support.training import trained_run
from workbench.domain import Category, Instance, KeypointSchema, ValidationError
from workbench.evaluate import evaluate_coco
from workbench.formats.coco.write import dataset_to_coco
from workbench.services import evaluation, training
from workbench.services.demo import create_demo_project
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo
from workbench.store.run_metrics import run_evaluations


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # noqa: ANN001, ANN201 - (ws, slug, run ids): trained once per module
    from workbench.services.workspace import open_workspace

    ws = open_workspace(tmp_path_factory.mktemp("eval") / "ws")
    slug = create_demo_project(ws, num_images=6).slug
    runs = (trained_run(ws, slug, "first"), trained_run(ws, slug, "second", seed=1, lr=0.02))
    yield ws, slug, runs
    ws.close()


def test_evaluate_run_writes_report_and_metrics_equal_to_evaluate_coco(trained) -> None:  # noqa: ANN001
    ws, slug, (run, _) = trained
    report = evaluation.evaluate_run(ws, slug, run, split="val")
    assert report.name == "report.html" and report.parent.name == "val" and report.parent.parent.name == "eval"
    html = report.read_text()
    assert "<img" in html and "http://" not in html and "https://" not in html  # self-contained
    metrics = json.loads((report.parent / "metrics.json").read_text())
    assert set(metrics["types"]) == {"bbox", "segm", "keypoints"}  # the demo has triangle keypoints
    assert metrics["num_detections"] > 0
    for t in ("bbox", "segm"):
        assert {"AP", "AP50", "AP75", "APs", "APm", "APl"} <= set(metrics["types"][t]["stats"])

    # recomputed independently: the split's ground truth as COCO and the stored detections
    val = training.labelled_dataset(ws, slug, ["val"])
    gt = dataset_to_coco(val, box_only_as_polygon=True)
    dets = json.loads((report.parent / "detections.json").read_text())
    assert {d["image_id"] for d in dets} <= {im["id"] for im in gt["images"]}
    names = {c["id"]: c["name"] for c in gt["categories"]}
    assert all("keypoints" in d for d in dets if names[d["category_id"]] == "triangle")
    assert not any("keypoints" in d for d in dets if names[d["category_id"]] != "triangle")
    plain = [{k: v for k, v in d.items() if k != "keypoints"} for d in dets]
    again = evaluate_coco(gt, plain, iou_types=("bbox", "segm"))
    for t in ("bbox", "segm"):
        assert metrics["types"][t]["stats"] == pytest.approx(again.types[t].stats)
    tri = [d for d in dets if names[d["category_id"]] == "triangle"]
    kp_cat = next(c["id"] for c in gt["categories"] if c.get("keypoints"))
    kp = evaluate_coco(gt, tri, iou_types=("keypoints",), kpt_oks_sigmas={kp_cat: [0.05] * 3})
    assert metrics["types"]["keypoints"]["stats"] == pytest.approx(kp.types["keypoints"].stats)
    assert metrics["semantic"]["num_images"] == len(val.items)
    assert set(metrics["semantic"]["per_class"]) == {"circle", "square", "triangle"}

    # the summary is on the run row, beside what training wrote
    with ws.store.transaction() as s:
        info = run_repo.get_run(s, run)
    summary = run_evaluations(info.metrics)["val"]
    assert summary["segm"]["AP"] == pytest.approx(metrics["types"]["segm"]["stats"]["AP"])
    assert summary["report"] == str(report) and info.status == "succeeded"
    loaded = evaluation.load_evaluation(ws, slug, run, "val")
    assert loaded is not None and loaded.metrics == metrics


def test_compare_runs_writes_side_by_side_report(trained) -> None:  # noqa: ANN001
    ws, slug, (a, b) = trained
    path = evaluation.compare_runs(ws, slug, a, b, "val")  # b was never evaluated: done on the way
    assert path.exists() and "compared run" in path.read_text() and "delta" in path.read_text()
    assert evaluation.load_evaluation(ws, slug, b, "val") is not None
    rows = evaluation.compare_summaries(
        evaluation.load_evaluation(ws, slug, a, "val").metrics, evaluation.load_evaluation(ws, slug, b, "val").metrics
    )
    seg = next(r for r in rows if r["metric"] == "segm AP50")
    if seg["A"] >= 0 and seg["B"] >= 0:
        assert seg["delta"] == pytest.approx(seg["A"] - seg["B"])
    with pytest.raises(ValidationError, match="two different runs"):
        evaluation.compare_runs(ws, slug, a, a, "val")


def test_evaluate_cli(trained, capsys) -> None:  # noqa: ANN001
    from workbench.cli import main

    ws, slug, (a, b) = trained
    assert main(["evaluate", str(a), "--split", "train", "--workspace", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and "segm" in out
    assert evaluation.load_evaluation(ws, slug, a, "train") is not None
    assert main(["evaluate", str(a), "--compare", str(b), "--workspace", str(ws.root)]) == 0
    assert "compare-" in capsys.readouterr().out


def test_empty_split_is_explained(trained) -> None:  # noqa: ANN001
    ws, slug, (a, _) = trained
    with pytest.raises(ValidationError, match="no labelled images in split 'test'"):
        evaluation.evaluate_run(ws, slug, a, split="test")


# ------------------------------------------------------------------------------------ pure helpers

SCHEMA = KeypointSchema(("apex", "left", "right"))
CATS = [Category("circle", id=1), Category("triangle", id=2, keypoints=SCHEMA)]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, [0.05, 0.05, 0.05]),
        ({"triangle": [0.1, 0.2, 0.3]}, [0.1, 0.2, 0.3]),
        ({"triangle": {"left": 0.08}}, [0.05, 0.08, 0.05]),
    ],
)
def test_sigmas_from_settings(setting, expected) -> None:  # noqa: ANN001
    assert evaluation.sigmas_from_settings(CATS, setting) == {"triangle": expected}


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"triangle": [0.1]}, "needs 3 sigmas"),
        ({"triangle": {"nose": 0.1}}, "unknown keypoint"),
        ({"triangle": [0.1, -1, 0.1]}, "positive"),
        ([0.1], "expected"),
    ],
)
def test_bad_sigmas_are_refused_with_the_setting_named(setting, match) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match=match):
        evaluation.sigmas_from_settings(CATS, setting)


def test_project_sigmas_setting_reaches_the_evaluation(trained) -> None:  # noqa: ANN001
    ws, slug, (a, _) = trained
    with ws.store.transaction() as s:
        project_repo.set_project_setting(s, slug, evaluation.SIGMAS_SETTING, {"triangle": {"apex": 0.5}})
    try:
        val = training.labelled_dataset(ws, slug, ["val"])
        gt = dataset_to_coco(val, box_only_as_polygon=True)
        by_id = evaluation._sigmas_by_id(ws, slug, val, gt)
        assert list(by_id.values()) == [[0.5, 0.05, 0.05]]
    finally:
        with ws.store.transaction() as s:
            project_repo.set_project_setting(s, slug, evaluation.SIGMAS_SETTING, None)


def test_perfect_detections_of_mixed_classes_score_one() -> None:
    """Circles without keypoints and triangles with them, detected exactly: AP 1 for every type."""
    from workbench.domain import AnnotatedImage, Dataset, ImageRecord
    from workbench.geometry import instance_to_rle

    tri = Instance("triangle", polygons=((10.0, 10.0, 40.0, 10.0, 25.0, 40.0),), keypoints=(25, 40, 2, 10, 10, 2, 40, 10, 2))
    circ = Instance("circle", polygons=((50.0, 50.0, 70.0, 50.0, 70.0, 70.0, 50.0, 70.0),))
    box_only = Instance("circle", bbox_xywh=(5.0, 60.0, 10.0, 10.0))  # exported as a 4-corner polygon
    rec = ImageRecord("a.png", 80, 80, id=7)
    ds = Dataset(categories=CATS, items=[AnnotatedImage(rec, (tri, circ, box_only))])
    gt = dataset_to_coco(ds, box_only_as_polygon=True)
    preds = {7: []}
    for inst in (tri, circ, box_only):
        x, y, w, h = gt["annotations"][len(preds[7])]["bbox"]
        shaped = inst if inst.polygons else replace(inst, polygons=((x, y, x + w, y, x + w, y + h, x, y + h),))
        preds[7].append(replace(inst, polygons=(), rle=instance_to_rle(shaped, (80, 80)), bbox_xywh=(x, y, w, h),
                                score=0.9, source="predicted"))
    results, dropped = evaluation.instances_to_results(preds, {"circle": 1, "triangle": 2}, {"triangle"})
    assert dropped == 0 and sum("keypoints" in r for r in results) == 1
    res = evaluation.evaluate_results(gt, results, kpt_oks_sigmas={2: [0.05] * 3})
    for t in ("bbox", "segm", "keypoints"):
        assert res.types[t].stats["AP"] == pytest.approx(1.0), t
    sem = evaluation.semantic_metrics(ds, preds)
    assert sem["per_class"]["triangle"]["iou"] == pytest.approx(1.0)
    circle = sem["per_class"]["circle"]  # a box-only annotation draws no label-map pixels; its prediction does
    assert circle["pred_pixels"] - circle["gt_pixels"] == 100 and circle["iou"] < 1.0
    # a class the project no longer has is dropped, and counted
    _, dropped = evaluation.instances_to_results({7: [replace(circ, category="gone", score=0.5)]}, {"circle": 1}, set())
    assert dropped == 1
