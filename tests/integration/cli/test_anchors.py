"""`workbench anchors` (issue 16) on the demo project: the report, the fit, the JSON, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run
from workbench.services import anchors
from workbench.services.training import default_config, training_splits


def test_the_report_and_the_fit_through_the_cli(ws, demo, capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(ws.root)
    assert run(root, "anchors", demo, "--fit", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    train, _ = training_splits(ws, demo)
    n_boxes = sum(1 for it in train.items for inst in it.instances if not inst.iscrowd)
    assert report["boxes"] == n_boxes > 0 and report["backbone"] == "tiny"
    cur, fit = report["current"], report["fitted"]
    assert cur["anchor_sizes"] == [[16], [32], [64], [128]] and cur["aspect_ratios"] == [0.5, 1.0, 2.0]
    assert cur["coverage"]["all"]["boxes"] == n_boxes
    assert set(cur["coverage"]["per_class"]) <= {"circle", "square", "triangle"}
    both = [fit["coverage"]["all"][k] + 0 for k in ("iou>=0.5", "iou>=0.7")]
    assert sum(both) >= cur["coverage"]["all"]["iou>=0.5"] + cur["coverage"]["all"]["iou>=0.7"]
    # the fitted anchors go into a config that trains with them, and the report reads that config back
    path = root / "fitted.json"
    path.write_text(json.dumps({"detector": {"anchor_sizes": fit["anchor_sizes"], "aspect_ratios": fit["aspect_ratios"]}}))
    assert run(root, "anchors", demo, "--config", str(path)) == 0
    text = capsys.readouterr().out
    assert f"current anchors: sizes {fit['anchor_sizes']}" in text and "IoU>=0.7" in text
    used = anchors.use_fitted(default_config(len(train.items)), anchors.anchor_report(ws, demo, fit=True))
    assert [list(lv) for lv in used.detector.anchor_sizes] == fit["anchor_sizes"]
    png = anchors.plot_png(anchors.anchor_report(ws, demo, fit=True))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


BAD = [
    ({"detector": {"aspect_ratios": [0, 1]}}, "detector.aspect_ratios: 0 is not > 0"),
    ({"detector": {"anchor_sizes": [[16], [32]]}}, "detector.anchor_sizes: 2 levels given, the tiny backbone has 4"),
    ({"detector": {"ratios": [1]}}, "detector.ratios: unknown detector setting"),
    ("not json", "cannot read the training config"),
]


def test_bad_input_ends_in_one_line(ws, demo, capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(ws.root)
    for n, (config, message) in enumerate(BAD):
        path = root / f"bad{n}.json"
        path.write_text(json.dumps(config) if not isinstance(config, str) else config)
        assert run(root, "anchors", demo, "--config", str(path)) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err and str(path) in err, err
    assert run(root, "anchors", "no-such-project") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no-such-project" in err
