"""Two runs of the demo project, one with a designed detector (issue 16): evaluation rebuilds it from the
model file, the report lists the architecture, and the side-by-side report and table say what changed."""

from __future__ import annotations

import json

from tests.support.training import trained_run
from workbench.services import evaluation
from workbench.services.demo import create_demo_project

DESIGN = {"roi_pooling": "roi_pool", "anchor_sizes": [[8, 16], [24, 32], [48, 64], [96, 128]],
          "mask_resolution": 14, "detections_per_img": 20}


def test_a_designed_run_evaluates_and_its_changes_are_listed(ws) -> None:  # noqa: ANN001
    slug = create_demo_project(ws, num_images=6).slug
    plain = trained_run(ws, slug, "plain")
    designed = trained_run(ws, slug, "designed", detector=DESIGN)
    report = evaluation.evaluate_run(ws, slug, designed, split="val")  # the model file rebuilds the design
    metrics = json.loads((report.parent / "metrics.json").read_text())
    arch = metrics["architecture"]
    assert arch["detector.roi_pooling"] == "roi_pool" and arch["detector.anchor_sizes"] == DESIGN["anchor_sizes"]
    assert "<h2>Architecture</h2>" in report.read_text()
    rows = evaluation.compare_settings(ws, slug, designed, plain)
    differ = {r["setting"] for r in rows if r["differs"]}
    assert differ == {"detector.roi_pooling", "detector.anchor_sizes", "detector.mask_resolution",
                      "detector.detections_per_img"}
    side = evaluation.compare_runs(ws, slug, designed, plain, split="val").read_text()
    assert "4 setting(s) differ" in side and "≠ detector.roi_pooling" in side
