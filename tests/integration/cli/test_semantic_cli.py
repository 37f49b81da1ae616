"""The semantic task through the real CLI, store and worker subprocess: train, the worker's own
evaluation, `workbench evaluate`, and `workbench predict --labelmaps` in the export's layout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.cli import run


@pytest.fixture
def demo_ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "6") == 0
    return ws


def test_semantic_train_evaluate_and_predict_label_maps(demo_ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo_ws, "train", "demo-shapes", "--task", "semantic", "--arch", "unet", "--encoder", "resnet18",
               "--image-size", "64", "--epochs", "1", "--max-iters", "2", "--device", "cpu", "--wait") == 0
    out = capsys.readouterr().out
    assert "run 1 succeeded" in out and "semantic unet resnet18" in out
    assert run(demo_ws, "runs", "show", "1") == 0
    shown = json.loads(capsys.readouterr().out)
    run_dir = Path(shown["run_dir"])
    assert shown["config"]["task"] == "semantic" and (run_dir / "model.pt").exists()
    # the worker evaluated the finished run on val with the semantic metrics
    metrics = run_dir / "eval" / "val" / "metrics.json"
    deadline = time.time() + 120
    while not metrics.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert metrics.exists(), (run_dir / "worker.log").read_text()[-2000:]
    m = json.loads(metrics.read_text())
    assert m["task"] == "semantic" and 0 <= m["mean_iou"] <= 1 and m["background_counted"] is False
    n = len(m["labels"])
    assert np.asarray(m["confusion"]).shape == (n, n) and np.asarray(m["confusion"]).sum() == m["num_pixels"] > 0
    assert "confusion" in (run_dir / "eval" / "val" / "report.html").read_text()

    assert run(demo_ws, "runs", "list", "demo-shapes") == 0
    assert "mean IoU" in capsys.readouterr().out  # the best epoch's figure, named as the task measures it
    assert run(demo_ws, "evaluate", "1", "--split", "val") == 0
    assert "mean IoU" in capsys.readouterr().out
    assert run(demo_ws, "runs", "show", "1") == 0
    assert "mean_iou" in json.loads(capsys.readouterr().out)["metrics"]["eval"]["val"]

    # predicted maps laid out and named as the export's index/ maps, with the export's class ids
    pred_dir, exp_dir = tmp_path / "pred", tmp_path / "exp"
    assert run(demo_ws, "predict", "1", "--split", "val", "--labelmaps", str(pred_dir)) == 0
    assert "label maps of" in capsys.readouterr().out
    assert run(demo_ws, "export", "labelmaps", "demo-shapes", str(exp_dir), "--split", "val") == 0
    predicted = sorted(p.name for p in (pred_dir / "index").glob("*.png"))
    assert predicted and predicted == sorted(p.name for p in (exp_dir / "index").glob("*.png"))
    pred_meta = json.loads((pred_dir / "classes.json").read_text())
    exp_meta = json.loads((exp_dir / "classes.json").read_text())
    assert [(c["index"], c["name"], c["color"]) for c in pred_meta["classes"]] == [
        (c["index"], c["name"], c["color"]) for c in exp_meta["classes"]
    ]
    for name in predicted:
        with Image.open(pred_dir / "index" / name) as im, Image.open(exp_dir / "index" / name) as ex:
            assert im.mode == "P" and im.size == ex.size and int(np.asarray(im).max()) <= len(pred_meta["classes"])
    # a folder holding other files is not replaced: one line, exit 1, the files kept
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert run(demo_ws, "predict", "1", "--split", "val", "--labelmaps", str(other)) == 1
    assert "holds no earlier label-map export" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"
