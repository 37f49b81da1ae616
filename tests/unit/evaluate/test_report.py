"""The report is written, self-contained, and holds the metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from tests.support.coco_reference import make_dataset
from workbench.evaluate import evaluate_coco, label_map_metrics, write_report


def test_report_holds_metrics_and_fetches_nothing(tmp_path: Path) -> None:
    gt, dt = make_dataset(0, n_images=6)
    result = evaluate_coco(gt, dt)
    sem = label_map_metrics([np.ones((1, 2, 2))], [np.ones((1, 2, 2))], ["c1"])
    path = write_report(result, tmp_path / "run", title="Run <1>", semantic=sem)
    assert path == tmp_path / "run" / "report.html"
    text = path.read_text(encoding="utf-8")
    assert f"{result.stats('segm')['AP']:.3f}" in text
    assert "Run &lt;1&gt;" in text  # escaped
    assert "data:image/png;base64," in text
    assert not re.search(r"https?://", text)
    assert "<script" not in text and "<link" not in text
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["types"]["bbox"]["stats"]["AP"] == result.stats("bbox")["AP"]
    assert metrics["semantic"]["mean_iou"] == 1.0
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_compare_shows_both_runs_and_deltas(tmp_path: Path) -> None:
    gt, dt = make_dataset(1, n_images=6)
    a = evaluate_coco(gt, dt, iou_types=("bbox",))
    b = evaluate_coco(gt, dt[: len(dt) // 2], iou_types=("bbox",))
    text = write_report(a, tmp_path, title="a vs b", compare=b).read_text(encoding="utf-8")
    assert "compared run" in text
    delta = a.stats("bbox")["AP"] - b.stats("bbox")["AP"]
    assert f"{delta:+.3f}" in text


def test_report_without_predictions_is_written(tmp_path: Path) -> None:
    gt, _ = make_dataset(2, n_images=3)
    path = write_report(evaluate_coco(gt, []), tmp_path, title="empty")
    assert "no detections" in path.read_text(encoding="utf-8")
