"""A run's report lists its architecture settings; two runs side by side mark the ones that differ (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.coco_reference import make_dataset
from workbench.evaluate import evaluate_coco, write_report
from workbench.train.config import TrainConfig
from workbench.train.detector import architecture_settings, settings_diff


def _configs() -> tuple[dict, dict]:
    a = TrainConfig(backbone="tiny", weights="none", min_size=128).to_dict()
    b = TrainConfig(backbone="tiny", weights="none", min_size=128, box_batch_size_per_image=64,
                    detector={"roi_pooling": "roi_pool", "anchor_sizes": [[8], [16], [32], [64]]}).to_dict()
    return a, b


def test_the_settings_are_resolved_to_what_the_model_uses():
    a, b = _configs()
    sa = architecture_settings(a)
    # the backbone's own values where the config says "default"
    assert sa["detector.anchor_sizes"] == [[16], [32], [64], [128]] and sa["detector.mask_head_depth"] == 2
    assert sa["min_size"] == 128 and sa["max_size"] == 320 and sa["box_batch_size_per_image"] == 128
    assert sa["detector.roi_pooling"] == "roi_align" and sa["rpn_batch_size_per_image"] == 256
    # a config written before the detector field reads as the defaults
    old = {k: v for k, v in a.items() if k != "detector"}
    assert architecture_settings(old) == sa
    rows = settings_diff(a, b)
    differ = [r["setting"] for r in rows if r["differs"]]
    assert sorted(differ) == ["box_batch_size_per_image", "detector.anchor_sizes", "detector.roi_pooling"]
    assert [r["setting"] for r in rows[:3]] == differ  # the differing ones first
    assert {r["setting"]: (r["A"], r["B"]) for r in rows}["box_batch_size_per_image"] == (128, 64)


def test_the_report_lists_them_and_the_comparison_marks_the_differences(tmp_path: Path):
    gt, dt = make_dataset(1, n_images=4)
    result = evaluate_coco(gt, dt, iou_types=("bbox",))
    a, b = _configs()
    sa, sb = architecture_settings(a), architecture_settings(b)
    text = write_report(result, tmp_path / "one", title="one", settings=sa).read_text(encoding="utf-8")
    assert "<h2>Architecture</h2>" in text and "detector.roi_pooling" in text and "roi_align" in text
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["architecture"] == sa
    text = write_report(result, tmp_path / "two", title="a vs b", compare=result, settings=sa,
                        compare_settings=sb).read_text(encoding="utf-8")
    assert "3 setting(s) differ: box_batch_size_per_image, detector.anchor_sizes, detector.roi_pooling" in text
    assert "≠ detector.roi_pooling" in text and "≠ detector.mask_resolution" not in text
    same = write_report(result, tmp_path / "three", title="a vs a", compare=result, settings=sa,
                        compare_settings=sa).read_text(encoding="utf-8")
    assert "Both runs have the same architecture settings" in same
